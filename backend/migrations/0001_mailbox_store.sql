-- Bridgehead mailbox store, first schema.
--
-- Distribution rules (so the schema could later be sharded by account, Citus style):
--   * domains is a small reference table;
--   * every per-account table (accounts, aliases, messages, maildrop_leases) has account_id
--     in its key, and its foreign keys point only at the same account or at domains;
--   * message content is shared between recipients, so contents/content_chunks are keyed by
--     content_id and referenced from messages without a foreign key; the store keeps the
--     reference valid (content is written before the messages that point at it, and removed
--     only when no message points at it any more).

CREATE TABLE domains (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (name = lower(name)),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE accounts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    domain_id     bigint NOT NULL REFERENCES domains (id),
    address       text NOT NULL UNIQUE CHECK (address = lower(address)),
    password_hash text NOT NULL,
    quota_bytes   bigint CHECK (quota_bytes IS NULL OR quota_bytes >= 0),
    used_bytes    bigint NOT NULL DEFAULT 0,
    message_count bigint NOT NULL DEFAULT 0,
    next_uid      bigint NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX accounts_domain ON accounts (domain_id);

CREATE TABLE aliases (
    account_id  bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    address     text NOT NULL UNIQUE CHECK (address = lower(address)),
    domain_id   bigint NOT NULL REFERENCES domains (id),
    PRIMARY KEY (account_id, address)
);
CREATE INDEX aliases_domain ON aliases (domain_id);

CREATE TABLE contents (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    size        bigint NOT NULL,
    chunks      integer NOT NULL,          -- rows in content_chunks, seq 0 .. chunks-1
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE content_chunks (
    content_id  bigint NOT NULL REFERENCES contents (id) ON DELETE CASCADE,
    seq         integer NOT NULL,
    data        bytea NOT NULL,
    PRIMARY KEY (content_id, seq)
);

-- One row per message in one mailbox. The message as POP3 sends it is `prefix` (per-recipient
-- trace headers such as Return-Path) followed by the shared content; `size` is their sum.
CREATE TABLE messages (
    account_id  bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    uid         bigint NOT NULL,
    content_id  bigint NOT NULL,
    prefix      bytea NOT NULL DEFAULT '',
    size        bigint NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, uid)
);
CREATE INDEX messages_content ON messages (content_id);

-- The POP3 maildrop lock (RFC 1939 §8): one lease per account, renewed by the front-end.
CREATE TABLE maildrop_leases (
    account_id    bigint PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    session_token text NOT NULL,
    expires_at    timestamptz NOT NULL
);

-- Failed logins per key ('ip:<address>' or 'user:<name>'), shared by every front-end.
CREATE TABLE auth_failures (
    key            text PRIMARY KEY,
    failures       integer NOT NULL,
    last_failure   timestamptz NOT NULL
);
