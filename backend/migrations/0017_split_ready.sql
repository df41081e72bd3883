-- Ready for a split of the store by domain (ARCHITECTURE.md, "Splitting the store").
--
-- Every table whose rows belong to a domain can be keyed by that domain: the addresses of
-- accounts, aliases and groups are unique per domain too, so the store-wide UNIQUE (address)
-- constraints are the only ones a split would drop (each cluster, or Citus with domain_id as
-- the distribution column, keeps these). Until then both hold; they agree, since an address's
-- domain is its domain_id's. Cheap: three small indexes written only when a name is added.
ALTER TABLE accounts ADD CONSTRAINT accounts_domain_address UNIQUE (domain_id, address);
ALTER TABLE aliases ADD CONSTRAINT aliases_domain_address UNIQUE (domain_id, address);
ALTER TABLE groups ADD CONSTRAINT groups_domain_address UNIQUE (domain_id, address);
-- The new indexes lead with domain_id: the single-column ones are redundant.
DROP INDEX accounts_domain;
DROP INDEX aliases_domain;
