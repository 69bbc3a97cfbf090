-- Orderly: a role that creates BI logins and nothing else (issue 15: admin.create_bi_login).
--
-- Creating a login needs CREATEROLE, which orderly_owner must never have: every SECURITY DEFINER
-- function runs as the owner, and CREATEROLE would let one mistake in any of them mint roles
-- (in PostgreSQL 15 even members of pg_execute_server_program). So one NOLOGIN role holds it,
-- owns exactly one function (admin.create_bi_login, R__205_bi_logins.sql, which checks its
-- input and quotes every name with format's %I and %L), and may grant only orderly_bi.
-- orderly:run-as-login

DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'orderly_login_maker') THEN
        CREATE ROLE orderly_login_maker NOLOGIN CREATEROLE;
    END IF;
    -- The migrating login re-creates the function as this role (R__205), so it is a member.
    IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = session_user)
       AND NOT pg_catalog.pg_has_role(session_user, 'orderly_login_maker', 'MEMBER') THEN
        EXECUTE format('GRANT orderly_login_maker TO %I', session_user);
    END IF;
END
$roles$;

COMMENT ON ROLE orderly_login_maker IS 'Creates BI logins (admin.create_bi_login) and owns nothing else; never used to log in';

-- PostgreSQL 16 and later: granting a role needs ADMIN on it.
GRANT orderly_bi TO orderly_login_maker WITH ADMIN OPTION;
GRANT USAGE, CREATE ON SCHEMA admin TO orderly_login_maker;
-- It writes its audit row with orderly.audit (granted in R__205_bi_logins.sql, once the function exists).
GRANT USAGE ON SCHEMA orderly TO orderly_login_maker;
