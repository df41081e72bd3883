-- Forwarded mail (SRS and ARC) and per-domain mail authentication settings.

-- Keys every back-end shares, made once by the first back-end that needs one (the SRS key:
-- a bounce to a rewritten sender may come back through any back-end).
CREATE TABLE cluster_keys (
    name        text PRIMARY KEY,
    key         bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- A forwarded message leaves with an SRS envelope sender (the DSNs we write still go to
-- mail_from, the original sender) and with the ARC set we sealed on arrival above its content.
ALTER TABLE outbound_queue
    ADD COLUMN envelope_from text,
    ADD COLUMN head bytea;

-- What the checks of unauthenticated mail do for a domain's recipients: whether they run,
-- and whether a DMARC failure is refused as the sender's policy asks (enforce), only marked
-- (quarantine: p=reject treated as p=quarantine) or only recorded (report).
ALTER TABLE domains
    ADD COLUMN auth_checks boolean NOT NULL DEFAULT true,
    ADD COLUMN dmarc_policy text NOT NULL DEFAULT 'enforce'
        CHECK (dmarc_policy IN ('enforce', 'quarantine', 'report'));
