-- Orderly: approval delegation (issue #5): DELEGATE, DELEGATE LIST, DELEGATE REVOKE. A user who
-- approves orders lets another user approve in their place, for one of their approving roles or
-- all of them, for a time window. What a delegation allows is decided where steps are decided
-- (orderly.step_deciders, R__161_approval_flow.sql), which reads the delegations; nothing here
-- calls the workflow.
--
-- Notification kinds and payloads (the others: R__161_approval_flow.sql):
--   approval.delegated / approval.delegation_revoked  to the delegate:
--       {id, from, role, starts_at, ends_at}

CREATE OR REPLACE FUNCTION orderly.delegation_doc(d orderly.approval_delegations, me bigint) RETURNS json
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT json_build_object(
        'id', ($1).id,
        'direction', CASE WHEN ($1).from_user = $2 THEN 'given' ELSE 'received' END,
        'from', orderly.username_of(($1).from_user),
        'to', orderly.username_of(($1).to_user),
        'role', ($1).role,
        'starts_at', orderly.json_time(($1).starts_at),
        'ends_at', orderly.json_time(($1).ends_at),
        'revoked_at', orderly.json_time(($1).revoked_at),
        'active', ($1).revoked_at IS NULL AND ($1).starts_at <= now() AND now() < ($1).ends_at)
$$;

-- The roles through which a user approves: held, with order.approve, and with an approval limit.
CREATE OR REPLACE FUNCTION orderly.approving_roles(user_id bigint) RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ARRAY(
        SELECT r.name
        FROM orderly.user_roles ur JOIN orderly.roles r ON r.id = ur.role_id
        WHERE ur.user_id = $1
          AND EXISTS (SELECT 1 FROM orderly.role_permissions rp WHERE rp.role_id = r.id AND rp.permission = 'order.approve')
          AND EXISTS (SELECT 1 FROM orderly.approval_limits l WHERE l.role = r.name)
        ORDER BY r.name COLLATE "C")
$$;

-- DELEGATE to=<username> until=<time> [from=<time>] [role=<role>]
CREATE OR REPLACE FUNCTION api.delegate(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.begin_command('DELEGATE', delegate.actor, delegate.args);
    v_replay json := orderly.replay(u, delegate.args);
    t        orderly.users;
    v_to     text;
    v_from   timestamptz;
    v_until  timestamptz;
    v_role   text;
    v_mine   text[];
    d        orderly.approval_delegations;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    v_to := btrim(orderly.arg_text(args, 'to', true));
    v_from := coalesce(orderly.arg_time(args, 'from'), now());
    -- orderly.arg_time (R__010_helpers.sql): ISO dates or times, as PRICE RULE's starts/ends.
    v_until := orderly.arg_time(args, 'until');
    IF v_until IS NULL THEN
        RAISE EXCEPTION 'until is required' USING ERRCODE = 'OL400';
    END IF;
    v_role := nullif(lower(btrim(orderly.arg_text(args, 'role'))), '');
    SELECT * INTO t FROM orderly.users x WHERE lower(x.username) = lower(v_to);
    IF t.id IS NULL THEN
        RAISE EXCEPTION 'unknown user "%"', orderly.for_message(v_to) USING ERRCODE = 'OL404';
    END IF;
    IF t.id = u.id THEN
        RAISE EXCEPTION 'you cannot delegate to yourself' USING ERRCODE = 'OL400';
    END IF;
    IF v_until <= v_from THEN
        RAISE EXCEPTION 'until must be after from' USING ERRCODE = 'OL400';
    END IF;
    IF v_until <= now() THEN
        RAISE EXCEPTION 'until must be in the future' USING ERRCODE = 'OL400';
    END IF;
    IF v_until - greatest(v_from, now()) > interval '366 days' THEN
        RAISE EXCEPTION 'a delegation may last at most 366 days' USING ERRCODE = 'OL400';
    END IF;
    v_mine := orderly.approving_roles(u.id);
    IF cardinality(v_mine) = 0 THEN
        RAISE EXCEPTION 'you hold no role that approves orders' USING ERRCODE = 'OL409';
    END IF;
    IF v_role IS NOT NULL AND NOT v_role = ANY (v_mine) THEN
        RAISE EXCEPTION 'role % is not one of your approving roles (%)', orderly.for_message(v_role),
            array_to_string(v_mine, ', ') USING ERRCODE = 'OL403';
    END IF;
    -- The delegate acts through ORDER APPROVE, which needs order.approve of its own.
    IF NOT orderly.has_permission(t.id, 'order.approve') THEN
        RAISE EXCEPTION 'user % cannot approve orders (needs order.approve)', t.username USING ERRCODE = 'OL409';
    END IF;
    INSERT INTO orderly.approval_delegations (from_user, to_user, role, starts_at, ends_at)
    VALUES (u.id, t.id, v_role, v_from, v_until)
    RETURNING * INTO d;
    PERFORM orderly.audit(u.id, 'approval.delegate', 'approval_delegation', d.id::text, NULL,
                          jsonb_build_object('from', u.username, 'to', t.username, 'role', d.role,
                                             'starts_at', d.starts_at, 'ends_at', d.ends_at));
    PERFORM api.notify(t.id, NULL, 'approval.delegated',
                       jsonb_build_object('id', d.id, 'from', u.username, 'role', d.role,
                                          'starts_at', orderly.json_time(d.starts_at),
                                          'ends_at', orderly.json_time(d.ends_at)), u.id);
    RETURN NEXT orderly.remember(u, args, orderly.delegation_doc(d, u.id));
END
$$;

SELECT orderly.register_command('DELEGATE', 'api.delegate', 'order.approve',
    arguments  => 'to:text! from:timestamp until:timestamp! role:text',
    usage      => 'DELEGATE to=username until= [from=now] [role=]',
    summary    => 'Let another user approve in your place (one role or all of yours) for a time window.',
    changes    => true);

-- DELEGATE LIST [limit=]: delegations given and received, newest first.
CREATE OR REPLACE FUNCTION api.delegate_list(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u       orderly.users := orderly.begin_command('DELEGATE LIST', delegate_list.actor, delegate_list.args);
    v_limit integer := orderly.arg_limit(args, 50, 200);
BEGIN
    RETURN QUERY
    SELECT orderly.delegation_doc(d, u.id)
    FROM orderly.approval_delegations d
    WHERE d.from_user = u.id OR d.to_user = u.id
    ORDER BY d.id DESC
    LIMIT v_limit;
END
$$;

SELECT orderly.register_command('DELEGATE LIST', 'api.delegate_list', 'order.approve',
    arguments  => 'limit:integer',
    usage      => 'DELEGATE LIST',
    summary    => 'Delegations you gave and received.');

-- DELEGATE REVOKE id: by the delegator, or by the delegate declining it.
CREATE OR REPLACE FUNCTION api.delegate_revoke(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u orderly.users := orderly.begin_command('DELEGATE REVOKE', delegate_revoke.actor, delegate_revoke.args);
    v_replay json := orderly.replay(u, delegate_revoke.args);
    v_id bigint;
    d orderly.approval_delegations;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    v_id := orderly.arg_bigint(args, 'id', true);
    SELECT * INTO d FROM orderly.approval_delegations x
    WHERE x.id = v_id AND u.id IN (x.from_user, x.to_user) FOR UPDATE;
    IF d.id IS NULL THEN
        RAISE EXCEPTION 'delegation % not found', v_id USING ERRCODE = 'OL404';
    END IF;
    IF d.revoked_at IS NOT NULL THEN
        RAISE EXCEPTION 'delegation % was already revoked', d.id USING ERRCODE = 'OL409';
    END IF;
    IF d.ends_at <= now() THEN
        RAISE EXCEPTION 'delegation % has already ended', d.id USING ERRCODE = 'OL409';
    END IF;
    UPDATE orderly.approval_delegations x SET revoked_at = now() WHERE x.id = d.id RETURNING * INTO d;
    PERFORM orderly.audit(u.id, 'approval.delegate_revoke', 'approval_delegation', d.id::text,
                          jsonb_build_object('revoked_at', NULL), jsonb_build_object('revoked_at', d.revoked_at));
    PERFORM api.notify(CASE WHEN u.id = d.from_user THEN d.to_user ELSE d.from_user END, NULL,
                       'approval.delegation_revoked',
                       jsonb_build_object('id', d.id, 'from', orderly.username_of(d.from_user), 'role', d.role,
                                          'starts_at', orderly.json_time(d.starts_at),
                                          'ends_at', orderly.json_time(d.ends_at), 'revoked_by', u.username), u.id);
    RETURN NEXT orderly.remember(u, args, orderly.delegation_doc(d, u.id));
END
$$;

SELECT orderly.register_command('DELEGATE REVOKE', 'api.delegate_revoke', 'order.approve',
    arguments  => 'id:id!',
    positional => '{id}',
    usage      => 'DELEGATE REVOKE id',
    summary    => 'End a delegation you gave, or one given to you (the other side is told).',
    changes    => true);
