-- Orderly: the command registry (tables in V012__command_registry.sql, changes in V015).
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
--
-- A command that creates or changes something is registered with changes => true: it then
-- takes idempotency_key= (added to its arguments and usage here), begin_command claims the key,
-- and the function replays or stores its reply (orderly.replay, orderly.remember:
-- R__014_idempotency.sql). Its function is VOLATILE; a command that only reads is declared
-- STABLE and refuses idempotency_key like any unknown argument. The pgTAP test holds the mark,
-- the volatility and the replay pattern together.

-- arguments: names separated by spaces, each "name:type", "!" after the type when required:
-- 'customer:id! lines:array! coupon:code'. Types are those of orderly.command_arguments.type.
-- idempotency_key is never listed: changes => true adds it, last.
-- Re-registering replaces the row and its arguments; every orderlyd reloads at commit.
DROP FUNCTION IF EXISTS orderly.register_command(text, text, text, text, text, text, text[]);
-- staff_only: what a customer login is told (V029); NULL: the command is for anyone its roles allow.
DROP FUNCTION IF EXISTS orderly.register_command(text, text, text, text, text, text, text[], boolean);
CREATE OR REPLACE FUNCTION orderly.register_command(name text, function text, permission text,
                                                   arguments text, usage text, summary text,
                                                   positional text[] DEFAULT '{}', changes boolean DEFAULT false,
                                                   staff_only text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_spec  text;
    v_parts text[];
    v_pos   integer := 0;
    v_names text[] := '{}';
    v_args  text := btrim(coalesce(register_command.arguments, ''));
    v_usage text := register_command.usage;
BEGIN
    IF to_regprocedure(register_command.function || '(bigint,jsonb)') IS NULL THEN
        RAISE EXCEPTION 'command %: no function %(bigint, jsonb)', register_command.name, register_command.function;
    END IF;
    IF v_args ~ '(^|\s)idempotency_key:' OR strpos(v_usage, 'idempotency_key') > 0 THEN
        RAISE EXCEPTION 'command %: idempotency_key is not listed; changes => true adds it', register_command.name;
    END IF;
    IF register_command.changes THEN
        v_args := btrim(v_args || ' idempotency_key:text');
        v_usage := v_usage || ' [idempotency_key=]';
    END IF;
    INSERT INTO orderly.commands AS c (name, function, permission, positional, usage, summary, changes, staff_only)
    VALUES (register_command.name, register_command.function, register_command.permission,
            register_command.positional, v_usage, register_command.summary, register_command.changes,
            register_command.staff_only)
    ON CONFLICT ON CONSTRAINT commands_pkey DO UPDATE
    SET function = excluded.function, permission = excluded.permission, positional = excluded.positional,
        usage = excluded.usage, summary = excluded.summary, changes = excluded.changes, staff_only = excluded.staff_only;

    DELETE FROM orderly.command_arguments a WHERE a.command = register_command.name;
    FOR v_spec IN SELECT s FROM regexp_split_to_table(v_args, '\s+') AS s WHERE s <> '' LOOP
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
-- row) are checked here, once for every command. For a changing command its idempotency_key,
-- if given, is claimed for this call or found answered (orderly.idempotent_start): a write, so
-- not STABLE; a read-only command's function (STABLE) never gets that far with a key.
CREATE OR REPLACE FUNCTION orderly.begin_command(command text, actor bigint, args jsonb) RETURNS orderly.users
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_permission text;
    v_names      text[];
    v_changes    boolean;
    v_staff_only text;
    u            orderly.users;
    v_acts       bigint;
    v_now        orderly.users;
BEGIN
    SELECT c.permission, c.argument_names, c.changes, c.staff_only
    INTO v_permission, v_names, v_changes, v_staff_only
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
    IF v_staff_only IS NOT NULL AND orderly.own_customer(u) IS NOT NULL THEN
        RAISE EXCEPTION '%', v_staff_only USING ERRCODE = 'OL403';
    END IF;
    IF v_changes AND orderly.arg_text(begin_command.args, 'idempotency_key') IS NOT NULL THEN
        -- Whom the login acts for as this command began; an admin changing that (another
        -- customer, staff or not, another carrier) forgets the login's kept replies, under its row
        -- lock. The key's row takes a share of that lock (its foreign key), so a change that
        -- committed while this waited is seen just after: the command, begun as the login was,
        -- is refused, or its reply would be kept, and replayed, as the login is now.
        v_acts := orderly.own_customer(u);
        PERFORM orderly.idempotent_start(u.id, orderly.arg_text(begin_command.args, 'idempotency_key'),
                                         begin_command.command, begin_command.args);
        SELECT * INTO v_now FROM orderly.users x WHERE x.id = u.id;
        IF orderly.own_customer(v_now) IS DISTINCT FROM v_acts OR v_now.carrier IS DISTINCT FROM u.carrier THEN
            RAISE EXCEPTION 'this login was changed by an admin while the request ran; send it again' USING ERRCODE = 'OL409';
        END IF;
    END IF;
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
        'summary', c.summary,
        'changes', c.changes,
        'staff_only', c.staff_only IS NOT NULL)
    FROM orderly.commands c
    ORDER BY c.name
$$;
