-- Orderly: AUDIT LIST, the audit log over the protocol for those holding audit.read (auditors,
-- admins). Admins in SQL read admin.audit_log (R__040_admin_views.sql); an auditor has no
-- database login, and audit.read was a permission no command asked for.

-- Who acted, in one word, as actor= takes it: a user's name; "db:" and an admin's database login;
-- "carrier:" and the carrier whose webhook posted; "system". The prefixes keep a user who is
-- named like a login, a carrier or "system" from hiding those rows.
CREATE OR REPLACE FUNCTION orderly.audit_actor(a orderly.audit_log) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN a.actor_user_id IS NOT NULL THEN (SELECT u.username FROM orderly.users u WHERE u.id = a.actor_user_id)
                WHEN a.actor_kind = 'admin_sql' THEN 'db:' || a.actor_db_role
                WHEN a.actor_kind = 'carrier' THEN 'carrier:' || coalesce(a.after ->> 'carrier', '')
                ELSE coalesce(a.actor_kind, 'db:' || a.actor_db_role) END
$$;

-- AUDIT LIST [entity=] [id=] [actor=] [action=] [from=] [to=] [limit=] [before=]: newest first.
-- action= is one action ("order.status") or, ending in ".", every action it begins
-- ("order."). from/to are days (UTC, inclusive). before= pages back by the last id received.
CREATE OR REPLACE FUNCTION api.audit_list(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.begin_command('AUDIT LIST', audit_list.actor, audit_list.args);
    v_entity text := nullif(lower(btrim(orderly.arg_text(args, 'entity'))), '');
    v_id     text := btrim(orderly.arg_text(args, 'id'));
    v_who    text := nullif(btrim(orderly.arg_text(args, 'actor')), '');
    v_action text := nullif(lower(btrim(orderly.arg_text(args, 'action'))), '');
    v_from   date := orderly.arg_date(args, 'from');
    v_to     date := orderly.arg_date(args, 'to');
    v_limit  integer := orderly.arg_limit(args, 50, 500);
    v_before bigint := orderly.arg_bigint(args, 'before');
    v_user   bigint;
BEGIN
    IF v_id IS NOT NULL AND v_entity IS NULL THEN
        RAISE EXCEPTION 'id= names a row of an entity: give entity= too (entity=order id=42)' USING ERRCODE = 'OL400';
    END IF;
    -- A misspelt entity would list nothing, which reads as "nothing happened": say so, with the
    -- entities the log has (one index probe each, in the order of audit_log_entity_idx).
    IF v_entity IS NOT NULL AND NOT EXISTS (SELECT 1 FROM orderly.audit_log a WHERE a.entity = v_entity) THEN
        RAISE EXCEPTION 'nothing of entity "%" is in the audit log; its entities: %', orderly.for_message(v_entity),
            (WITH RECURSIVE e(name) AS (
                 SELECT min(a.entity) FROM orderly.audit_log a
                 UNION ALL
                 SELECT (SELECT min(a.entity) FROM orderly.audit_log a WHERE a.entity > e.name) FROM e WHERE e.name IS NOT NULL)
             SELECT coalesce(string_agg(e.name, ', ' ORDER BY e.name), 'none yet') FROM e WHERE e.name IS NOT NULL)
            USING ERRCODE = 'OL404';
    END IF;
    IF v_from > v_to THEN
        RAISE EXCEPTION 'from (%) is after to (%)', v_from, v_to USING ERRCODE = 'OL400';
    END IF;
    -- A user by name (any case, like AUTH), unless the name says db:, carrier: or system.
    IF v_who IS NOT NULL AND v_who <> 'system' AND v_who !~ '^(db|carrier):' THEN
        SELECT x.id INTO v_user FROM orderly.users x WHERE lower(x.username) = lower(v_who);
        IF v_user IS NULL THEN
            RAISE EXCEPTION 'no user "%"; an admin''s database login is actor=db:NAME, a carrier''s webhook actor=carrier:CODE, Orderly itself actor=system',
                orderly.for_message(v_who) USING ERRCODE = 'OL404';
        END IF;
    END IF;
    RETURN QUERY
    SELECT json_build_object('id', a.id, 'at', orderly.json_time(a.at), 'actor', orderly.audit_actor(a),
                             'actor_kind', coalesce(a.actor_kind, CASE WHEN a.actor_user_id IS NOT NULL THEN 'user' END),
                             'action', a.action, 'entity', a.entity, 'entity_id', a.entity_id, 'before', a.before, 'after', a.after)
    FROM orderly.audit_log a
    WHERE (v_entity IS NULL OR a.entity = v_entity)
      AND (v_id IS NULL OR a.entity_id = v_id)
      AND (v_who IS NULL OR a.actor_user_id = v_user
           OR (v_who = 'system' AND a.actor_kind = 'system')
           OR (a.actor_kind = 'admin_sql' AND 'db:' || a.actor_db_role = v_who)
           OR (a.actor_kind = 'carrier' AND 'carrier:' || (a.after ->> 'carrier') = lower(v_who)))
      AND (v_action IS NULL OR a.action = v_action
           OR (right(v_action, 1) = '.' AND left(a.action, length(v_action)) = v_action))
      AND (v_from IS NULL OR a.at >= v_from::timestamp AT TIME ZONE 'UTC')
      AND (v_to IS NULL OR a.at < (v_to + 1)::timestamp AT TIME ZONE 'UTC')
      AND (v_before IS NULL OR a.id < v_before)
    ORDER BY a.id DESC
    LIMIT v_limit;
END
$$;

SELECT orderly.register_command('AUDIT LIST', 'api.audit_list', 'audit.read',
    arguments  => 'entity:code id:text actor:text action:text from:date to:date limit:integer before:id',
    usage      => 'AUDIT LIST [entity=] [id=] [actor=] [action=] [from=] [to=] [limit=50] [before=id]',
    -- Every customer's changes, staff names and addresses: never a customer's, whatever an admin
    -- marks audit.read (admin.set_permission_for_customers).
    staff_only => 'the audit log is internal',
    summary    => 'The audit log, newest first: who (a user; db:LOGIN, an admin''s database login; carrier:CODE; system), when, what, before and after; action= ending in "." takes every action it begins; pass the last id as before= for the next page.');
