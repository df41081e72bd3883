-- Outbound transport: claims on queue entries, per-recipient results, routes.

-- A back-end working on an entry holds a claim until claim_until; after that (it died) any
-- back-end may take the entry again. Claims are taken with FOR UPDATE SKIP LOCKED.
ALTER TABLE outbound_queue
    ADD COLUMN claimed_by   text,
    ADD COLUMN claim_until  timestamptz,
    ADD COLUMN delay_warned boolean NOT NULL DEFAULT false;

-- Per recipient: status is 'pending', 'delivered' or 'failed'; the rest feeds the DSN.
ALTER TABLE outbound_recipients
    ADD COLUMN dsn_status  text NOT NULL DEFAULT '',   -- RFC 3463 code, e.g. 5.1.1
    ADD COLUMN diagnostic  text NOT NULL DEFAULT '',   -- the remote reply, or our reason
    ADD COLUMN remote_mta  text NOT NULL DEFAULT '',
    ADD COLUMN last_attempt timestamptz;

-- Where mail for a domain goes instead of its MX hosts. The domain '*' is the smart host
-- for every domain without a route of its own.
CREATE TABLE routes (
    domain      text PRIMARY KEY CHECK (domain = lower(domain)),
    host        text NOT NULL,
    port        integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
    tls         text NOT NULL DEFAULT 'opportunistic'
                CHECK (tls IN ('none', 'opportunistic', 'required', 'implicit')),
    auth_user   text,
    auth_secret text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
