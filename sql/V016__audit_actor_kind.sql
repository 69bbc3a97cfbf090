-- Orderly: every audit row says who acted (issue 11, item 10). actor_kind is one of
--   'user'       a user's command: actor_user_id is that user;
--   'system'     Orderly acting on its own: the approval reminder timer
--                (api.run_approval_reminders), the login throttle's notice (an anonymous
--                client's failures); actor_user_id is NULL;
--   'admin_sql'  a database login through the admin functions (an admin in psql, orderlyd
--                --demo); actor_user_id is NULL and actor_db_role names the login.
-- orderly.audit (R__010_helpers.sql) writes it. The system is a kind, not a user row: it has no
-- password to guard, cannot log in, and appears in no list of users.
--
-- The CHECK refuses a row with neither a user nor one of the other two kinds. It is NOT VALID:
-- rows written before this migration keep actor_kind NULL (the log is append-only and is not
-- backfilled); one of them with an actor_user_id was a user's, one without was an admin in SQL
-- or the system (actor_db_role may tell which). Every row written from now on is checked.
-- The default 'user' still needs actor_user_id, so it lets no row through without an actor; it
-- keeps the previous release's functions writing their users' rows while the R files that
-- follow this one are being applied. Until then their rows without a user are refused (that
-- change rolls back and may be retried).

ALTER TABLE orderly.audit_log ADD COLUMN actor_kind text;
ALTER TABLE orderly.audit_log ALTER COLUMN actor_kind SET DEFAULT 'user';

ALTER TABLE orderly.audit_log ADD CONSTRAINT audit_log_actor CHECK (
    CASE actor_kind
        WHEN 'user'      THEN actor_user_id IS NOT NULL
        WHEN 'system'    THEN actor_user_id IS NULL
        WHEN 'admin_sql' THEN actor_user_id IS NULL
        ELSE false
    END) NOT VALID;

COMMENT ON COLUMN orderly.audit_log.actor_kind IS
    'Who acted: user (actor_user_id), system (timers, the login throttle) or admin_sql (the database login actor_db_role, through an admin function); NULL only in rows written before V016';
COMMENT ON COLUMN orderly.audit_log.actor_user_id IS
    'The user whose command it was (actor_kind user); NULL for the system and for admins working in SQL';
COMMENT ON COLUMN orderly.audit_log.actor_db_role IS
    'The database login, even inside SECURITY DEFINER functions';
