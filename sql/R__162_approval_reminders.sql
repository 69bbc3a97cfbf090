-- Orderly: reminders and escalation of pending approval steps (issue #5).
--
-- api.run_approval_reminders(now) is called by orderlyd's timer (every instance; the advisory
-- lock lets one run at a time and the others return nothing) and may be scheduled with pg_cron:
--     SELECT * FROM api.run_approval_reminders(now());
-- Everything is decided by the "now" argument, so that tests can drive time. Whoever calls it,
-- nobody's command runs it: its audit rows and notifications name the system as their actor
-- (actor_kind 'system', V016); actor_db_role tells which login ran the pass.
--
-- Schedule of a pending step (I = its due_after, N = admin.set_approval_reminders, default 2):
--   * nothing before due_at;
--   * an event is due when now >= due_at (the first) or now >= the last event + I (the next);
--   * the event is a reminder (approval.reminder to every user who may decide the step), except
--     that once N reminders have been sent a step with an escalation role escalates, once
--     (escalated_at set; approval.escalated to the users of the escalation role, who may now
--     decide it too); reminders then go on every I, to everyone who may decide. A step without
--     an escalation role just keeps being reminded.
--   * at most one event per step per run, stamped with "now": a second run with the same (or an
--     earlier) now sends nothing.
-- Returns one row per event: {kind, order, round, step, role, reminder, escalation_role,
-- recipients:[usernames]}.
-- Payloads: approval.reminder = the approval.requested payload + {reminder: n};
-- approval.escalated = that payload + {escalation_role, reminders_sent}.

CREATE OR REPLACE FUNCTION api.run_approval_reminders(now timestamptz DEFAULT now()) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    v_now   timestamptz := run_approval_reminders.now;
    v_max   integer;
    s       orderly.order_approvals;
    o       orderly.orders;
    v_ids   bigint[] := '{}';
    v_kinds text[] := '{}';
    v_kind  text;
    v_names text[];
    i       integer;
BEGIN
    IF v_now IS NULL THEN
        RAISE EXCEPTION 'now is required' USING ERRCODE = 'OL400';
    END IF;
    -- Two int4 keys ("orde", "remi"), beside api.notify's ("orde", "noti").
    IF NOT pg_try_advisory_xact_lock(x'6f726465'::integer, x'72656d69'::integer) THEN
        RETURN;
    END IF;
    SELECT x.max_reminders INTO v_max FROM orderly.approval_settings x;
    v_max := coalesce(v_max, 2);

    -- First every change, then every notification (api.notify's lock is held until commit).
    FOR s IN
        SELECT a.* FROM orderly.order_approvals a
        WHERE a.status = 'pending' AND a.due_at <= v_now
          AND coalesce(greatest(a.last_reminded_at, a.escalated_at) + a.due_after, a.due_at) <= v_now
        ORDER BY a.due_at, a.id
        -- A bounded run: after a backlog (no server for a day) the next ticks carry on, and no
        -- order stays locked for long.
        LIMIT 200
    LOOP
        -- The order lock every decision takes first; an order being decided right now is left
        -- for the next run rather than waited for.
        SELECT * INTO o FROM orderly.orders x WHERE x.id = s.order_id FOR NO KEY UPDATE SKIP LOCKED;
        CONTINUE WHEN o.id IS NULL OR (o.status <> 'pending_approval' AND s.change_id IS NULL);
        SELECT * INTO s FROM orderly.order_approvals x WHERE x.id = s.id FOR UPDATE;
        o := orderly.approval_subject(s, o);
        CONTINUE WHEN s.status <> 'pending'
                   OR coalesce(greatest(s.last_reminded_at, s.escalated_at) + s.due_after, s.due_at) > v_now;
        IF s.escalation_role IS NOT NULL AND s.escalated_at IS NULL AND s.reminders_sent >= v_max THEN
            UPDATE orderly.order_approvals x SET escalated_at = v_now WHERE x.id = s.id;
            v_kind := 'approval.escalated';
        ELSE
            UPDATE orderly.order_approvals x
            SET reminders_sent = x.reminders_sent + 1, last_reminded_at = v_now
            WHERE x.id = s.id;
            v_kind := 'approval.reminder';
        END IF;
        PERFORM orderly.audit(NULL, v_kind, 'order', o.id::text,
                              jsonb_build_object('round', s.round, 'step', s.step_no, 'reminders_sent', s.reminders_sent,
                                                 'escalated_at', s.escalated_at),
                              jsonb_build_object('round', s.round, 'step', s.step_no, 'at', v_now),
                              actor_kind => 'system');
        v_ids := v_ids || s.id;
        v_kinds := v_kinds || v_kind;
    END LOOP;

    FOR i IN 1 .. cardinality(v_ids) LOOP
        SELECT * INTO s FROM orderly.order_approvals x WHERE x.id = v_ids[i];
        SELECT * INTO o FROM orderly.orders x WHERE x.id = s.order_id;
        IF v_kinds[i] = 'approval.escalated' THEN
            v_names := orderly.notify_step(s, o, v_kinds[i], v_now, NULL, 'system', s.escalation_role,
                                           jsonb_build_object('escalation_role', s.escalation_role,
                                                              'reminders_sent', s.reminders_sent));
        ELSE
            v_names := orderly.notify_step(s, o, v_kinds[i], v_now, NULL, 'system', NULL,
                                           jsonb_build_object('reminder', s.reminders_sent));
        END IF;
        RETURN NEXT json_build_object('kind', v_kinds[i], 'order', o.id, 'round', s.round, 'step', s.step_no,
                                      'role', s.role, 'reminder', s.reminders_sent,
                                      'escalation_role', s.escalation_role, 'recipients', to_json(v_names));
    END LOOP;
END
$$;

COMMENT ON FUNCTION api.run_approval_reminders(timestamptz) IS
    'Send due approval reminders and escalations as of "now" (orderlyd timer or pg_cron); one row per event';
