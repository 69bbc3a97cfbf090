-- Orderly: idempotency keys (orderly.idempotency_keys, V008__orders.sql). Every command that
-- creates or changes something is registered with changes => true (R__015_command_registry.sql)
-- and so takes idempotency_key=: a client that retries after a lost reply gets the first reply
-- again instead of a second customer, stock adjustment or order. Before the command registry,
-- whose orderly.begin_command claims the key; tied to no domain.
--
-- A changing command's function, in full:
--
--     DECLARE
--         u        orderly.users := orderly.begin_command('STOCK ADJUST', stock_adjust.actor, stock_adjust.args);
--         v_replay json := orderly.replay(u, stock_adjust.args);
--         …
--     BEGIN
--         IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
--         …
--         RETURN NEXT orderly.remember(u, args, <its reply>);
--     END
--
-- begin_command checks the key and claims it for this call (orderly.idempotent_start), replay
-- hands back the first call's reply if there was one, remember stores this call's reply; all in
-- the command's transaction, so a failed call leaves its key unused. A changing command answers
-- with exactly one row (remember refuses a second), which is stored text for text.
-- sql/tests/015_command_registry.sql holds every function of the registry to this pattern.
-- admin.purge_idempotency_keys is for an admin's scheduled job.

-- Called by orderly.begin_command for a changing command: NULL if this call owns the key now
-- (its reply is stored by orderly.remember in the same transaction), or the stored reply of the
-- first call. A second call with the key while the first is still running waits on the key's
-- row here until the first commits (then replays) or rolls back (then runs itself). Same key,
-- other command or arguments: a conflict. Keys older than 24 hours are forgotten.
CREATE OR REPLACE FUNCTION orderly.idempotent_start(user_id bigint, key text, command text, args jsonb) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_hash bytea := sha256(convert_to(command || ' ' || (args - 'idempotency_key')::text, 'UTF8'));
    k      orderly.idempotency_keys;
BEGIN
    IF key IS NULL THEN
        RETURN NULL;
    END IF;
    IF key !~ '^[[:graph:]]{1,200}$' THEN
        RAISE EXCEPTION 'idempotency_key must be 1 to 200 visible characters without spaces' USING ERRCODE = 'OL400';
    END IF;
    DELETE FROM orderly.idempotency_keys x
    WHERE x.user_id = idempotent_start.user_id AND x.key = idempotent_start.key
      AND x.created_at < now() - interval '24 hours';
    INSERT INTO orderly.idempotency_keys (user_id, key, command, request_hash)
    VALUES (user_id, key, command, v_hash)
    ON CONFLICT DO NOTHING;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    SELECT * INTO k FROM orderly.idempotency_keys x
    WHERE x.user_id = idempotent_start.user_id AND x.key = idempotent_start.key;
    IF k.command <> command OR k.request_hash <> v_hash THEN
        RAISE EXCEPTION 'idempotency_key "%" was already used for a different request', orderly.for_message(key)
            USING ERRCODE = 'OL409';
    END IF;
    RETURN k.reply;
END
$$;

-- The second declaration of every changing command: the first reply to this user's
-- idempotency_key, or NULL when the call is to run (no key, or begin_command has just claimed
-- it). begin_command has already refused a key used for another command or other arguments.
-- plpgsql: its plan is kept for the session.
CREATE OR REPLACE FUNCTION orderly.replay(u orderly.users, args jsonb) RETURNS json
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN (SELECT k.reply::json FROM orderly.idempotency_keys k
            WHERE k.user_id = replay.u.id AND k.key = orderly.arg_text(replay.args, 'idempotency_key'));
END
$$;

-- The reply of every changing command goes through here: stored for a replay when the call
-- came with an idempotency_key, and returned as it is. Once per key: a second reply for one
-- key (a command answering with two rows) or a key begin_command did not claim is a defect.
CREATE OR REPLACE FUNCTION orderly.remember(u orderly.users, args jsonb, reply json) RETURNS json
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_key text := orderly.arg_text(args, 'idempotency_key');
BEGIN
    IF v_key IS NOT NULL THEN
        UPDATE orderly.idempotency_keys x SET reply = coalesce(remember.reply::text, 'null')
        WHERE x.user_id = (u).id AND x.key = v_key AND x.reply IS NULL;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'idempotency_key "%": no claimed key without a reply to store this reply under',
                orderly.for_message(v_key);
        END IF;
    END IF;
    RETURN reply;
END
$$;

-- For an admin's scheduled job; keys are also forgotten one by one when reused after 24 hours.
CREATE OR REPLACE FUNCTION admin.purge_idempotency_keys(older_than interval DEFAULT interval '24 hours') RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    n integer;
BEGIN
    -- Compared as the DELETE below reads it (now() - older_than): '-1 mon 31 days' is not 24 hours.
    IF older_than IS NULL THEN
        RAISE EXCEPTION 'older_than is required (keys are kept at least 24 hours)' USING ERRCODE = 'OL400';
    END IF;
    IF now() - older_than > now() - interval '24 hours' THEN
        RAISE EXCEPTION 'idempotency keys are kept at least 24 hours' USING ERRCODE = 'OL400';
    END IF;
    DELETE FROM orderly.idempotency_keys x WHERE x.created_at < now() - older_than;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
