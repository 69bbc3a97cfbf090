-- pgTAP: the helpers every test file in sql/tests may use, in schema test. scripts/test.sh loads
-- this file once into the throw-away pgTAP database, after migrating it and before pg_prove:
--     psql -X -q -v ON_ERROR_STOP=1 -d <database> -f sql/tests/setup/helpers.sql
-- pg_prove runs each test file in a psql session of its own, where pg_temp functions of another
-- session do not exist: shared helpers must live in an ordinary schema. Not a migration (the
-- migrator reads only sql/*.sql): no server database has schema test, and no SQL file of the
-- application may call these. A helper only one test file needs stays in that file, in pg_temp.
-- Re-running this file replaces the helpers.

CREATE SCHEMA IF NOT EXISTS test;

-- A user's id, by username (any case).
CREATE OR REPLACE FUNCTION test.uid(name text) RETURNS bigint LANGUAGE sql AS $$
    SELECT id FROM orderly.users WHERE lower(username) = lower(name)
$$;

-- Calls api.<fn> as the user who, with args, as orderlyd does; returns its row exactly as the
-- function returned it (json text, as an idempotency key's replay must repeat it byte for byte);
-- the first row, for a listing (see test.rows).
CREATE OR REPLACE FUNCTION test.reply(fn text, who text, args jsonb) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r json;
BEGIN
    EXECUTE format('SELECT * FROM api.%I($1, $2)', fn) INTO r USING test.uid(who), args;
    RETURN r::text;
END
$$;

-- The same row as jsonb.
CREATE OR REPLACE FUNCTION test.call(fn text, who text, args jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT test.reply(fn, who, args)::jsonb
$$;

-- The same for a listing: every row, in order, as one jsonb array.
CREATE OR REPLACE FUNCTION test.rows(fn text, who text, args jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    r jsonb;
BEGIN
    EXECUTE format('SELECT coalesce(jsonb_agg(x::jsonb), ''[]'') FROM api.%I($1, $2) x', fn) INTO r USING test.uid(who), args;
    RETURN r;
END
$$;

-- Rows inserted, updated or deleted so far in this transaction, in every table but temporary
-- ones (PostgreSQL's own count, which sees every write, also in a function's subtransactions):
-- a call that leaves test.writes() as it was wrote nothing at all.
CREATE OR REPLACE FUNCTION test.writes() RETURNS bigint LANGUAGE sql AS $$
    SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint
    FROM pg_stat_xact_user_tables WHERE schemaname !~ '^pg_temp'
$$;

-- A changing command called twice with the same args (an idempotency_key among them): true when
-- the second call returns the first reply text for text and writes nothing at all.
CREATE OR REPLACE FUNCTION test.replays(fn text, who text, args jsonb) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    first  text := test.reply(fn, who, args);
    writes bigint := test.writes();
BEGIN
    RETURN test.reply(fn, who, args) = first AND test.writes() = writes;
END
$$;

-- The newest row of the audit log.
CREATE OR REPLACE FUNCTION test.last_audit() RETURNS orderly.audit_log LANGUAGE sql AS $$
    SELECT * FROM orderly.audit_log ORDER BY id DESC LIMIT 1
$$;

-- Audit rows that do not name their actor (V016): a user (actor_kind 'user' and actor_user_id),
-- or no user and actor_kind 'system' or 'admin_sql'. The table's CHECK refuses them as they are
-- written; a test file that ran many commands says at its end that the whole log is clean:
--     SELECT is_empty('SELECT * FROM test.audit_rows_without_actor()', 'every audit row names its actor');
CREATE OR REPLACE FUNCTION test.audit_rows_without_actor()
RETURNS TABLE (id bigint, action text, actor_kind text, actor_user_id bigint, actor_db_role text) LANGUAGE sql AS $$
    SELECT a.id, a.action, a.actor_kind, a.actor_user_id, a.actor_db_role
    FROM orderly.audit_log a
    WHERE NOT coalesce(CASE a.actor_kind WHEN 'user'      THEN a.actor_user_id IS NOT NULL
                                         WHEN 'system'    THEN a.actor_user_id IS NULL
                                         WHEN 'admin_sql' THEN a.actor_user_id IS NULL END, false)
    ORDER BY a.id
$$;

-- The id that the test file stored under name in its own temp table
--     CREATE TEMP TABLE ids (name text PRIMARY KEY, id bigint);
-- plpgsql: that table exists only in the test's session, so a sql body could not be checked here.
CREATE OR REPLACE FUNCTION test.id(name text) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    RETURN (SELECT i.id FROM pg_temp.ids i WHERE i.name = id.name);
END
$$;

-- "Nothing changed": test.snapshot(what) counts rows now, test.unchanged() says whether the counts
-- are still the same. Each element of what is a table, or tables joined by "+" counted as one
-- sum ('orderly.products + orderly.skus'). test.snapshot() without what counts again what the
-- last snapshot of this session counted. The counts live in a temp table of the test's session.
CREATE OR REPLACE FUNCTION test.row_count(what text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    t     text;
    n     bigint;
    total bigint := 0;
BEGIN
    FOREACH t IN ARRAY string_to_array(what, '+') LOOP
        EXECUTE format('SELECT count(*) FROM %s', btrim(t)::regclass) INTO n;
        total := total + n;
    END LOOP;
    RETURN total;
END
$$;

CREATE OR REPLACE FUNCTION test.snapshot(what text[] DEFAULT NULL) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF to_regclass('pg_temp.test_snapshot') IS NULL THEN
        IF what IS NULL THEN
            RAISE EXCEPTION 'test.snapshot(): say what to count the first time';
        END IF;
        CREATE TEMP TABLE test_snapshot (what text PRIMARY KEY, n bigint);
    END IF;
    IF what IS NOT NULL THEN
        DELETE FROM pg_temp.test_snapshot;
        INSERT INTO pg_temp.test_snapshot (what) SELECT DISTINCT w FROM unnest(what) AS w;
    END IF;
    UPDATE pg_temp.test_snapshot s SET n = test.row_count(s.what);
END
$$;

CREATE OR REPLACE FUNCTION test.unchanged() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF to_regclass('pg_temp.test_snapshot') IS NULL THEN
        RAISE EXCEPTION 'test.unchanged(): no test.snapshot(...) in this session';
    END IF;
    RETURN NOT EXISTS (SELECT 1 FROM pg_temp.test_snapshot s WHERE test.row_count(s.what) <> s.n);
END
$$;

-- A customer created by who, with one address in Hamburg (its default ship-to): its id. The
-- e-mail is the name in lower case @example.com.
CREATE OR REPLACE FUNCTION test.customer(who text, name text, phone text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint := (test.call('customer_create', who, jsonb_build_object('name', name, 'email', lower(name) || '@example.com',
                                                                        'phone', phone)) ->> 'id')::bigint;
BEGIN
    PERFORM test.call('address_add', who, jsonb_build_object('customer', v_id, 'recipient', name, 'phone', phone,
        'line1', 'Kai 1', 'city', 'Hamburg', 'region', 'HH', 'postal_code', '20095', 'country', 'DE'));
    RETURN v_id;
END
$$;

-- An order created and submitted by who (with extra ORDER CREATE arguments), then moved as far as
-- the facts allow under its row lock, as the approval flow does once an order is approved (with
-- no approval rule loaded it is approved at once): its id.
CREATE OR REPLACE FUNCTION test.submitted(who text, customer bigint, lines jsonb, extra jsonb DEFAULT '{}') RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint := (test.call('order_create', who, jsonb_build_object('customer', customer, 'lines', lines, 'submit', true)
                                                   || extra) ->> 'id')::bigint;
    o    orderly.orders;
BEGIN
    SELECT * INTO o FROM orderly.orders x WHERE x.id = v_id FOR NO KEY UPDATE;
    PERFORM orderly.advance(o, test.uid(who));
    RETURN v_id;
END
$$;

-- A second session on this database (dblink, named `name`), for what must be seen from outside
-- the test's transaction: a lock held elsewhere, a writer that must not wait. False when dblink
-- is not installed (the caller skips); the caller disconnects it.
CREATE OR REPLACE FUNCTION test.other_session(name text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_available_extensions x WHERE x.name = 'dblink') THEN
        RETURN false;
    END IF;
    CREATE EXTENSION IF NOT EXISTS dblink;
    PERFORM dblink_connect(other_session.name,
                           format('host=%s port=%s dbname=%s user=%s', split_part(current_setting('unix_socket_directories'), ',', 1),
                                  current_setting('port'), current_database(), current_user));
    RETURN true;
END
$$;

-- Whether a statement runs without an error; what it did is rolled back (a subtransaction), so
-- that a test can show something is accepted without changing what later tests count.
CREATE OR REPLACE FUNCTION test.accepted(statement text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RAISE SQLSTATE 'XX999';
EXCEPTION WHEN SQLSTATE 'XX999' THEN
    RETURN true;
END
$$;

-- The views of a schema that role cannot read whole, each with its error: every column is read
-- (SELECT *), because a view's functions run with the reader's rights and count(*) may skip them.
CREATE OR REPLACE FUNCTION test.unreadable_views(schema_name text, role_name text) RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
    v        text;
    failures text[] := '{}';
BEGIN
    FOR v IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = schema_name AND c.relkind = 'v' ORDER BY 1 LOOP
        BEGIN
            EXECUTE format('SET LOCAL ROLE %I', role_name);
            EXECUTE format('SELECT * FROM %I.%I', schema_name, v);
            RESET ROLE;
        EXCEPTION WHEN OTHERS THEN
            RESET ROLE;
            failures := failures || (v || ': ' || SQLERRM);
        END;
    END LOOP;
    RETURN failures;
END
$$;
