-- Orderly: admin.create_bi_login (issue 15). Owned by orderly_login_maker, the one role with
-- CREATEROLE (V022__bi_logins.sql says why), so this file runs as the migrating login and
-- creates the function as that role.
-- orderly:run-as-login

-- Its audit row, written by the owner: nobody but the owner holds any privilege on the audit
-- log, so orderly_login_maker may call this one function, which writes that one kind of row.
SET LOCAL ROLE orderly_owner;

CREATE OR REPLACE FUNCTION orderly.audit_bi_login(login text, statement_timeout interval) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN orderly.audit(NULL, 'bi_login.create', 'bi_login', login, NULL,
                         jsonb_build_object('login', login, 'member_of', 'orderly_bi', 'statement_timeout', statement_timeout::text),
                         actor_kind => 'admin_sql');
END
$$;

REVOKE ALL ON FUNCTION orderly.audit_bi_login(text, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orderly.audit_bi_login(text, interval) TO orderly_login_maker;

RESET ROLE;
SET LOCAL ROLE orderly_login_maker;

-- A login for a BI tool: member of orderly_bi (SELECT on the analytics views, nothing else), with
-- a statement timeout so that a heavy dashboard cannot hold the database, and analytics first on
-- its search path. The password is not kept anywhere but in PostgreSQL's own (SCRAM) form;
-- the audit row names the login, never the password. DDL takes no parameters: the name is
-- checked against a strict pattern and quoted with %I, the password with %L.
CREATE OR REPLACE FUNCTION admin.create_bi_login(name text, password text, statement_timeout interval DEFAULT '30 seconds')
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF name IS NULL OR name !~ '^[a-z][a-z0-9_]{2,62}$' THEN
        RAISE EXCEPTION 'a BI login name is 3 to 63 lowercase letters, digits or "_", starting with a letter' USING ERRCODE = 'OL400';
    END IF;
    IF name LIKE 'pg\_%' OR name LIKE 'orderly%' THEN
        RAISE EXCEPTION 'a BI login name may not start with pg_ or orderly' USING ERRCODE = 'OL400';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = create_bi_login.name) THEN
        RAISE EXCEPTION 'role "%" exists already', name USING ERRCODE = 'OL409';
    END IF;
    IF password IS NULL OR length(password) < 12 OR password ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'the password must be at least 12 characters, on one line' USING ERRCODE = 'OL400';
    END IF;
    IF statement_timeout IS NULL OR statement_timeout < interval '1 second' OR statement_timeout > interval '1 hour' THEN
        RAISE EXCEPTION 'statement_timeout must be between 1 second and 1 hour' USING ERRCODE = 'OL400';
    END IF;
    EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L IN ROLE orderly_bi', name, password);
    EXECUTE format('ALTER ROLE %I SET statement_timeout = %L', name,
                   (extract(epoch FROM statement_timeout) * 1000)::bigint || 'ms');
    EXECUTE format('ALTER ROLE %I SET search_path = analytics', name);
    PERFORM orderly.audit_bi_login(name, statement_timeout);
END
$$;

RESET ROLE;

REVOKE ALL ON FUNCTION admin.create_bi_login(text, text, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION admin.create_bi_login(text, text, interval) TO orderly_admin;
COMMENT ON FUNCTION admin.create_bi_login(text, text, interval) IS
    'Create a login for a BI tool: member of orderly_bi (the analytics views only), with a statement timeout (audited; the password is never stored in clear)';
