-- Orderly: the command registry. Every protocol command that an `api` function answers is one
-- row here, written by the same SQL file that defines the function (orderly.register_command,
-- R__015_command_registry.sql). orderlyd loads the rows at start and again on
-- NOTIFY orderly_commands; HELP and the README's command reference are made from them; the
-- function itself reads its row (orderly.begin_command) for the permission it needs and the
-- arguments it accepts. One place per command, so the readers cannot disagree.

CREATE TABLE orderly.commands (
    -- The words a client types, upper case: 'ORDER SHOW'. At most three words.
    name       text PRIMARY KEY
               CONSTRAINT commands_name_format CHECK (name ~ '^[A-Z][A-Z_]*( [A-Z][A-Z_]*){0,2}$'),
    -- The api function that answers it: api.<name>(actor bigint, args jsonb) RETURNS SETOF json.
    function   text NOT NULL
               CONSTRAINT commands_function_format CHECK (function ~ '^api\.[a-z_][a-z0-9_]*$'),
    -- What the caller's roles must grant; NULL: any logged-in user.
    permission text REFERENCES orderly.permissions (code),
    -- Names given to bare values after the words, in order (ORDER SHOW 1042 → {"id":1042}).
    positional text[] NOT NULL DEFAULT '{}',
    -- The names of orderly.command_arguments in their order, kept here by register_command so
    -- that begin_command, run by every command, reads one row.
    argument_names text[] NOT NULL DEFAULT '{}',
    usage      text NOT NULL CONSTRAINT commands_usage_present CHECK (btrim(usage) <> ''),
    summary    text NOT NULL CONSTRAINT commands_summary_present CHECK (btrim(summary) <> '')
);

COMMENT ON TABLE orderly.commands IS
    'One row per protocol command answered by an api function: its words, function, permission, usage and summary';

CREATE TABLE orderly.command_arguments (
    command  text NOT NULL REFERENCES orderly.commands (name) ON DELETE CASCADE,
    -- The order the arguments are listed in (errors name them in this order).
    position integer NOT NULL,
    name     text NOT NULL CONSTRAINT command_arguments_name_format CHECK (name ~ '^[a-z][a-z0-9_]*$'),
    -- What the value is; the function validates it, the registry documents it.
    type     text NOT NULL CONSTRAINT command_arguments_type_known
             CHECK (type IN ('id', 'integer', 'number', 'text', 'code', 'boolean', 'date', 'timestamp',
                             'object', 'array', 'any')),
    required boolean NOT NULL DEFAULT false,
    PRIMARY KEY (command, name),
    UNIQUE (command, position)
);

COMMENT ON TABLE orderly.command_arguments IS
    'The named arguments each command accepts; any other argument is refused';
