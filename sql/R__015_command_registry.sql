-- Orderly: the command registry (tables in V012__command_registry.sql).
--
-- A command is written once: its api function, and right beside it in the same file one call
--
--     SELECT orderly.register_command('ORDER SHOW', 'api.order_show', 'order.read',
--         arguments  => 'id:id!',
--         positional => '{id}',
--         usage      => 'ORDER SHOW id',
--         summary    => 'An order: customer, ship-to, lines …');
--
-- whose first statement is `u := orderly.begin_command('ORDER SHOW', actor, args)`. From that
-- row orderlyd knows the command (and reloads it on NOTIFY orderly_commands), HELP and the
-- README describe it, and begin_command checks the permission and refuses any argument the row
-- does not list. A pgTAP test (sql/tests/015_command_registry.sql) holds each function to its
-- row.

-- arguments: names separated by spaces, each "name:type", "!" after the type when required:
-- 'customer:id! lines:array! coupon:code'. Types are those of orderly.command_arguments.type.
-- Re-registering replaces the row and its arguments; every orderlyd reloads at commit.
CREATE OR REPLACE FUNCTION orderly.register_command(name text, function text, permission text,
                                                   arguments text, usage text, summary text,
                                                   positional text[] DEFAULT '{}') RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_spec  text;
    v_parts text[];
    v_pos   integer := 0;
    v_names text[] := '{}';
BEGIN
    IF to_regprocedure(register_command.function || '(bigint,jsonb)') IS NULL THEN
        RAISE EXCEPTION 'command %: no function %(bigint, jsonb)', register_command.name, register_command.function;
    END IF;
    INSERT INTO orderly.commands AS c (name, function, permission, positional, usage, summary)
    VALUES (register_command.name, register_command.function, register_command.permission,
            register_command.positional, register_command.usage, register_command.summary)
    ON CONFLICT ON CONSTRAINT commands_pkey DO UPDATE
    SET function = excluded.function, permission = excluded.permission, positional = excluded.positional,
        usage = excluded.usage, summary = excluded.summary;

    DELETE FROM orderly.command_arguments a WHERE a.command = register_command.name;
    FOR v_spec IN SELECT s FROM regexp_split_to_table(btrim(coalesce(register_command.arguments, '')), '\s+') AS s WHERE s <> '' LOOP
        v_parts := regexp_match(v_spec, '^([a-z][a-z0-9_]*):([a-z]+)(!?)$');
        IF v_parts IS NULL THEN
            RAISE EXCEPTION 'command %: argument "%" is not name:type or name:type!', register_command.name, v_spec;
        END IF;
        v_pos := v_pos + 1;
        INSERT INTO orderly.command_arguments (command, position, name, type, required)
        VALUES (register_command.name, v_pos, v_parts[1], v_parts[2], v_parts[3] = '!');
        v_names := v_names || v_parts[1];
    END LOOP;
    IF NOT (register_command.positional <@ v_names) THEN
        RAISE EXCEPTION 'command %: every positional argument must be one of its arguments', register_command.name;
    END IF;
    UPDATE orderly.commands c SET argument_names = v_names WHERE c.name = register_command.name;
    PERFORM pg_notify('orderly_commands', register_command.name);
END
$$;

-- The first statement of every api function that answers a command: the caller (logged in, not
-- locked, holding the row's permission) and its arguments (an object, each one listed in the
-- row) are checked here, once for every command.
CREATE OR REPLACE FUNCTION orderly.begin_command(command text, actor bigint, args jsonb) RETURNS orderly.users
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_permission text;
    v_names      text[];
    u            orderly.users;
BEGIN
    SELECT c.permission, c.argument_names
    INTO v_permission, v_names
    FROM orderly.commands c
    WHERE c.name = begin_command.command;
    IF NOT FOUND THEN
        -- A function naming a command that was never registered: a defect, not the client's.
        RAISE EXCEPTION 'command % is not registered', begin_command.command;
    END IF;
    IF v_permission IS NULL THEN
        u := orderly.actor(begin_command.actor);
    ELSE
        u := orderly.require_permission(begin_command.actor, v_permission);
    END IF;
    PERFORM orderly.check_args(begin_command.args, v_names);
    RETURN u;
END
$$;

-- orderlyd's copy of the registry: one document per command, by name.
CREATE OR REPLACE FUNCTION api.command_registry() RETURNS SETOF json
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
    SELECT json_build_object(
        'name', c.name,
        'function', c.function,
        'permission', c.permission,
        'positional', to_json(c.positional),
        'arguments', (SELECT coalesce(json_agg(json_build_object('name', a.name, 'type', a.type, 'required', a.required)
                                               ORDER BY a.position), '[]')
                      FROM orderly.command_arguments a WHERE a.command = c.name),
        'usage', c.usage,
        'summary', c.summary)
    FROM orderly.commands c
    ORDER BY c.name
$$;
