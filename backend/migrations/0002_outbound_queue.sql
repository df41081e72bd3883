-- The outbound queue: mail for outside recipients of authenticated senders, kept durably
-- until the transport (a later migration adds delivery state as needed) sends it.
-- A queue entry references shared content like messages do (no foreign key: see 0001).

CREATE TABLE outbound_queue (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue_id        text NOT NULL UNIQUE,
    content_id      bigint NOT NULL,
    mail_from       text NOT NULL,          -- '' is the null sender
    ret             text NOT NULL DEFAULT '',
    envid           text NOT NULL DEFAULT '',
    auth_user       text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text,
    held            boolean NOT NULL DEFAULT false
);
CREATE INDEX outbound_queue_due ON outbound_queue (next_attempt_at) WHERE NOT held;
CREATE INDEX outbound_queue_content ON outbound_queue (content_id);

CREATE TABLE outbound_recipients (
    queue_entry  bigint NOT NULL REFERENCES outbound_queue (id) ON DELETE CASCADE,
    address      text NOT NULL,
    notify       integer NOT NULL DEFAULT 0,
    orcpt        text NOT NULL DEFAULT '',
    status       text NOT NULL DEFAULT 'pending',
    PRIMARY KEY (queue_entry, address)
);

-- Submissions seen, so that a front-end repeating a Submit whose reply was lost (the
-- back-end died after COMMIT) gets the first answer instead of a second copy.
CREATE TABLE submissions (
    token       text PRIMARY KEY,
    queue_id    text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX submissions_created ON submissions (created_at);
