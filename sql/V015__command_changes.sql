-- Orderly: the registry knows which commands change something. Such a command (changes => true
-- in orderly.register_command, R__015_command_registry.sql) takes idempotency_key= like ORDER
-- CREATE always did: orderly.begin_command claims the key, the function replays the stored
-- reply (orderly.replay) or stores its own (orderly.remember, R__014_idempotency.sql). A
-- command that only reads has changes = false and refuses the argument like any other unknown.

ALTER TABLE orderly.commands
    ADD COLUMN changes boolean NOT NULL DEFAULT false;

COMMENT ON COLUMN orderly.commands.changes IS
    'The command creates or changes something: it takes idempotency_key= and a retry with the same key gets the first reply';
