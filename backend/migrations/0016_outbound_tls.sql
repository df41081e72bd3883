-- Routes may ask for DANE (RFC 7672): the next hop's DNSSEC-validated TLSA records must
-- exist and its certificate must match one.
ALTER TABLE routes DROP CONSTRAINT routes_tls_check;
ALTER TABLE routes ADD CONSTRAINT routes_tls_check
    CHECK (tls IN ('none', 'opportunistic', 'required', 'verify', 'dane', 'implicit'));

-- RFC 8689 REQUIRETLS: the message may only be sent on over verified TLS.
ALTER TABLE outbound_queue ADD COLUMN requiretls boolean NOT NULL DEFAULT false;
