-- Orderly: group roles, schemas, extensions and default privileges.
--
-- This is the only file the migrator runs as its own login, so everything that needs
-- superuser/CREATEROLE lives here. Every later file runs under
-- SET LOCAL ROLE orderly_owner, which is what makes orderly_owner own all objects.
--
-- Roles are cluster-wide while this file runs once per database, and tests create many
-- databases in one cluster: roles are created only when missing.
--
-- The marker below tells the migrator to run this file as its own login, never under
-- SET ROLE orderly_owner (which exists already on the second database of a cluster, and may not
-- create schemas or extensions).
-- orderly:run-as-login

DO $roles$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['orderly_owner', 'orderly_app', 'orderly_bi', 'orderly_admin'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;

    -- A CREATEROLE (non-superuser) migrating login must be able to SET ROLE orderly_owner for
    -- every later file, and to create the schemas below on its behalf.
    IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = session_user)
       AND NOT pg_catalog.pg_has_role(session_user, 'orderly_owner', 'MEMBER') THEN
        EXECUTE format('GRANT orderly_owner TO %I', session_user);
    END IF;
END
$roles$;

COMMENT ON ROLE orderly_owner IS 'Owns every Orderly object; never used to log in';
COMMENT ON ROLE orderly_app   IS 'The orderlyd server login is a member: EXECUTE on schema api only';
COMMENT ON ROLE orderly_bi    IS 'BI tools: SELECT on analytics views only';
COMMENT ON ROLE orderly_admin IS 'Human administrators: admin functions and views only';

-- pgcrypto provides bcrypt (crypt/gen_salt). If it is already installed in another schema we
-- leave it there: orderly.hash_password finds it wherever it is (see R__010_helpers.sql).
CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA public;

CREATE SCHEMA IF NOT EXISTS orderly   AUTHORIZATION orderly_owner;
CREATE SCHEMA IF NOT EXISTS api       AUTHORIZATION orderly_owner;
CREATE SCHEMA IF NOT EXISTS analytics AUTHORIZATION orderly_owner;
CREATE SCHEMA IF NOT EXISTS admin     AUTHORIZATION orderly_owner;

COMMENT ON SCHEMA orderly   IS 'Orderly tables and internal helpers; no direct access for anyone but the owner';
COMMENT ON SCHEMA api       IS 'Functions the orderlyd server calls';
COMMENT ON SCHEMA analytics IS 'Read-only views for BI tools';
COMMENT ON SCHEMA admin     IS 'Functions and views for administrators';

-- Schema access is the first wall: orderly_app cannot even name an orderly table.
GRANT USAGE ON SCHEMA api       TO orderly_app;
GRANT USAGE ON SCHEMA analytics TO orderly_bi;
GRANT USAGE ON SCHEMA admin     TO orderly_admin;

-- PostgreSQL grants EXECUTE on new functions to PUBLIC; for SECURITY DEFINER functions that
-- would hand the owner's rights to anybody who can reach the schema.
ALTER DEFAULT PRIVILEGES FOR ROLE orderly_owner REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

-- Future objects in the public-facing schemas are reachable by their audience without each
-- migration remembering to grant (the R files still grant explicitly).
ALTER DEFAULT PRIVILEGES FOR ROLE orderly_owner IN SCHEMA api       GRANT EXECUTE ON FUNCTIONS TO orderly_app;
ALTER DEFAULT PRIVILEGES FOR ROLE orderly_owner IN SCHEMA admin     GRANT EXECUTE ON FUNCTIONS TO orderly_admin;
ALTER DEFAULT PRIVILEGES FOR ROLE orderly_owner IN SCHEMA admin     GRANT SELECT ON TABLES TO orderly_admin;
ALTER DEFAULT PRIVILEGES FOR ROLE orderly_owner IN SCHEMA analytics GRANT SELECT ON TABLES TO orderly_bi;
