-- The operator console (issue 18): operators and their sign-in sessions, the nodes of the
-- cluster as they report themselves, and the message-tracking record.

-- Operators of the web console. role: 'admin', 'readonly' or 'domain:<name>' (that domain
-- only). Passwords are argon2id PHC strings, as accounts' are.
CREATE TABLE operators (
    name          text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
    password_hash text NOT NULL,
    role          text NOT NULL CHECK (role IN ('admin', 'readonly') OR role LIKE 'domain:_%'),
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Signed-in console sessions, kept here so that any back-end behind a load balancer serves
-- any session. Only a SHA-256 of the cookie's token is stored; the CSRF token is per session.
CREATE TABLE console_sessions (
    token_hash  bytea PRIMARY KEY,
    operator    text NOT NULL,
    role        text NOT NULL,
    csrf        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    seen_at     timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

-- Heartbeats: each back-end writes its own row; each front-end reports through a back-end
-- (Delivery.Heartbeat). A node not seen for a while is shown as down; old rows are pruned.
CREATE TABLE nodes (
    name        text PRIMARY KEY,
    role        text NOT NULL,
    version     text NOT NULL,
    started_at  timestamptz NOT NULL,
    seen_at     timestamptz NOT NULL,
    detail      text NOT NULL DEFAULT ''
);

-- Message tracking: what happened to a message, one row per event (accepted, stored,
-- queued, delivered, deferred, bounced, dsn, quarantined, fetched, held, released, deleted).
-- Written in batches off the hot path; pruned after the retention period. Addresses are
-- stored in lower case (searched that way).
CREATE TABLE message_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL,
    queue_id    text NOT NULL,
    message_id  text NOT NULL DEFAULT '',
    kind        text NOT NULL,
    node        text NOT NULL DEFAULT '',
    mail_from   text NOT NULL DEFAULT '',
    recipients  text[] NOT NULL DEFAULT '{}',
    detail      text NOT NULL DEFAULT ''
);
CREATE INDEX message_events_queue_id ON message_events (queue_id);
CREATE INDEX message_events_message_id ON message_events (message_id);
CREATE INDEX message_events_at ON message_events (at);
CREATE INDEX message_events_from ON message_events (mail_from, at);
CREATE INDEX message_events_recipients ON message_events USING gin (recipients);

-- Messages per minute and kind (accepted, delivered, deferred, bounced) for the overview's
-- charts: added to by each batch of events, so a chart never scans the events.
CREATE TABLE traffic_minutes (
    minute  timestamptz NOT NULL,
    kind    text NOT NULL,
    count   bigint NOT NULL,
    PRIMARY KEY (minute, kind)
);
