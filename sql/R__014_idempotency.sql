-- Orderly: idempotency keys (orderly.idempotency_keys, V008__orders.sql). A command that takes
-- idempotency_key= (ORDER CREATE and ORDER SUBMIT today) calls orderly.idempotent_start first and
-- orderly.idempotent_finish with its reply, both in the command's transaction: a client that
-- retries after a lost reply gets the first reply again instead of a second order.
-- admin.purge_idempotency_keys is for an admin's scheduled job. Tied to no domain, so it comes
-- before all of them.

-- Before a command with idempotency_key runs: NULL if this call owns the key now (its reply is
-- stored by idempotent_finish in the same transaction), or the stored reply of the first call.
-- A second call with the key while the first is still running waits on the key's row here
-- until the first commits (then replays) or rolls back (then runs itself). Same key, other
-- arguments: a conflict. Keys older than 24 hours are forgotten.
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

CREATE OR REPLACE FUNCTION orderly.idempotent_finish(user_id bigint, key text, reply json) RETURNS json
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF key IS NOT NULL THEN
        UPDATE orderly.idempotency_keys x SET reply = idempotent_finish.reply::text
        WHERE x.user_id = idempotent_finish.user_id AND x.key = idempotent_finish.key;
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
    IF older_than < interval '24 hours' THEN
        RAISE EXCEPTION 'idempotency keys are kept at least 24 hours' USING ERRCODE = 'OL400';
    END IF;
    DELETE FROM orderly.idempotency_keys x WHERE x.created_at < now() - older_than;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
