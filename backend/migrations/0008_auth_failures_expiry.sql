-- Expired login-failure counts are deleted periodically (every back-end, every few seconds):
-- the index keeps that a short range scan however many names were guessed at.
CREATE INDEX auth_failures_last_failure ON auth_failures (last_failure);
