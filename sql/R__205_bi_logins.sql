-- Orderly: BI logins (issue 15): admin.create_bi_login, admin.set_bi_login_password,
-- admin.drop_bi_login and the admin.bi_logins view. The three functions are owned by
-- orderly_login_maker, the one role with CREATEROLE (V022__bi_logins.sql says why), so this file
-- runs as the migrating login and creates them as that role. CREATEROLE reaches every role that
-- is not a superuser, so the password and drop functions first make sure that the role they are
-- given is a BI login and nothing more (admin.is_bi_login).
-- orderly:run-as-login

-- Their audit rows, written by the owner: nobody but the owner holds any privilege on the audit
-- log, so orderly_login_maker may call this one function, which writes only rows of entity
-- bi_login (never a password: the callers pass none).
SET LOCAL ROLE orderly_owner;

DROP FUNCTION IF EXISTS orderly.audit_bi_login(text, interval);
CREATE OR REPLACE FUNCTION orderly.audit_bi_login(login text, action text, before jsonb, after jsonb) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF action NOT IN ('bi_login.create', 'bi_login.password', 'bi_login.drop') THEN
        RAISE EXCEPTION 'not a BI login action: %', action USING ERRCODE = 'OL400';
    END IF;
    RETURN orderly.audit(NULL, action, 'bi_login', login, before, after, actor_kind => 'admin_sql');
END
$$;

REVOKE ALL ON FUNCTION orderly.audit_bi_login(text, text, jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orderly.audit_bi_login(text, text, jsonb, jsonb) TO orderly_login_maker;

-- A BI login's password, new or changed: at least 12 characters, on one line.
CREATE OR REPLACE FUNCTION orderly.check_bi_password(password text) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF password IS NULL OR length(password) < 12 OR password ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'the password must be at least 12 characters, on one line' USING ERRCODE = 'OL400';
    END IF;
END
$$;

REVOKE ALL ON FUNCTION orderly.check_bi_password(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orderly.check_bi_password(text) TO orderly_login_maker;

-- A BI login is what admin.create_bi_login made (its audit row says so): a role that is not
-- Orderly's or PostgreSQL's own, a member of orderly_bi and of no other role, with no power, no
-- privilege granted to it directly and nothing it owns. Anything else (a staff member's psql
-- login in orderly_bi with grants of its own, orderly_owner, a superuser) is not touched by the
-- BI functions: a new password for it would hand an admin its rights.
CREATE OR REPLACE FUNCTION admin.is_bi_login(name text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
    SELECT EXISTS (
        SELECT 1 FROM pg_catalog.pg_roles r
        WHERE r.rolname = is_bi_login.name
          AND r.rolname NOT LIKE 'pg\_%' AND r.rolname NOT LIKE 'orderly%'
          AND NOT (r.rolsuper OR r.rolcreaterole OR r.rolcreatedb OR r.rolreplication OR r.rolbypassrls)
          AND (SELECT array_agg(g.rolname) FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles g ON g.oid = m.roleid
               WHERE m.member = r.oid) = ARRAY['orderly_bi']::name[]
          -- made by admin.create_bi_login
          AND EXISTS (SELECT 1 FROM orderly.audit_log a WHERE a.entity = 'bi_login' AND a.action = 'bi_login.create'
                                                          AND a.entity_id = r.rolname::text)
          -- no privilege of its own and nothing it owns, in any database (pg_shdepend)
          AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_shdepend d
                          WHERE d.refclassid = 'pg_catalog.pg_authid'::regclass AND d.refobjid = r.oid)
          -- nobody is a member of it (PostgreSQL 16 makes its creator, orderly_login_maker, one)
          AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles w ON w.oid = m.member
                          WHERE m.roleid = r.oid AND w.rolname <> 'orderly_login_maker'))
$$;

REVOKE ALL ON FUNCTION admin.is_bi_login(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION admin.is_bi_login(text) TO orderly_login_maker;   -- orderly_admin: by default (V001)
COMMENT ON FUNCTION admin.is_bi_login(text) IS
    'Whether a role is a BI login (in orderly_bi and nothing else, no powers): the only roles the BI login functions touch';

-- What an admin sees of them: the settings each was given, whether it may log in, and its open
-- sessions (a dropped login's sessions run on until they end: terminate them by pid).
CREATE OR REPLACE VIEW admin.bi_logins AS
SELECT r.rolname::text AS name,
       r.rolcanlogin AS can_login,
       (SELECT substr(c, length('statement_timeout=') + 1) FROM unnest(r.rolconfig) c WHERE c LIKE 'statement\_timeout=%') AS statement_timeout,
       (SELECT max(a.at) FROM orderly.audit_log a WHERE a.entity = 'bi_login' AND a.entity_id = r.rolname::text AND a.action = 'bi_login.create') AS created_at,
       (SELECT max(a.at) FROM orderly.audit_log a WHERE a.entity = 'bi_login' AND a.entity_id = r.rolname::text AND a.action = 'bi_login.password') AS credentials_changed_at,
       (SELECT array_agg(s.pid ORDER BY s.pid) FROM pg_catalog.pg_stat_activity s WHERE s.usesysid = r.oid) AS session_pids
FROM pg_catalog.pg_roles r
WHERE admin.is_bi_login(r.rolname);

COMMENT ON VIEW admin.bi_logins IS
    'BI logins (admin.create_bi_login): statement timeout, when created and last re-passworded, open sessions';

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
    -- A keyword (all, none, current_user, user …) or public: as a role name it means something
    -- else to GRANT and ALTER ROLE (ALTER ROLE all changes every role).
    IF quote_ident(name) <> name OR name = 'public' THEN
        RAISE EXCEPTION 'a BI login name may not be an SQL keyword or "public" ("%" is one)', name USING ERRCODE = 'OL400';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = create_bi_login.name) THEN
        RAISE EXCEPTION 'role "%" exists already', name USING ERRCODE = 'OL409';
    END IF;
    PERFORM orderly.check_bi_password(password);
    IF statement_timeout IS NULL OR statement_timeout < interval '1 second' OR statement_timeout > interval '1 hour' THEN
        RAISE EXCEPTION 'statement_timeout must be between 1 second and 1 hour' USING ERRCODE = 'OL400';
    END IF;
    -- Raised again without the statement: its context would show the password.
    BEGIN
        EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L IN ROLE orderly_bi', name, password);
    EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION 'BI login "%" could not be created: %', name, SQLERRM USING ERRCODE = SQLSTATE;
    END;
    EXECUTE format('ALTER ROLE %I SET statement_timeout = %L', name,
                   (extract(epoch FROM statement_timeout) * 1000)::bigint || 'ms');
    EXECUTE format('ALTER ROLE %I SET search_path = analytics', name);
    PERFORM orderly.audit_bi_login(name, 'bi_login.create', NULL,
        jsonb_build_object('login', name, 'member_of', 'orderly_bi', 'statement_timeout', statement_timeout::text));
END
$$;

-- A new password for a BI login (a leaked one, or a rotation); its open sessions stay open.
CREATE OR REPLACE FUNCTION admin.set_bi_login_password(name text, password text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT admin.is_bi_login(name) THEN
        RAISE EXCEPTION 'no BI login "%" (admin.bi_logins lists them)', name USING ERRCODE = 'OL404';
    END IF;
    PERFORM orderly.check_bi_password(password);
    BEGIN
        EXECUTE format('ALTER ROLE %I PASSWORD %L', name, password);
    EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION 'BI login "%" kept its password: %', name, SQLERRM USING ERRCODE = SQLSTATE;
    END;
    PERFORM orderly.audit_bi_login(name, 'bi_login.password', NULL, jsonb_build_object('login', name));
END
$$;

-- A BI login removed: it can connect no more. Sessions it has open run on until they end (the
-- NOTICE names them; pg_terminate_backend ends them at once).
CREATE OR REPLACE FUNCTION admin.drop_bi_login(name text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_before jsonb;
    v_pids int[];
BEGIN
    IF NOT admin.is_bi_login(name) THEN
        RAISE EXCEPTION 'no BI login "%" (admin.bi_logins lists them)', name USING ERRCODE = 'OL404';
    END IF;
    SELECT jsonb_build_object('login', r.rolname, 'member_of', 'orderly_bi', 'can_login', r.rolcanlogin, 'settings', to_jsonb(r.rolconfig))
      INTO v_before FROM pg_catalog.pg_roles r WHERE r.rolname = drop_bi_login.name;
    SELECT array_agg(s.pid ORDER BY s.pid) INTO v_pids
      FROM pg_catalog.pg_stat_activity s JOIN pg_catalog.pg_roles r ON r.oid = s.usesysid WHERE r.rolname = drop_bi_login.name;
    -- A BI login owns nothing and holds no grant of its own (admin.is_bi_login): nothing keeps it.
    EXECUTE format('DROP ROLE %I', name);
    PERFORM orderly.audit_bi_login(name, 'bi_login.drop', v_before, NULL);
    IF v_pids IS NOT NULL THEN
        RAISE NOTICE 'BI login "%" still has sessions open (pids %): they end when they disconnect, or with pg_terminate_backend(pid)',
            name, array_to_string(v_pids, ', ');
    END IF;
END
$$;

RESET ROLE;

REVOKE ALL ON FUNCTION admin.create_bi_login(text, text, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION admin.create_bi_login(text, text, interval) TO orderly_admin;
COMMENT ON FUNCTION admin.create_bi_login(text, text, interval) IS
    'Create a login for a BI tool: member of orderly_bi (the analytics views only), with a statement timeout (audited; the password is never stored in clear)';
REVOKE ALL ON FUNCTION admin.set_bi_login_password(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION admin.set_bi_login_password(text, text) TO orderly_admin;
COMMENT ON FUNCTION admin.set_bi_login_password(text, text) IS
    'Give a BI login a new password (at least 12 characters; audited without it); only roles admin.bi_logins lists';
REVOKE ALL ON FUNCTION admin.drop_bi_login(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION admin.drop_bi_login(text) TO orderly_admin;
COMMENT ON FUNCTION admin.drop_bi_login(text) IS
    'Remove a BI login (audited); its open sessions run on until they end. Only roles admin.bi_logins lists';
