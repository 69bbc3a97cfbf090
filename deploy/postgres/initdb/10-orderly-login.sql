-- Orderly: the login orderlyd uses, made by the postgres image on its first start.
--
-- docker-compose.yml mounts this folder at /docker-entrypoint-initdb.d. The image runs it once,
-- when the data volume is still empty: as the superuser (POSTGRES_USER) with psql, which reads
-- the settings below from the container's environment (\getenv needs psql 15 or later):
--
--   ORDERLY_DB_USER      the login orderlyd uses (default orderly); never POSTGRES_USER
--   ORDERLY_DB_NAME      its database (default orderly)
--   ORDERLY_DB_PASSWORD  its password (required)
--
-- The login gets only what the migrations and the server need, and no SUPERUSER:
-- - it owns the database, so it creates orderly_meta (the migrator's bookkeeping) and may change
--   the privileges of schema public (V013 revokes CREATE on it from PUBLIC);
-- - CREATEROLE, because V001 comments on the group roles (and creates them where missing);
-- - membership in the group roles, made here rather than left to V001: V001 grants the
--   migrating login orderly_owner only, but orderlyd also has to SET ROLE orderly_app on every
--   connection it serves with; and on PostgreSQL 16 a CREATEROLE login gets no SET on the roles
--   it creates itself (createrole_self_grant is empty), so V001 could not SET ROLE orderly_owner
--   either. ADMIN OPTION because
--   PostgreSQL 16 lets only a CREATEROLE role with it comment on a role (V001 does);
-- - pgcrypto and pg_trgm are created here, in orderly_ext where V013 puts them: a non-superuser
--   may create these trusted extensions, but not move them out of public as V013 does (their
--   functions belong to the bootstrap superuser). V001, V004 and V013 then find them in place.
-- scripts/check-least-privilege.sh (run by `make test`) runs this file as the image does, then
-- migrates and serves as the login it made.

\set ON_ERROR_STOP on

\getenv orderly_user ORDERLY_DB_USER
\getenv orderly_db ORDERLY_DB_NAME
\getenv orderly_password ORDERLY_DB_PASSWORD
\if :{?orderly_user}
\else
\set orderly_user orderly
\endif
\if :{?orderly_db}
\else
\set orderly_db orderly
\endif
\if :{?orderly_password}
\else
\set orderly_password ''
\endif

SELECT :'orderly_password' = '' AS orderly_no_password,
       EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = :'orderly_user' AND rolsuper) AS orderly_user_is_superuser
\gset
\if :orderly_no_password
DO $$ BEGIN RAISE EXCEPTION 'ORDERLY_DB_PASSWORD is not set: orderlyd''s login needs a password'; END $$;
\endif
\if :orderly_user_is_superuser
DO $$ BEGIN RAISE EXCEPTION 'ORDERLY_DB_USER names a superuser (is it POSTGRES_USER?): orderlyd must log in as a login of its own'; END $$;
\endif

SELECT format('CREATE ROLE %I LOGIN CREATEROLE', :'orderly_user')
WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = :'orderly_user')
\gexec
ALTER ROLE :"orderly_user" LOGIN CREATEROLE;
-- A statement of its own: a failing statement is logged, and this one should not fail.
ALTER ROLE :"orderly_user" PASSWORD :'orderly_password';

-- The group roles exactly as V001 makes them (it skips those that exist).
SELECT format('CREATE ROLE %I NOLOGIN', r)
FROM unnest(ARRAY['orderly_owner', 'orderly_app', 'orderly_bi', 'orderly_admin']) AS r
WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r)
\gexec
GRANT orderly_owner, orderly_app, orderly_bi, orderly_admin TO :"orderly_user" WITH ADMIN OPTION;

SELECT format('CREATE DATABASE %I OWNER %I', :'orderly_db', :'orderly_user')
WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = :'orderly_db')
\gexec
ALTER DATABASE :"orderly_db" OWNER TO :"orderly_user";

\connect :"orderly_db"
CREATE SCHEMA IF NOT EXISTS orderly_ext AUTHORIZATION orderly_owner;
CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA orderly_ext;
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA orderly_ext;
-- V005 and V010 name pg_trgm's operator classes unqualified, written when it lived in public:
-- the login's sessions here find them at the end of the usual path.
ALTER ROLE :"orderly_user" IN DATABASE :"orderly_db" SET search_path = "$user", public, orderly_ext;
