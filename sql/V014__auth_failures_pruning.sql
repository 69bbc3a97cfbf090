-- Orderly: failed logins are pruned as new ones arrive (R__055_logins.sql), oldest first; this
-- index makes finding the oldest cheap however large the table grew under an attack.
CREATE INDEX auth_failures_at_idx ON orderly.auth_failures (at);
