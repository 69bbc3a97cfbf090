-- Orderly: internal helpers shared by the admin and api functions.
--
-- Repeatable file: re-run whenever it changes, so everything is CREATE OR REPLACE. When a
-- signature or return type changes, add a DROP FUNCTION IF EXISTS for the old one above it.
-- None of these is granted to anybody (V001's default privileges give no EXECUTE on a function
-- of orderly_owner's to PUBLIC, and none in schema orderly to anyone): they run inside SECURITY
-- DEFINER functions owned by orderly_owner. All error messages may be shown to clients verbatim,
-- so they are short, one line, and never mention SQL or internal names.

-- Errors ---------------------------------------------------------------------------------------

-- For SQL-language callers and CASE branches, where RAISE is not available.
CREATE OR REPLACE FUNCTION orderly.fail(code text, message text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = fail.code, MESSAGE = fail.message;
END
$$;

-- Client-supplied text echoed in an error message must keep the message one short line.
CREATE OR REPLACE FUNCTION orderly.for_message(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN length(v) > 64 THEN left(v, 63) || '…' ELSE v END
    FROM (SELECT regexp_replace(coalesce($1, ''), '[[:cntrl:]]', ' ', 'g') AS v) s
$$;

-- Text that would display as something other than it is: a control character (line breaks and
-- tab excepted, C1 included), Unicode's line/paragraph separator, a bidirectional
-- override/isolate, or an invisible character that carries or hides text (interlinear
-- annotations, deprecated format characters, tag characters, U+FEFF). The protocol refuses these in
-- every request (OrderlyProtocol.TextRules); this is the same rule for what arrives another way
-- (the carriers' webhook).
CREATE OR REPLACE FUNCTION orderly.hides_text(value text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT $1 ~ '[\u0001-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\u206a-\u206f\ufeff\ufff9-\ufffb\U000e0000-\U000e007f]'
$$;

-- Text shown on one line as it is (a name, a subject, a one-line note that an admin sets in SQL):
-- nothing orderly.hides_text refuses, and no line break or tab either.
CREATE OR REPLACE FUNCTION orderly.shows_on_one_line(value text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT $1 !~ '[[:cntrl:]]' AND NOT orderly.hides_text($1) $$;

-- JSON argument readers ------------------------------------------------------------------------
-- The server passes a command's arguments as one jsonb object. Clients type values, so a
-- number may arrive as 1042 or "1042" and a boolean as true or "true": readers accept both.
-- A missing key, JSON null and (for typed readers) an empty string all mean "not given".

CREATE OR REPLACE FUNCTION orderly.arg_value(args jsonb, key text, required boolean DEFAULT false) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v jsonb;
BEGIN
    IF args IS NOT NULL AND jsonb_typeof(args) <> 'object' THEN
        RAISE EXCEPTION 'arguments must be a JSON object' USING ERRCODE = 'OL400';
    END IF;
    v := args -> key;
    IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
        IF required THEN
            RAISE EXCEPTION '% is required', key USING ERRCODE = 'OL400';
        END IF;
        RETURN NULL;
    END IF;
    RETURN v;
END
$$;

-- The one place that decides what "not given" means for a scalar argument, so the typed readers
-- below agree on it: a missing key, JSON null or a blank string is NULL ("<key> is required" when
-- required). keep_blank keeps an optional blank string for readers where blank is a value. An
-- object or array is refused as "<key> must be <expected>", in the words of the calling reader.
CREATE OR REPLACE FUNCTION orderly.arg_scalar(args jsonb, key text, required boolean, expected text,
                                              keep_blank boolean DEFAULT false) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v jsonb := orderly.arg_value(args, key, required);
BEGIN
    IF v IS NULL THEN
        RETURN NULL;
    ELSIF jsonb_typeof(v) IN ('object', 'array') THEN
        RAISE EXCEPTION '% must be %', key, expected USING ERRCODE = 'OL400';
    ELSIF jsonb_typeof(v) = 'string' AND btrim(v #>> '{}') = '' AND NOT keep_blank THEN
        IF required THEN
            RAISE EXCEPTION '% is required', key USING ERRCODE = 'OL400';
        END IF;
        RETURN NULL;
    END IF;
    RETURN v;
END
$$;

-- Scalars of any type are accepted as text (an SKU may look like a number). A required text
-- argument must not be blank; an optional one is returned as given, blank included.
-- No SET search_path (every name is qualified), so that it is inlined into its callers.
CREATE OR REPLACE FUNCTION orderly.arg_text(args jsonb, key text, required boolean DEFAULT false) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT orderly.arg_scalar($1, $2, $3, 'a string', keep_blank => NOT coalesce($3, false)) #>> '{}'
$$;

CREATE OR REPLACE FUNCTION orderly.arg_numeric(args jsonb, key text, required boolean DEFAULT false) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v jsonb := orderly.arg_scalar(args, key, required, 'a number');
BEGIN
    IF v IS NULL THEN
        RETURN NULL;
    ELSIF jsonb_typeof(v) = 'number' THEN
        RETURN v::numeric;
    -- Plain decimals only: no exponent, NaN or Infinity from a client.
    ELSIF jsonb_typeof(v) = 'string' AND btrim(v #>> '{}') ~ '^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$' THEN
        RETURN btrim(v #>> '{}')::numeric;
    END IF;
    RAISE EXCEPTION '% must be a number', key USING ERRCODE = 'OL400';
END
$$;

CREATE OR REPLACE FUNCTION orderly.arg_bigint(args jsonb, key text, required boolean DEFAULT false) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v jsonb := orderly.arg_scalar(args, key, required, 'an integer');
    n numeric;
BEGIN
    IF v IS NULL THEN
        RETURN NULL;
    ELSIF jsonb_typeof(v) = 'number' THEN
        n := v::numeric;                        -- 12.0 is an integer written by a JSON library
    ELSIF jsonb_typeof(v) = 'string' AND btrim(v #>> '{}') ~ '^[+-]?[0-9]+$' THEN
        n := btrim(v #>> '{}')::numeric;        -- but "12.0" typed by a person is not
    END IF;
    IF n IS NULL OR n <> trunc(n) THEN
        RAISE EXCEPTION '% must be an integer', key USING ERRCODE = 'OL400';
    END IF;
    IF n < -9223372036854775808 OR n > 9223372036854775807 THEN
        RAISE EXCEPTION '% is out of range', key USING ERRCODE = 'OL400';
    END IF;
    RETURN n::bigint;
END
$$;

CREATE OR REPLACE FUNCTION orderly.arg_int(args jsonb, key text, required boolean DEFAULT false) RETURNS integer
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint := orderly.arg_bigint(args, key, required);
BEGIN
    IF n < -2147483648 OR n > 2147483647 THEN
        RAISE EXCEPTION '% is out of range', key USING ERRCODE = 'OL400';
    END IF;
    RETURN n::integer;
END
$$;

CREATE OR REPLACE FUNCTION orderly.arg_bool(args jsonb, key text, required boolean DEFAULT false) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v jsonb := orderly.arg_scalar(args, key, required, 'true or false');
    s text := lower(btrim(v #>> '{}'));
BEGIN
    IF v IS NULL THEN
        RETURN NULL;
    ELSIF jsonb_typeof(v) = 'boolean' THEN
        RETURN v::boolean;
    ELSIF jsonb_typeof(v) IN ('string', 'number') AND s IN ('true', 'yes', 'on', '1') THEN
        RETURN true;
    ELSIF jsonb_typeof(v) IN ('string', 'number') AND s IN ('false', 'no', 'off', '0') THEN
        RETURN false;
    END IF;
    RAISE EXCEPTION '% must be true or false', key USING ERRCODE = 'OL400';
END
$$;

-- limit= of a listing command: default when not given, 1 to max otherwise.
CREATE OR REPLACE FUNCTION orderly.arg_limit(args jsonb, default_limit integer, max_limit integer) RETURNS integer
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer := coalesce(orderly.arg_int(args, 'limit'), default_limit);
BEGIN
    IF n NOT BETWEEN 1 AND max_limit THEN
        RAISE EXCEPTION 'limit must be between 1 and %', max_limit USING ERRCODE = 'OL400';
    END IF;
    RETURN n;
END
$$;

-- A day argument, ISO only ("2026-12-24"): not the other spellings PostgreSQL would take for a
-- date ("today", "infinity", "Dec 24 2026", a five-digit year).
CREATE OR REPLACE FUNCTION orderly.arg_date(args jsonb, key text) RETURNS date
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v text := btrim(orderly.arg_text(args, key));
BEGIN
    IF coalesce(v, '') = '' THEN
        RETURN NULL;
    END IF;
    IF v !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' THEN
        RAISE EXCEPTION '% must be a date like 2026-12-24', key USING ERRCODE = 'OL400';
    END IF;
    RETURN v::date;
EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN
    RAISE EXCEPTION '% must be a date like 2026-12-24', key USING ERRCODE = 'OL400';
END
$$;

-- A timestamp argument ("2025-01-31", "2025-01-31T12:00:00Z"); a bad one is OL400, not a crash.
CREATE OR REPLACE FUNCTION orderly.arg_time(args jsonb, key text) RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v text := btrim(orderly.arg_text(args, key));
BEGIN
    IF coalesce(v, '') = '' THEN
        RETURN NULL;
    END IF;
    IF v !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9:.]+)?(Z|[+-][0-9:]+)?$' THEN
        RAISE EXCEPTION '% must be a date or time like 2025-01-31 or 2025-01-31T12:00:00Z', key USING ERRCODE = 'OL400';
    END IF;
    RETURN v::timestamptz;
EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format OR invalid_time_zone_displacement_value THEN
    RAISE EXCEPTION '% must be a date or time like 2025-01-31 or 2025-01-31T12:00:00Z', key USING ERRCODE = 'OL400';
END
$$;

-- A misspelt argument must not be silently ignored ("emial=" would otherwise create a customer
-- without the e-mail the client meant to change).
CREATE OR REPLACE FUNCTION orderly.check_args(args jsonb, allowed text[]) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    unknown text;
BEGIN
    IF args IS NULL THEN
        RETURN;
    END IF;
    IF jsonb_typeof(args) <> 'object' THEN
        RAISE EXCEPTION 'arguments must be a JSON object' USING ERRCODE = 'OL400';
    END IF;
    SELECT k INTO unknown FROM jsonb_object_keys(args) AS k WHERE k <> ALL (allowed) ORDER BY k LIMIT 1;
    IF unknown IS NOT NULL AND cardinality(allowed) = 0 THEN
        RAISE EXCEPTION 'unknown argument "%"; this command takes no arguments', orderly.for_message(unknown)
            USING ERRCODE = 'OL400';
    ELSIF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'unknown argument "%"; expected one of: %', orderly.for_message(unknown),
            array_to_string(allowed, ', ') USING ERRCODE = 'OL400';
    END IF;
END
$$;

-- Text matched literally inside a LIKE pattern (the default escape character is "\").
CREATE OR REPLACE FUNCTION orderly.like_escape(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT replace(replace(replace($1, '\', '\\'), '%', '\%'), '_', '\_')
$$;

-- Credentials ----------------------------------------------------------------------------------

-- Whether a code is an ISO 639-1 language (the e-mail language of a customer, of a template, of a
-- wording): "xx" or "zz" passed the two-letter pattern and named no language at all. The list is
-- ISO's, which changes once in years; inlined where it is used.
CREATE OR REPLACE FUNCTION orderly.is_language(code text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT lower(btrim($1)) = ANY (ARRAY[
        'aa', 'ab', 'ae', 'af', 'ak', 'am', 'an', 'ar', 'as', 'av', 'ay', 'az', 'ba', 'be', 'bg', 'bi', 'bm', 'bn', 'bo', 'br',
        'bs', 'ca', 'ce', 'ch', 'co', 'cr', 'cs', 'cu', 'cv', 'cy', 'da', 'de', 'dv', 'dz', 'ee', 'el', 'en', 'eo', 'es', 'et',
        'eu', 'fa', 'ff', 'fi', 'fj', 'fo', 'fr', 'fy', 'ga', 'gd', 'gl', 'gn', 'gu', 'gv', 'ha', 'he', 'hi', 'ho', 'hr', 'ht',
        'hu', 'hy', 'hz', 'ia', 'id', 'ie', 'ig', 'ii', 'ik', 'io', 'is', 'it', 'iu', 'ja', 'jv', 'ka', 'kg', 'ki', 'kj', 'kk',
        'kl', 'km', 'kn', 'ko', 'kr', 'ks', 'ku', 'kv', 'kw', 'ky', 'la', 'lb', 'lg', 'li', 'ln', 'lo', 'lt', 'lu', 'lv', 'mg',
        'mh', 'mi', 'mk', 'ml', 'mn', 'mr', 'ms', 'mt', 'my', 'na', 'nb', 'nd', 'ne', 'ng', 'nl', 'nn', 'no', 'nr', 'nv', 'ny',
        'oc', 'oj', 'om', 'or', 'os', 'pa', 'pi', 'pl', 'ps', 'pt', 'qu', 'rm', 'rn', 'ro', 'ru', 'rw', 'sa', 'sc', 'sd', 'se',
        'sg', 'si', 'sk', 'sl', 'sm', 'sn', 'so', 'sq', 'sr', 'ss', 'st', 'su', 'sv', 'sw', 'ta', 'te', 'tg', 'th', 'ti', 'tk',
        'tl', 'tn', 'to', 'tr', 'ts', 'tt', 'tw', 'ty', 'ug', 'uk', 'ur', 'uz', 've', 'vi', 'vo', 'wa', 'wo', 'xh', 'yi', 'yo',
        'za', 'zh', 'zu'])
$$;

CREATE OR REPLACE FUNCTION orderly.check_username(username text) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Same rule as the users_username_format constraint; this one explains itself.
    IF username IS NULL OR username !~ '^[A-Za-z0-9][A-Za-z0-9_.-]{1,63}$' THEN
        RAISE EXCEPTION 'invalid username: use 2 to 64 letters, digits, "_", "." or "-", starting with a letter or digit'
            USING ERRCODE = 'OL400';
    END IF;
    -- The audit log names Orderly's own actions "system" (AUDIT LIST actor=system): a user of
    -- that name could be neither told apart nor listed.
    IF lower(username) = 'system' THEN
        RAISE EXCEPTION 'username "%" is reserved: the audit log names Orderly itself so', username USING ERRCODE = 'OL400';
    END IF;
END
$$;

-- Whether the text has a character one can see: spaces of every kind (no-break, ideographic),
-- fillers and joiners read as blank (the database's C collation knows only ASCII spaces).
CREATE OR REPLACE FUNCTION orderly.shows_something(value text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT $1 ~ '[^[:space:]\u00a0\u00ad\u115f\u1160\u180e\u2000-\u200f\u2028-\u202f\u205f-\u2064\u3000\u3164\uffa0\ufeff]'
$$;

CREATE OR REPLACE FUNCTION orderly.check_password(password text) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF password IS NULL OR length(password) < 8 THEN
        RAISE EXCEPTION 'password must be at least 8 characters' USING ERRCODE = 'OL400';
    END IF;
    -- Eight spaces are eight characters, and no secret (no-break or ideographic ones neither).
    IF NOT orderly.shows_something(password) THEN
        RAISE EXCEPTION 'password must not be only spaces' USING ERRCODE = 'OL400';
    END IF;
    -- bcrypt ignores everything after 72 bytes; refusing is better than silently truncating.
    IF octet_length(password) > 72 THEN
        RAISE EXCEPTION 'password must be at most 72 bytes' USING ERRCODE = 'OL400';
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION orderly.check_display_name(display_name text) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF display_name IS NOT NULL
       AND (length(display_name) NOT BETWEEN 1 AND 200 OR NOT orderly.shows_on_one_line(display_name)) THEN
        RAISE EXCEPTION 'display name must be 1 to 200 characters without control or direction-override characters'
            USING ERRCODE = 'OL400';
    END IF;
END
$$;

-- Every function that calls pgcrypto is here; the DO block below points their search_path at
-- pgcrypto's schema, wherever it lives.
CREATE OR REPLACE FUNCTION orderly.hash_password(password text) RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN crypt(password, gen_salt('bf', 10));
END
$$;

CREATE OR REPLACE FUNCTION orderly.password_matches(password text, password_hash text) RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN password IS NOT NULL AND password_hash IS NOT NULL
       AND crypt(password, password_hash) = password_hash;
END
$$;

-- Carriers' webhook secrets (V018, R__192_tracking.sql): encrypted at rest with the key of
-- orderly.secret_key, which only the owner reads; HMAC needs the secret itself, so it cannot be
-- a one-way hash.
CREATE OR REPLACE FUNCTION orderly.encrypt_secret(secret text) RETURNS bytea
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN pgp_sym_encrypt(secret, encode((SELECT k.key FROM orderly.secret_key k), 'hex'),
                           'cipher-algo=aes256, s2k-mode=1');
END
$$;

CREATE OR REPLACE FUNCTION orderly.decrypt_secret(secret bytea) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN pgp_sym_decrypt(secret, encode((SELECT k.key FROM orderly.secret_key k), 'hex'));
END
$$;

-- sha256=<hex> of HMAC-SHA256(body, secret), the value of the X-Orderly-Signature header.
CREATE OR REPLACE FUNCTION orderly.webhook_signature(body text, secret text) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN 'sha256=' || encode(hmac(convert_to(body, 'UTF8'), convert_to(secret, 'UTF8'), 'sha256'), 'hex');
END
$$;

DO $pgcrypto$
DECLARE
    s  name;
    fn regprocedure;
BEGIN
    SELECT n.nspname INTO s
    FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname = 'pgcrypto';
    IF s IS NULL THEN
        RAISE EXCEPTION 'the pgcrypto extension is not installed';
    END IF;
    -- Anyone may have been able to create objects in public (V013__extensions_out_of_public.sql).
    IF s = 'public' THEN
        RAISE EXCEPTION 'pgcrypto must not live in schema public: ALTER EXTENSION pgcrypto SET SCHEMA orderly_ext';
    END IF;
    FOREACH fn IN ARRAY ARRAY['orderly.hash_password(text)', 'orderly.password_matches(text, text)',
                              'orderly.encrypt_secret(text)', 'orderly.decrypt_secret(bytea)',
                              'orderly.webhook_signature(text, text)']::regprocedure[] LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, %I, pg_temp', fn, s);
    END LOOP;
END
$pgcrypto$;

-- Users, roles, permissions ----------------------------------------------------------------------

CREATE OR REPLACE FUNCTION orderly.is_locked(u orderly.users) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ($1).locked OR coalesce(($1).locked_until > now(), false)
$$;

-- "C" collation: the order clients see must not depend on the database locale.
CREATE OR REPLACE FUNCTION orderly.user_role_names(user_id bigint) RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ARRAY(
        SELECT r.name
        FROM orderly.user_roles ur JOIN orderly.roles r ON r.id = ur.role_id
        WHERE ur.user_id = $1
        ORDER BY r.name COLLATE "C")
$$;

CREATE OR REPLACE FUNCTION orderly.user_permission_codes(user_id bigint) RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ARRAY(
        SELECT rp.permission
        FROM orderly.user_roles ur JOIN orderly.role_permissions rp ON rp.role_id = ur.role_id
        WHERE ur.user_id = $1
        GROUP BY rp.permission
        ORDER BY rp.permission COLLATE "C")
$$;

-- The shape written to audit_log before/after for a user. Never includes the password hash.
CREATE OR REPLACE FUNCTION orderly.user_snapshot(user_id bigint) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object(
        'id', u.id,
        'username', u.username,
        'display_name', u.display_name,
        'locked', u.locked,
        'locked_until', u.locked_until,
        'failed_attempts', u.failed_attempts,
        'customer_id', u.customer_id,
        'roles', to_jsonb(orderly.user_role_names(u.id)))
    FROM orderly.users u
    WHERE u.id = $1
$$;

-- The shape written to audit_log before/after for a role.
CREATE OR REPLACE FUNCTION orderly.role_snapshot(role_id bigint) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object(
        'id', r.id,
        'name', r.name,
        'description', r.description,
        'permissions', to_jsonb(ARRAY(
            SELECT rp.permission FROM orderly.role_permissions rp
            WHERE rp.role_id = r.id ORDER BY rp.permission COLLATE "C")))
    FROM orderly.roles r
    WHERE r.id = $1
$$;

-- Admin functions lock the row so that concurrent changes to one user serialize.
CREATE OR REPLACE FUNCTION orderly.user_for_update(username text) RETURNS orderly.users
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    u orderly.users;
BEGIN
    SELECT * INTO u FROM orderly.users x WHERE lower(x.username) = lower(user_for_update.username) FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown user "%"', orderly.for_message(user_for_update.username) USING ERRCODE = 'OL404';
    END IF;
    RETURN u;
END
$$;

CREATE OR REPLACE FUNCTION orderly.role_by_name(name text) RETURNS orderly.roles
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r orderly.roles;
BEGIN
    SELECT * INTO r FROM orderly.roles x WHERE x.name = role_by_name.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown role "%"', orderly.for_message(role_by_name.name) USING ERRCODE = 'OL404';
    END IF;
    RETURN r;
END
$$;

-- Who is a customer login ------------------------------------------------------------------------

-- NULL: the user is staff and sees every customer. Otherwise the one customer the user acts
-- for, or 0 for a customer login that is not linked yet (no customer has id 0).
-- plpgsql: its plan is kept for the session (a sql function reading a table is planned again
-- in every statement that calls it), and only the one role it asks about is looked up.
CREATE OR REPLACE FUNCTION orderly.own_customer(u orderly.users) RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF u.customer_id IS NOT NULL THEN
        RETURN u.customer_id;
    END IF;
    IF EXISTS (SELECT 1 FROM orderly.user_roles ur JOIN orderly.roles r ON r.id = ur.role_id
               WHERE ur.user_id = u.id AND r.name = 'customer') THEN
        RETURN 0;
    END IF;
    RETURN NULL;
END
$$;

-- Whether the user of that id is staff (not a customer's login); NULL when there is no such user
-- (an order made in SQL has no creator). Who prepared an order, for what its customer may do
-- with it and whom it tells.
CREATE OR REPLACE FUNCTION orderly.is_staff(user_id bigint) RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN (SELECT orderly.own_customer(u) IS NULL FROM orderly.users u WHERE u.id = is_staff.user_id);
END
$$;

-- A customer's login (linked to a customer, or holding the role customer: own_customer) holds
-- no permission that is not for customers (V030: permissions.for_customers), whatever role gives
-- it: a staff permission would let a customer approve, price or pay its own orders. Checked
-- after every change that gives a login roles or a role permissions; raises for the first
-- customer login among user_ids that breaks the rule. Those changes lock different rows (a
-- role, a user), so two of them at once could each pass before the other commits (a link and a
-- grant to a role the login holds): one lock for all of them, taken here, and the rows read
-- after it (VOLATILE: a fresh snapshot, which sees the other's commit).
-- A carrier's login (bound to a carrier: admin.set_user_carrier) is an outsider too: it holds
-- only what the role carrier gives (tracking.post) and inbox.read; a sales rep's rights on a
-- carrier's system login are a staff login in the carrier's hands.
DROP FUNCTION IF EXISTS orderly.beyond_customer(bigint[]);
CREATE OR REPLACE FUNCTION orderly.check_customer_rights(user_ids bigint[]) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v record;
BEGIN
    -- The read after the lock must see what the lock's last holder committed: only READ
    -- COMMITTED takes a fresh snapshot per statement (a REPEATABLE READ transaction would check
    -- against what it saw at its start, and let a concurrent grant through).
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'change users'' rights at READ COMMITTED (the default), not %', current_setting('transaction_isolation')
            USING ERRCODE = 'OL409';
    END IF;
    -- "orde", "cust": beside the other advisory keys of this database.
    PERFORM pg_advisory_xact_lock(x'6f726465'::integer, x'63757374'::integer);
    SELECT u.username, string_agg(DISTINCT rp.permission, ', ' ORDER BY rp.permission) AS permissions INTO v
    FROM orderly.users u
    JOIN orderly.user_roles ur ON ur.user_id = u.id
    JOIN orderly.role_permissions rp ON rp.role_id = ur.role_id
    JOIN orderly.permissions p ON p.code = rp.permission
    WHERE u.id = ANY (user_ids) AND NOT p.for_customers AND orderly.own_customer(u) IS NOT NULL
    GROUP BY u.username ORDER BY u.username LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'user "%" would be a customer''s login holding %, which are not for customers', v.username, v.permissions
            USING ERRCODE = 'OL409',
                  HINT = 'a customer''s login holds only permissions marked for customers (orderly.permissions.for_customers)';
    END IF;
    SELECT u.username, u.carrier, string_agg(DISTINCT rp.permission, ', ' ORDER BY rp.permission) AS permissions INTO v
    FROM orderly.users u
    JOIN orderly.user_roles ur ON ur.user_id = u.id
    JOIN orderly.role_permissions rp ON rp.role_id = ur.role_id
    WHERE u.id = ANY (user_ids) AND u.carrier IS NOT NULL AND rp.permission NOT IN ('tracking.post', 'inbox.read')
    GROUP BY u.username, u.carrier ORDER BY u.username LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'user "%" would be carrier %''s login holding %, which are not a carrier''s', v.username, v.carrier, v.permissions
            USING ERRCODE = 'OL409',
                  HINT = 'a carrier''s login holds only tracking.post (the role carrier) and inbox.read';
    END IF;
END
$$;

-- For changes to a role's permissions: locked so that concurrent changes to one role serialize
-- and the before/after snapshots are exact.
CREATE OR REPLACE FUNCTION orderly.role_for_update(name text) RETURNS orderly.roles
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r orderly.roles := orderly.role_by_name(role_for_update.name);
BEGIN
    SELECT * INTO r FROM orderly.roles x WHERE x.id = r.id FOR UPDATE;
    RETURN r;
END
$$;

CREATE OR REPLACE FUNCTION orderly.check_permission_exists(code text) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM orderly.permissions p WHERE p.code = check_permission_exists.code) THEN
        RAISE EXCEPTION 'unknown permission "%"', orderly.for_message(check_permission_exists.code) USING ERRCODE = 'OL404';
    END IF;
END
$$;

-- The acting user of an api command, read live: a user locked or deleted since AUTH is
-- refused on the very next command.
CREATE OR REPLACE FUNCTION orderly.actor(actor bigint) RETURNS orderly.users
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    u orderly.users;
BEGIN
    SELECT * INTO u FROM orderly.users x WHERE x.id = actor.actor;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'not authenticated' USING ERRCODE = 'OL401';
    END IF;
    -- Only an admin lock ends what a logged-in user may do. The temporary lockout after failed
    -- logins guards AUTH alone: otherwise anyone could throw a user out by failing to log in as
    -- them.
    IF u.locked THEN
        RAISE EXCEPTION 'account is locked' USING ERRCODE = 'OL401';
    END IF;
    RETURN u;
END
$$;

-- plpgsql, not sql: a sql function with a FROM cannot be inlined and is planned again in every
-- statement that calls it; plpgsql keeps its plan for the session.
CREATE OR REPLACE FUNCTION orderly.has_permission(user_id bigint, permission text) RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN EXISTS (
        SELECT 1
        FROM orderly.user_roles ur JOIN orderly.role_permissions rp ON rp.role_id = ur.role_id
        WHERE ur.user_id = has_permission.user_id AND rp.permission = has_permission.permission);
END
$$;

-- The authoritative check inside every api command (the server's own check is only a fast
-- path). Returns the actor's row for convenience.
CREATE OR REPLACE FUNCTION orderly.require_permission(actor bigint, permission text) RETURNS orderly.users
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    u orderly.users := orderly.actor(require_permission.actor);
BEGIN
    IF NOT orderly.has_permission(u.id, require_permission.permission) THEN
        RAISE EXCEPTION 'permission denied: %', require_permission.permission USING ERRCODE = 'OL403';
    END IF;
    RETURN u;
END
$$;

-- Audit and notification -------------------------------------------------------------------------

-- Every row names its actor (V016): a user's command passes the user (actor_kind 'user', the
-- default); Orderly acting on its own (timers, the login throttle) passes NULL with actor_kind
-- => 'system'; an admin function passes NULL with actor_kind => 'admin_sql' (actor_db_role names
-- the login). Anything else, a user command with a NULL user included, is refused by the table's
-- CHECK audit_log_actor: a forgotten actor fails the change instead of writing an anonymous row.
-- plpgsql: the INSERT is planned once a session, not at every call as a sql function's body is.
DROP FUNCTION IF EXISTS orderly.audit(bigint, text, text, text, jsonb, jsonb);
CREATE OR REPLACE FUNCTION orderly.audit(actor_user_id bigint, action text, entity text, entity_id text,
                                         before jsonb, after jsonb, actor_kind text DEFAULT 'user') RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id bigint;
BEGIN
    -- The transaction's id before the row's: the analytics refresh takes a missing audit id for
    -- one a running transaction holds, and a transaction id drawn after it saw the gap for newer
    -- than the holder's (R__200_analytics.sql, as the event feed's, R__050).
    PERFORM pg_current_xact_id();
    INSERT INTO orderly.audit_log (actor_user_id, actor_kind, action, entity, entity_id, before, after)
    VALUES (audit.actor_user_id, audit.actor_kind, audit.action, audit.entity, audit.entity_id, audit.before, audit.after)
    RETURNING id INTO v_id;
    RETURN v_id;
END
$$;

-- Tells every orderlyd that someone's rights may have changed (sent at commit only). The
-- payload always has all four keys; username/user_id are null for role-wide changes, role is
-- null for user-only changes.
CREATE OR REPLACE FUNCTION orderly.notify_roles(change text, username text, user_id bigint, role text) RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_notify('orderly_roles',
                     json_build_object('change', $1, 'username', $2, 'user_id', $3, 'role', $4)::text)
$$;

-- A user or role change is audited and announced under one name, so that what an admin reads
-- in the audit log and what the servers react to cannot drift apart. "after" is read here, once
-- the change is made; extra adds facts that are not part of the snapshot. Only the admin
-- functions change users and roles: the actor is the database login (admin_sql).
-- Whom a login acts for, from its snapshot: its customer's id, 0 for a customer login not linked
-- yet, NULL for staff (as orderly.own_customer reads the live row).
CREATE OR REPLACE FUNCTION orderly.acts_for(snapshot jsonb) RETURNS bigint
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN $1 ->> 'customer_id' IS NOT NULL THEN ($1 ->> 'customer_id')::bigint
                WHEN $1 -> 'roles' ? 'customer' THEN 0 END
$$;

CREATE OR REPLACE FUNCTION orderly.user_changed(change text, user_id bigint, before jsonb,
                                                role text DEFAULT NULL, extra jsonb DEFAULT NULL) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_after jsonb := orderly.user_snapshot(user_changed.user_id);
    v_extra jsonb := coalesce(user_changed.extra, '{}');
BEGIN
    -- A login that now acts for another customer (relinked, unlinked, or turned from staff into a
    -- customer's login or back) forgets what it was sent and the replies it kept: they were
    -- documents of the customer (or the staff view) it served before, and a replay or INBOX would
    -- hand them to the one it serves now. A retry with an old key then runs anew, as this login.
    IF orderly.acts_for(user_changed.before) IS DISTINCT FROM orderly.acts_for(v_after) THEN
        DELETE FROM orderly.notifications n WHERE n.recipient_user_id = user_changed.user_id;
        DELETE FROM orderly.idempotency_keys k WHERE k.user_id = user_changed.user_id;
        v_extra := v_extra || '{"inbox_and_replies_forgotten": true}';
    END IF;
    PERFORM orderly.audit(NULL, user_changed.change, 'user', user_changed.user_id::text, user_changed.before,
                          v_after || v_extra, actor_kind => 'admin_sql');
    PERFORM orderly.notify_roles(user_changed.change, v_after ->> 'username', user_changed.user_id, user_changed.role);
END
$$;

CREATE OR REPLACE FUNCTION orderly.role_changed(change text, role_id bigint, before jsonb) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_after jsonb := orderly.role_snapshot(role_changed.role_id);
BEGIN
    PERFORM orderly.audit(NULL, role_changed.change, 'role', v_after ->> 'name', role_changed.before, v_after,
                          actor_kind => 'admin_sql');
    PERFORM orderly.notify_roles(role_changed.change, NULL, NULL, v_after ->> 'name');
END
$$;

-- Client-visible timestamps: always UTC with a "Z", whatever the session's TimeZone, so that
-- every orderlyd and every client sees the same text for the same instant.
-- No SET search_path (every name is pg_catalog's), so that it is inlined into its callers.
CREATE OR REPLACE FUNCTION orderly.json_time(value timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT to_char($1 AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

-- Client documents are json, not jsonb, so that keys keep the order they are written in (id
-- first, then what a person reads next); jsonb would sort them by length. This appends the keys
-- of extra after those of doc without going through jsonb. Both must be objects.
-- No SET search_path (its names are pg_catalog's), so that it is inlined into its callers.
CREATE OR REPLACE FUNCTION orderly.json_extend(doc json, extra json) RETURNS json
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN json_typeof($1) <> 'object' OR json_typeof($2) <> 'object' THEN NULL
        WHEN $2::text ~ '^\{\s*\}$' THEN $1
        WHEN $1::text ~ '^\{\s*\}$' THEN $2
        ELSE (regexp_replace($1::text, '\s*\}\s*$', '') || ', ' || regexp_replace($2::text, '^\s*\{', ''))::json
    END
$$;

-- A currency argument: a known ISO 4217 code (orderly.currencies, V037), upper-cased; NULL stays
-- NULL. what names the argument in the message.
CREATE OR REPLACE FUNCTION orderly.check_currency(value text, what text DEFAULT 'currency') RETURNS char(3)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v text := upper(btrim(value));
BEGIN
    IF value IS NULL THEN
        RETURN NULL;
    END IF;
    IF v !~ '^[A-Z]{3}$' OR NOT EXISTS (SELECT 1 FROM orderly.currencies c WHERE c.code = v) THEN
        RAISE EXCEPTION '% must be an ISO 4217 currency code like EUR or USD ("%" is none)', what, orderly.for_message(value)
            USING ERRCODE = 'OL400';
    END IF;
    RETURN v;
END
$$;
