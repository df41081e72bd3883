-- The POP3 connector: outside POP3 mailboxes whose mail is brought into local mailboxes.
-- A connector is polled by one back-end at a time (claimed like queue entries).
CREATE TABLE connectors (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL UNIQUE,
    mode          text NOT NULL CHECK (mode IN ('user', 'global')),
    server        text NOT NULL,
    port          integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
    tls           text NOT NULL CHECK (tls IN ('implicit', 'stls', 'none')),
    verify_cert   boolean NOT NULL DEFAULT true,
    auth          text NOT NULL DEFAULT 'user' CHECK (auth IN ('user', 'plain', 'apop')),
    username      text NOT NULL,
    secret        text NOT NULL,             -- never returned by the admin API
    target        text NOT NULL,             -- user mode: the local address; global: the domain
    undeliverable text,                      -- default: the back-end's postmaster
    leave_on_server    boolean NOT NULL DEFAULT false,
    delete_after_days  integer CHECK (delete_after_days IS NULL OR delete_after_days >= 0),
    interval_secs integer NOT NULL DEFAULT 300 CHECK (interval_secs >= 1),
    enabled       boolean NOT NULL DEFAULT true,
    log_level     text NOT NULL DEFAULT 'info',
    next_poll_at  timestamptz NOT NULL DEFAULT now(),
    claimed_by    text,
    claim_until   timestamptz,
    last_poll_at  timestamptz,
    last_error    text,
    last_fetched  integer NOT NULL DEFAULT 0,
    fetched_total bigint NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX connectors_due ON connectors (next_poll_at) WHERE enabled;

-- Global mailboxes: text found in To or Cc sends the message to a chosen local mailbox.
CREATE TABLE connector_rules (
    connector_id bigint NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    match_text   text NOT NULL,
    target       text NOT NULL,
    PRIMARY KEY (connector_id, match_text)
);

-- Messages already brought in, by the server's UIDL: written in the same transaction as the
-- local delivery, so a message is delivered once whatever breaks when.
CREATE TABLE connector_seen (
    connector_id bigint NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    uidl         text NOT NULL,
    first_seen   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connector_id, uidl)
);
