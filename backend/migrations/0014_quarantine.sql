-- Messages a content filter (milter) asked to quarantine: stored whole but delivered to
-- nobody, until an operator releases them (they are delivered then) or deletes them. Content
-- is referenced like messages and queue entries do (no foreign key: see 0001).
CREATE TABLE quarantine (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue_id        text NOT NULL UNIQUE,
    content_id      bigint NOT NULL,
    mail_from       text NOT NULL,
    recipients      text[] NOT NULL,
    reason          text NOT NULL,
    client_address  text NOT NULL DEFAULT '',
    auth_user       text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX quarantine_content ON quarantine (content_id);
CREATE INDEX quarantine_created ON quarantine (created_at);
