-- Orderly: the extensions leave schema public, and nobody but its owner may create objects there.
-- Every SECURITY DEFINER function runs as orderly_owner with a fixed search_path; a schema on
-- that path where others may create objects would let them plant a function or operator that
-- the owner then runs. So pgcrypto (and pg_trgm, where possible) move to orderly_ext (owned by orderly_owner,
-- nobody else may create in it) and no search_path names public any more. An extension someone
-- deliberately installed in another schema stays there (R__010_helpers.sql finds pgcrypto
-- wherever it is). PostgreSQL 15 already creates databases without CREATE on public for
-- PUBLIC; a database made by an older version or by hand may still grant it, so we revoke it.
-- Moving an extension needs its owner (the migrating login), hence run-as-login.
-- orderly:run-as-login

CREATE SCHEMA IF NOT EXISTS orderly_ext AUTHORIZATION orderly_owner;
COMMENT ON SCHEMA orderly_ext IS 'Extensions Orderly uses (pgcrypto, pg_trgm); only orderly_owner may create objects here';

-- Moving an extension needs ownership of its objects. A trusted extension created by a login
-- that is not a superuser has its objects owned by the bootstrap superuser, so that login cannot
-- move it. Then pgcrypto, which nothing depends on (our functions call it by name at run time),
-- is dropped and created again in orderly_ext. pg_trgm stays where it is in that case: only
-- index operator classes use it, never a search_path, so it is harmless in public.
DO $move$
DECLARE
    e name;
BEGIN
    FOREACH e IN ARRAY ARRAY['pgcrypto', 'pg_trgm'] LOOP
        IF EXISTS (SELECT FROM pg_catalog.pg_extension x
                   JOIN pg_catalog.pg_namespace n ON n.oid = x.extnamespace
                   WHERE x.extname = e AND n.nspname = 'public') THEN
            BEGIN
                EXECUTE format('ALTER EXTENSION %I SET SCHEMA orderly_ext', e);
            EXCEPTION WHEN insufficient_privilege THEN
                IF e = 'pgcrypto' THEN
                    DROP EXTENSION pgcrypto;
                    CREATE EXTENSION pgcrypto WITH SCHEMA orderly_ext;
                END IF;
            END;
        END IF;
    END LOOP;
END
$move$;

-- Only the owner of schema public (or a superuser) may change its privileges. A login that is
-- neither gets a warning instead of a failed migration: the database's owner should run this.
DO $revoke$
BEGIN
    REVOKE CREATE ON SCHEMA public FROM PUBLIC;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'could not revoke CREATE on schema public from PUBLIC: run "REVOKE CREATE ON SCHEMA public FROM PUBLIC" as the database owner';
END
$revoke$;
