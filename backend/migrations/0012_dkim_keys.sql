-- DKIM signing keys per domain (RFC 6376). The private key is sealed (secrets.rs, purpose
-- "dkim"); the public key is kept as published (base64). A key is 'next' once made by a
-- rotation (publish it first), 'active' while it signs, 'retired' after a rotation (kept,
-- and its record published, until the operator removes it).
CREATE TABLE dkim_keys (
    domain_id    bigint NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    selector     text NOT NULL,
    algorithm    text NOT NULL CHECK (algorithm IN ('rsa', 'ed25519')),
    private_key  text NOT NULL,
    public_key   text NOT NULL,
    state        text NOT NULL DEFAULT 'active' CHECK (state IN ('next', 'active', 'retired')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (domain_id, selector)
);
