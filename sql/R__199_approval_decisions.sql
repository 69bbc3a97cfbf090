-- Orderly: deciding an approval step (ORDER APPROVE, ORDER REJECT). The workflow itself — who may
-- decide, routing, rounds — is R__161_approval_flow.sql's; these two commands come after the
-- amendments (R__197_amendments.sql) because a round may decide a change rather than the order:
-- its last approval applies the change, a rejection declines it, and the order stays in its
-- status either way.

-- ORDER APPROVE id [comment=] [step=]
CREATE OR REPLACE FUNCTION api.order_approve(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u         orderly.users := orderly.begin_command('ORDER APPROVE', order_approve.actor, order_approve.args);
    v_replay  json := orderly.replay(u, order_approve.args);
    v_comment text;
    c         orderly.order_approvals;
    nxt       orderly.order_approvals;
    ch        orderly.order_changes;
    o         orderly.orders;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    v_comment := nullif(btrim(orderly.arg_text(args, 'comment')), '');
    IF length(v_comment) > 2000 THEN
        RAISE EXCEPTION 'comment must be at most 2000 characters' USING ERRCODE = 'OL400';
    END IF;
    c := orderly.decide_step(u, orderly.arg_bigint(args, 'id', true), orderly.arg_int(args, 'step'), 'approved', v_comment);
    SELECT * INTO o FROM orderly.orders x WHERE x.id = c.order_id;
    UPDATE orderly.order_approvals x
    SET status = 'pending', pending_since = now(), due_at = now() + x.due_after
    WHERE x.order_id = c.order_id AND x.round = c.round AND x.step_no = c.step_no + 1 AND x.status = 'waiting'
    RETURNING * INTO nxt;
    IF nxt.id IS NOT NULL THEN
        PERFORM orderly.notify_step(nxt, orderly.approval_subject(nxt, o), 'approval.requested', now(), u.id,
                                    extra => CASE WHEN nxt.change_id IS NOT NULL THEN jsonb_build_object('change', nxt.change_id) ELSE '{}' END);
    ELSIF c.change_id IS NOT NULL THEN
        -- A change's round: the change is applied; the order stays where it was.
        SELECT * INTO ch FROM orderly.order_changes x WHERE x.id = c.change_id FOR UPDATE;
        ch := orderly.apply_decided_change(u, o, ch);
        SELECT * INTO o FROM orderly.orders x WHERE x.id = c.order_id;
    ELSE
        o := orderly.change_status(o, 'approved', u.id,
                                   format('approved: all %s step(s) of round %s', c.steps, c.round));
        o := orderly.advance(o, u.id, check_credit => true);
        PERFORM orderly.notify_order_approved(o, u.id, u.id);
    END IF;
    -- Its own statement: approval_doc (STABLE) sees only what earlier statements wrote.
    RETURN NEXT orderly.remember(u, args, orderly.approval_doc(c.order_id));
    IF ch.status = 'applied' THEN
        PERFORM orderly.notify_changed(o, ch, u.id);
    END IF;
END
$$;

SELECT orderly.register_command('ORDER APPROVE', 'api.order_approve', 'order.approve',
    arguments  => 'id:id! comment:text step:integer',
    positional => '{id}',
    usage      => 'ORDER APPROVE id [comment=]',
    summary    => 'Approve the order''s current step, if it is yours to decide.',
    changes    => true);

-- ORDER REJECT id reason= [step=]: the order is rejected, later steps skipped, its stock and
-- coupon released; the creator may change it and submit again (a new round).
CREATE OR REPLACE FUNCTION api.order_reject(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.begin_command('ORDER REJECT', order_reject.actor, order_reject.args);
    v_replay json := orderly.replay(u, order_reject.args);
    v_reason text;
    c        orderly.order_approvals;
    ch       orderly.order_changes;
    o        orderly.orders;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    v_reason := btrim(orderly.arg_text(args, 'reason', true));
    IF length(v_reason) > 2000 THEN
        RAISE EXCEPTION 'reason must be at most 2000 characters' USING ERRCODE = 'OL400';
    END IF;
    c := orderly.decide_step(u, orderly.arg_bigint(args, 'id', true), orderly.arg_int(args, 'step'), 'rejected', v_reason);
    SELECT * INTO o FROM orderly.orders x WHERE x.id = c.order_id;
    UPDATE orderly.order_approvals x SET status = 'skipped'
    WHERE x.order_id = c.order_id AND x.round = c.round AND x.status = 'waiting';
    IF c.change_id IS NOT NULL THEN
        -- A change's round: the change is declined; the order goes on as it was.
        SELECT * INTO ch FROM orderly.order_changes x WHERE x.id = c.change_id FOR UPDATE;
        ch := orderly.close_change(u, o, ch, 'declined', left(v_reason, 500), 'not approved');
        RETURN NEXT orderly.remember(u, args, orderly.approval_doc(c.order_id));
        PERFORM orderly.notify_declined(o, ch, u.id);
        RETURN;
    END IF;
    -- Coupon before stock: the lock order of ORDER SUBMIT (order, coupon, SKUs).
    PERFORM orderly.coupon_release(o.id, u.id);
    PERFORM orderly.release_stock(o.id, u.id);
    o := orderly.change_status(o, 'rejected', u.id, v_reason);
    IF o.created_by IS NOT NULL THEN
        PERFORM api.notify(o.created_by, NULL, 'approval.rejected',
                           orderly.approval_payload(c, o) - 'due_at'
                           || jsonb_build_object('reason', v_reason, 'rejected_by', u.username), u.id);
    END IF;
    RETURN NEXT orderly.remember(u, args, orderly.approval_doc(c.order_id));
END
$$;

SELECT orderly.register_command('ORDER REJECT', 'api.order_reject', 'order.approve',
    arguments  => 'id:id! reason:text! step:integer',
    positional => '{id}',
    usage      => 'ORDER REJECT id reason=',
    summary    => 'Reject the order at its current step: stock is released and the creator told why.',
    changes    => true);
