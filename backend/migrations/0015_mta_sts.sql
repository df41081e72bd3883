-- Outbound TLS policy. MTA-STS policies (RFC 8461) of the domains mail is sent to, fetched by any back-end and
-- used by all until they expire (max_age) or the domain's _mta-sts record names a new id.
CREATE TABLE mta_sts_policies (
    domain      text PRIMARY KEY,
    policy_id   text NOT NULL,
    mode        text NOT NULL CHECK (mode IN ('enforce', 'testing', 'none')),
    mx          text[] NOT NULL,
    max_age     bigint NOT NULL,
    fetched_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);

-- Routes may ask for verified TLS (the next hop's certificate checked for its name).
ALTER TABLE routes DROP CONSTRAINT routes_tls_check;
ALTER TABLE routes ADD CONSTRAINT routes_tls_check
    CHECK (tls IN ('none', 'opportunistic', 'required', 'verify', 'implicit'));
