-- Penalties that bind across connections and front-ends.
--
-- An account's next password check: once a user name has recent failures, at most one
-- verification per penalty interval is made for it, whichever address or front-end asks
-- (the growing delay becomes a rate, not a per-connection pause). Only rows keyed 'user:…'
-- use it; others keep the default.
ALTER TABLE auth_failures ADD COLUMN next_check timestamptz NOT NULL DEFAULT '-infinity';

-- Client addresses an account logged in from successfully: a login from one of them is
-- verified at once, however the account's name is being guessed at from elsewhere, so a
-- user is never locked out of their usual places. Keyed by account (distributable).
CREATE TABLE auth_known_clients (
    account_id    bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    client        text NOT NULL,
    last_success  timestamptz NOT NULL,
    PRIMARY KEY (account_id, client)
);
CREATE INDEX auth_known_clients_last_success ON auth_known_clients (last_success);

-- Unknown recipients asked for by unauthenticated clients, per client address (recipient
-- harvesting): past a limit within the window, the address gets 450 4.7.1 for every RCPT.
CREATE TABLE unknown_recipients (
    client        text PRIMARY KEY,
    misses        integer NOT NULL,
    last_miss     timestamptz NOT NULL
);
CREATE INDEX unknown_recipients_last_miss ON unknown_recipients (last_miss);
