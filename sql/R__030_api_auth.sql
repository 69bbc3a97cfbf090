-- Orderly: the session document and session rights, for orderlyd (orderly_app). Logging in
-- itself (api.authenticate and its throttling) is R__055_logins.sql: it notifies admins, so it
-- comes after the notifications.

-- The shape returned by AUTH and WHOAMI.
CREATE OR REPLACE FUNCTION orderly.session_json(u orderly.users) RETURNS json
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT json_build_object(
        'user_id', ($1).id,
        'username', ($1).username,
        'display_name', ($1).display_name,
        'roles', to_json(orderly.user_role_names(($1).id)),
        'permissions', to_json(orderly.user_permission_codes(($1).id)))
$$;

-- Which password a session logged in with, without saying anything about the password: a tag
-- of the stored hash (bcrypt salts every hash, so a new password, even the same one again,
-- gives a new tag). orderlyd keeps it with each session and ends the sessions whose tag is no
-- longer the user's: a password change logs the user out everywhere, but never a login made
-- with the new password, however late the notice of the change arrives.
CREATE OR REPLACE FUNCTION orderly.credential_tag(u orderly.users) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT left(encode(sha256(convert_to(coalesce(($1).password_hash, ''), 'UTF8')), 'hex'), 16)
$$;

-- Read live on every call: a role granted or revoked a moment ago shows immediately.
CREATE OR REPLACE FUNCTION api.whoami(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u orderly.users := orderly.begin_command('WHOAMI', whoami.actor, whoami.args);
BEGIN
    -- server_time: the database's clock, which stamps everything (a client compares with it,
    -- never with its own: orderly tracking import tells replays by it).
    RETURN NEXT orderly.json_extend(orderly.session_json(u), json_build_object('server_time', orderly.json_time(now())));
END
$$;

SELECT orderly.register_command('WHOAMI', 'api.whoami', NULL,
    arguments  => '',
    usage      => 'WHOAMI',
    summary    => 'Your username, display name, roles and permissions.');

-- What the server needs to refresh a session after NOTIFY orderly_roles. Does not raise for a
-- locked user (it reports locked: true) so that the server can end that session itself.
CREATE OR REPLACE FUNCTION api.user_permissions(user_id bigint) RETURNS json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u orderly.users;
BEGIN
    SELECT * INTO u FROM orderly.users x WHERE x.id = user_permissions.user_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown user' USING ERRCODE = 'OL404';
    END IF;
    RETURN json_build_object(
        'user_id', u.id,
        'username', u.username,
        -- An admin lock (the session must end), apart from a lockout after failed logins
        -- (which only refuses new logins).
        'locked', u.locked,
        'locked_until', u.locked_until,
        'roles', to_json(orderly.user_role_names(u.id)),
        'permissions', to_json(orderly.user_permission_codes(u.id)),
        'credential', orderly.credential_tag(u),
        -- A customer's login (HELP leaves out the staff-only commands).
        'customer', orderly.own_customer(u) IS NOT NULL);
END
$$;
