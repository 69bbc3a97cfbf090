-- Orderly: production (issue 12, item 4). Make-to-order lines — those orderly.line_needs_production
-- says are made (custom products) — are started and finished by production.manage holders, each
-- step with its time and who (orderly.production_lines, V017__fulfilment.sql); a problem on the
-- floor is a production issue, opened and resolved the same way (orderly.production_issues).
--
--   PRODUCTION START order= [lines=[…]]    lines not started yet → in_production; the order
--                                          approved → in_production (orderly.change_status)
--   PRODUCTION DONE order= [lines=[…]]     lines in production → done; then orderly.advance:
--                                          every line done (and, prepaid, paid) → ready
--   SERVICE DONE order= [lines=[…]]        service lines performed (done at once); then
--                                          orderly.advance: an order whose goods are delivered
--                                          (or that has none) and services performed is delivered
--   PRODUCTION ISSUE order= kind= note=    an open issue; production.issue to the production
--                                          manager role and the order's creator
--   PRODUCTION RESOLVE id [note=]          the issue resolved, with its resolution
--
-- Production may run while stock lines of the same order ship (approved and in_production
-- orders may ship stock lines: R__190_shipments.sql), so START and DONE also take a
-- partially_shipped order. An order on hold, or not yet (or no longer) open, is refused.
-- Locks: the order's row first (orderly.order_for), as every change to an order.

-- The order's make-to-order lines and where each stands ----------------------------------------

-- One row per line that is made: its production state ('not_started', 'in_production',
-- 'done') with times and who. plpgsql: planned once a session.
CREATE OR REPLACE FUNCTION orderly.production_state(order_id bigint)
RETURNS TABLE (line_no integer, product text, name text, qty integer, state text,
               started_at timestamptz, started_by bigint, done_at timestamptz, done_by bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    SELECT l.line_no, p.code, p.name, l.qty, coalesce(pl.status, 'not_started'),
           pl.started_at, pl.started_by, pl.done_at, pl.done_by
    FROM orderly.order_lines l
    JOIN orderly.products p ON p.id = l.product_id
    LEFT JOIN orderly.production_lines pl ON pl.order_id = l.order_id AND pl.line_no = l.line_no
    WHERE l.order_id = production_state.order_id AND orderly.line_needs_production(p.kind)
    ORDER BY l.line_no;
END
$$;

-- Whether the order has a made-to-order line still to make: not cancelled, not done (nor stopped).
CREATE OR REPLACE FUNCTION orderly.has_lines_to_make(order_id bigint) RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM orderly.order_lines l
                   JOIN orderly.products p ON p.id = l.product_id
                   LEFT JOIN orderly.production_lines pl ON pl.order_id = l.order_id AND pl.line_no = l.line_no
                   WHERE l.order_id = has_lines_to_make.order_id AND l.qty > l.cancelled_qty
                     AND orderly.line_needs_production(p.kind) AND coalesce(pl.status, 'not_started') NOT IN ('done', 'cancelled'));
END
$$;

-- Whether production has anything left to do on the order: a line to make, or a service not yet
-- performed. An issue is about such work: there is none to report on an order without it (a
-- stock-only order's "issue" sent its customer a delay e-mail), and what is open is closed once
-- no work is left (cancelled, removed or finished).
CREATE OR REPLACE FUNCTION orderly.has_production_work(order_id bigint) RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN orderly.has_lines_to_make(has_production_work.order_id)
        OR cardinality(orderly.services_to_perform(has_production_work.order_id)) > 0;
END
$$;

-- Closes the order's open production issues once it has no production work left (the last line
-- made to order or service cancelled, removed or finished): they would keep it among the orders
-- at risk of being late.
CREATE OR REPLACE FUNCTION orderly.close_issues_without_work(o orderly.orders, actor_id bigint, why text) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer;
BEGIN
    IF orderly.has_production_work(o.id) THEN
        RETURN 0;
    END IF;
    UPDATE orderly.production_issues x SET resolved_by = actor_id, resolved_at = now(), resolution = left(why, 2000)
    WHERE x.order_id = o.id AND x.resolved_at IS NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        PERFORM orderly.audit(actor_id, 'production.issues_closed', 'order', o.id::text, NULL,
                              jsonb_build_object('issues', n, 'resolution', why),
                              actor_kind => CASE WHEN actor_id IS NULL THEN 'system' ELSE 'user' END);
    END IF;
    RETURN n;
END
$$;

CREATE OR REPLACE FUNCTION orderly.production_issue_doc(i orderly.production_issues) RETURNS json
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT json_build_object(
        'id', ($1).id,
        'order', ($1).order_id,
        'kind', ($1).kind,
        'note', ($1).note,
        'opened_by', orderly.username_of(($1).opened_by),
        'opened_at', orderly.json_time(($1).opened_at),
        'resolved_by', orderly.username_of(($1).resolved_by),
        'resolved_at', orderly.json_time(($1).resolved_at),
        'resolution', ($1).resolution)
$$;

-- PRODUCTION START / DONE's reply: the order's status, each make-to-order line's state, the
-- open issues.
CREATE OR REPLACE FUNCTION orderly.production_doc(o orderly.orders) RETURNS json
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN json_build_object(
        'order', o.id,
        'status', o.status,
        'lines', (SELECT coalesce(json_agg(json_build_object(
                         'line', s.line_no, 'product', s.product, 'name', s.name, 'qty', s.qty,
                         'production', s.state,
                         'started_at', orderly.json_time(s.started_at), 'started_by', orderly.username_of(s.started_by),
                         'done_at', orderly.json_time(s.done_at), 'done_by', orderly.username_of(s.done_by))
                     ORDER BY s.line_no), '[]')
                  FROM orderly.production_state(o.id) s),
        'services', (SELECT coalesce(json_agg(json_build_object(
                            'line', l.line_no, 'product', p.code, 'name', p.name, 'qty', l.qty - l.cancelled_qty,
                            'performed', pl.status = 'done', 'performed_at', orderly.json_time(pl.done_at),
                            'performed_by', orderly.username_of(pl.done_by))
                        ORDER BY l.line_no), '[]')
                     FROM orderly.order_lines l
                     JOIN orderly.products p ON p.id = l.product_id
                     LEFT JOIN orderly.production_lines pl ON pl.order_id = l.order_id AND pl.line_no = l.line_no
                     WHERE l.order_id = o.id AND p.kind = 'service' AND l.qty > l.cancelled_qty),
        'issues', (SELECT coalesce(json_agg(orderly.production_issue_doc(i) ORDER BY i.id), '[]')
                   FROM orderly.production_issues i WHERE i.order_id = o.id AND i.resolved_at IS NULL));
END
$$;

-- lines=[1,2,…] of START and DONE: distinct line numbers, or NULL when not given.
CREATE OR REPLACE FUNCTION orderly.production_lines_arg(args jsonb) RETURNS integer[]
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v jsonb := orderly.arg_value(args, 'lines');
BEGIN
    IF v IS NULL THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(v) <> 'array' OR jsonb_array_length(v) = 0 OR jsonb_array_length(v) > 1000
       OR EXISTS (SELECT 1 FROM jsonb_array_elements(v) e
                  WHERE jsonb_typeof(e) <> 'number' OR e::text !~ '^[1-9][0-9]{0,8}$') THEN
        RAISE EXCEPTION 'lines must be a non-empty JSON array of line numbers, like lines=[1,3]' USING ERRCODE = 'OL400';
    END IF;
    RETURN ARRAY(SELECT DISTINCT e::text::integer FROM jsonb_array_elements(v) e ORDER BY 1);
END
$$;

-- The lines a step (START: from not_started; DONE: from in_production) applies to: the given
-- ones, each a make-to-order line of the order in from_state, else the reason why not; none
-- given, every line in from_state (at least one).
CREATE OR REPLACE FUNCTION orderly.production_step_lines(o orderly.orders, lines integer[], from_state text) RETURNS integer[]
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n      integer;
    v_kind text;
    v_state text;
BEGIN
    IF lines IS NULL THEN
        lines := ARRAY(SELECT s.line_no FROM orderly.production_state(o.id) s WHERE s.state = from_state ORDER BY 1);
        IF cardinality(lines) = 0 THEN
            RAISE EXCEPTION 'order % has no make-to-order line %', o.id,
                CASE from_state WHEN 'not_started' THEN 'left to start' ELSE 'in production' END USING ERRCODE = 'OL409';
        END IF;
        RETURN lines;
    END IF;
    FOREACH n IN ARRAY lines LOOP
        SELECT p.kind INTO v_kind
        FROM orderly.order_lines l JOIN orderly.products p ON p.id = l.product_id
        WHERE l.order_id = o.id AND l.line_no = n;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'order % has no line %', o.id, n USING ERRCODE = 'OL404';
        END IF;
        IF NOT orderly.line_needs_production(v_kind) THEN
            RAISE EXCEPTION 'line % is a % line; only make-to-order (custom) lines are produced', n, v_kind
                USING ERRCODE = 'OL409';
        END IF;
        SELECT s.state INTO v_state FROM orderly.production_state(o.id) s WHERE s.line_no = n;
        IF v_state = 'not_started' AND from_state <> 'not_started' THEN
            RAISE EXCEPTION 'line % has not been started (PRODUCTION START)', n USING ERRCODE = 'OL409';
        ELSIF v_state <> from_state THEN
            RAISE EXCEPTION 'line % is already %', n, replace(v_state, '_', ' ') USING ERRCODE = 'OL409';
        END IF;
    END LOOP;
    RETURN lines;
END
$$;

-- The order, row-locked, in one of the statuses production works on.
-- held: an order on hold from one of these statuses is taken too. A hold stops new work (and
-- shipping), not the recording of work that was under way and is finished: the facts stay true.
DROP FUNCTION IF EXISTS orderly.production_order_for(orderly.users, bigint, text[]);
CREATE OR REPLACE FUNCTION orderly.production_order_for(u orderly.users, order_id bigint, statuses text[],
                                                        held text[] DEFAULT '{}') RETURNS orderly.orders
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o orderly.orders := orderly.order_for(u, order_id, true);
BEGIN
    IF o.status = 'on_hold' AND o.held_from = ANY (held) THEN
        RETURN o;
    END IF;
    IF o.status = 'on_hold' AND cardinality(held) > 0 THEN
        RAISE EXCEPTION 'order % is on hold from %; production records what it finishes on orders held from %', o.id, o.held_from,
            array_to_string(held, ', ') USING ERRCODE = 'OL409';
    END IF;
    IF o.status <> ALL (statuses) THEN
        RAISE EXCEPTION 'order % is %; production works on orders that are %', o.id, o.status,
            array_to_string(statuses, ', ') USING ERRCODE = 'OL409';
    END IF;
    RETURN o;
END
$$;

-- Commands ---------------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION api.production_start(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.begin_command('PRODUCTION START', production_start.actor, production_start.args);
    v_replay json := orderly.replay(u, production_start.args);
    o        orderly.orders;
    v_lines  integer[] := orderly.production_lines_arg(production_start.args);
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    o := orderly.production_order_for(u, orderly.arg_bigint(args, 'order', true),
                                      ARRAY['approved', 'in_production', 'partially_shipped']);
    v_lines := orderly.production_step_lines(o, v_lines, 'not_started');
    INSERT INTO orderly.production_lines (order_id, line_no, customer_id, status, started_by)
    SELECT o.id, n, o.customer_id, 'in_production', u.id FROM unnest(v_lines) AS n;
    PERFORM orderly.audit(u.id, 'production.start', 'order', o.id::text, NULL,
                          jsonb_build_object('lines', to_jsonb(v_lines)));
    IF o.status = 'approved' THEN
        o := orderly.change_status(o, 'in_production', u.id, NULL);
    END IF;
    o := orderly.advance(o, u.id);
    RETURN NEXT orderly.remember(u, args, orderly.production_doc(o));
END
$$;

SELECT orderly.register_command('PRODUCTION START', 'api.production_start', 'production.manage',
    arguments  => 'order:id! lines:array',
    usage      => 'PRODUCTION START order= [lines=[…]]',
    summary    => 'Start making an order''s make-to-order lines (all not started, or lines=[1,3]); the order goes in_production.',
    changes    => true);

CREATE OR REPLACE FUNCTION api.production_done(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.begin_command('PRODUCTION DONE', production_done.actor, production_done.args);
    v_replay json := orderly.replay(u, production_done.args);
    o        orderly.orders;
    v_lines  integer[] := orderly.production_lines_arg(production_done.args);
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    o := orderly.production_order_for(u, orderly.arg_bigint(args, 'order', true),
                                      ARRAY['in_production', 'partially_shipped'], held => ARRAY['in_production', 'partially_shipped']);
    v_lines := orderly.production_step_lines(o, v_lines, 'in_production');
    UPDATE orderly.production_lines x SET status = 'done', done_at = now(), done_by = u.id
    WHERE x.order_id = o.id AND x.line_no = ANY (v_lines);
    PERFORM orderly.audit(u.id, 'production.done', 'order', o.id::text, NULL,
                          jsonb_build_object('lines', to_jsonb(v_lines)));
    PERFORM orderly.close_issues_without_work(o, u.id, 'Production finished');
    o := orderly.advance(o, u.id);
    RETURN NEXT orderly.remember(u, args, orderly.production_doc(o));
END
$$;

SELECT orderly.register_command('PRODUCTION DONE', 'api.production_done', 'production.manage',
    arguments  => 'order:id! lines:array',
    usage      => 'PRODUCTION DONE order= [lines=[…]]',
    summary    => 'Finish lines in production (all, or lines=[1,3]); with every line done the order is ready (prepaid: once paid).',
    changes    => true);

-- SERVICE DONE order= [lines=[…]]: the order's service lines performed (all not yet performed,
-- or the ones given), once the order is released as for shipping (ready, or in production or
-- partly shipped; prepaid: paid) and until it is delivered (not on hold: nothing is done for a
-- held order). A service holds up no shipment; the order is delivered once
-- what ships is delivered (or nothing ships) and every service is performed.
CREATE OR REPLACE FUNCTION api.service_done(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.begin_command('SERVICE DONE', service_done.actor, service_done.args);
    v_replay json := orderly.replay(u, service_done.args);
    o        orderly.orders;
    v_lines  integer[] := orderly.production_lines_arg(service_done.args);
    n        integer;
    v_kind   text;
    v_open   boolean;
    v_status text;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    o := orderly.order_for(u, orderly.arg_bigint(args, 'order', true), true);
    -- On hold, a service performed all the same is recorded (a hold stops new work, it does not
    -- make what happened untrue): judged by where the order was held from.
    v_status := CASE WHEN o.status = 'on_hold' THEN o.held_from ELSE o.status END;
    -- As goods ship: once released (ready: made, and a prepaid order paid) or in production.
    IF v_status = 'approved' THEN
        RAISE EXCEPTION 'order % is approved, not released yet: its services are performed once it is ready (its make-to-order lines made%) or in production',
            o.id, CASE WHEN orderly.order_terms(o) = 'prepaid' THEN ', and paid' ELSE '' END USING ERRCODE = 'OL409';
    END IF;
    IF v_status NOT IN ('in_production', 'ready', 'partially_shipped', 'shipped') THEN
        RAISE EXCEPTION 'order % is %; services are performed for orders that are in_production, ready, partially_shipped or shipped',
            o.id, o.status USING ERRCODE = 'OL409';
    END IF;
    IF NOT orderly.terms_release(o) THEN
        RAISE EXCEPTION 'order % is prepaid and not paid yet: its services are performed once it is paid', o.id USING ERRCODE = 'OL409';
    END IF;
    IF v_lines IS NULL THEN
        v_lines := orderly.services_to_perform(o.id);
        IF cardinality(v_lines) = 0 THEN
            RAISE EXCEPTION 'order % has no service line left to perform', o.id USING ERRCODE = 'OL409';
        END IF;
    END IF;
    FOREACH n IN ARRAY v_lines LOOP
        SELECT p.kind, l.qty > l.cancelled_qty INTO v_kind, v_open
        FROM orderly.order_lines l JOIN orderly.products p ON p.id = l.product_id
        WHERE l.order_id = o.id AND l.line_no = n;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'order % has no line %', o.id, n USING ERRCODE = 'OL404';
        ELSIF v_kind <> 'service' THEN
            RAISE EXCEPTION 'line % is a % line; SERVICE DONE is for service lines (make-to-order lines: PRODUCTION START and DONE)', n, v_kind
                USING ERRCODE = 'OL409';
        ELSIF NOT v_open THEN
            RAISE EXCEPTION 'line % is cancelled', n USING ERRCODE = 'OL409';
        ELSIF EXISTS (SELECT 1 FROM orderly.production_lines pl WHERE pl.order_id = o.id AND pl.line_no = n) THEN
            RAISE EXCEPTION 'line % has been performed already', n USING ERRCODE = 'OL409';
        ELSIF orderly.cancel_asked(o.id, n, 1) > 0 THEN
            RAISE EXCEPTION 'line % is asked to be cancelled (request %); it is performed only if the request is rejected: CANCEL APPROVE % or CANCEL REJECT % first',
                n, (SELECT x.id FROM orderly.order_cancellations x WHERE x.order_id = o.id AND x.status = 'requested'), o.id, o.id
                USING ERRCODE = 'OL409';
        END IF;
    END LOOP;
    INSERT INTO orderly.production_lines (order_id, line_no, customer_id, status, started_by, done_at, done_by)
    SELECT o.id, x, o.customer_id, 'done', u.id, now(), u.id FROM unnest(v_lines) AS x;
    PERFORM orderly.audit(u.id, 'service.done', 'order', o.id::text, NULL, jsonb_build_object('lines', to_jsonb(v_lines)));
    PERFORM orderly.close_issues_without_work(o, u.id, 'Production finished');
    o := orderly.advance(o, u.id);
    RETURN NEXT orderly.remember(u, args, orderly.production_doc(o));
END
$$;

SELECT orderly.register_command('SERVICE DONE', 'api.service_done', 'production.manage',
    arguments  => 'order:id! lines:array',
    usage      => 'SERVICE DONE order= [lines=[…]]',
    summary    => 'Record an order''s service lines as performed (all not yet performed, or lines=[3]); an order of services only is then delivered, an order with goods once they are delivered too.',
    changes    => true);

CREATE OR REPLACE FUNCTION api.production_issue(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.begin_command('PRODUCTION ISSUE', production_issue.actor, production_issue.args);
    v_replay json := orderly.replay(u, production_issue.args);
    v_kind   text := lower(btrim(orderly.arg_text(production_issue.args, 'kind', true)));
    v_note   text := btrim(orderly.arg_text(production_issue.args, 'note', true));
    o        orderly.orders;
    i        orderly.production_issues;
    v_doc    json;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    o := orderly.production_order_for(u, orderly.arg_bigint(args, 'order', true),
                                      ARRAY['approved', 'in_production', 'ready', 'partially_shipped', 'on_hold']);
    IF v_kind NOT IN ('material', 'equipment', 'quality', 'other') THEN
        RAISE EXCEPTION 'kind must be material, equipment, quality or other' USING ERRCODE = 'OL400';
    END IF;
    IF v_note = '' OR length(v_note) > 2000 THEN
        RAISE EXCEPTION 'note must be 1 to 2000 characters' USING ERRCODE = 'OL400';
    END IF;
    IF NOT orderly.has_production_work(o.id) THEN
        RAISE EXCEPTION 'order % has no production work: every line made to order is done or cancelled and every service performed (or it has none)', o.id
            USING ERRCODE = 'OL409';
    END IF;
    INSERT INTO orderly.production_issues (order_id, customer_id, kind, note, opened_by)
    VALUES (o.id, o.customer_id, v_kind, v_note, u.id)
    RETURNING * INTO i;
    v_doc := orderly.production_issue_doc(i);
    PERFORM orderly.audit(u.id, 'production.issue', 'production_issue', i.id::text, NULL, v_doc::jsonb);
    -- Last: api.notify's lock is held until commit.
    PERFORM api.notify(NULL, 'production_manager', 'production.issue',
                       jsonb_build_object('issue', i.id, 'order', o.id, 'customer', o.customer_id, 'kind', i.kind, 'note', i.note),
                       u.id);
    IF o.created_by IS NOT NULL THEN
        PERFORM api.notify(o.created_by, NULL, 'production.issue',
                           jsonb_build_object('issue', i.id, 'order', o.id, 'customer', o.customer_id, 'kind', i.kind, 'note', i.note),
                           u.id);
    END IF;
    RETURN NEXT orderly.remember(u, args, v_doc);
END
$$;

SELECT orderly.register_command('PRODUCTION ISSUE', 'api.production_issue', 'production.manage',
    arguments  => 'order:id! kind:text! note:text!',
    usage      => 'PRODUCTION ISSUE order= kind=material|equipment|quality|other note=',
    summary    => 'Report a production problem on an order; the production managers and the order''s creator are told.',
    changes    => true);

CREATE OR REPLACE FUNCTION api.production_resolve(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.begin_command('PRODUCTION RESOLVE', production_resolve.actor, production_resolve.args);
    v_replay json := orderly.replay(u, production_resolve.args);
    v_id     bigint := orderly.arg_bigint(production_resolve.args, 'id', true);
    v_note   text := nullif(btrim(orderly.arg_text(production_resolve.args, 'note')), '');
    i        orderly.production_issues;
    v_before json;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    SELECT * INTO i FROM orderly.production_issues x WHERE x.id = v_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'production issue % not found', v_id USING ERRCODE = 'OL404';
    END IF;
    -- The order's lock first, as every change to an order; then the issue's.
    PERFORM orderly.order_for(u, i.order_id, true);
    SELECT * INTO i FROM orderly.production_issues x WHERE x.id = v_id FOR UPDATE;
    IF i.resolved_at IS NOT NULL THEN
        RAISE EXCEPTION 'production issue % was resolved at %', i.id, orderly.json_time(i.resolved_at)
            USING ERRCODE = 'OL409';
    END IF;
    IF length(v_note) > 2000 THEN
        RAISE EXCEPTION 'note must be at most 2000 characters' USING ERRCODE = 'OL400';
    END IF;
    v_before := orderly.production_issue_doc(i);
    UPDATE orderly.production_issues x SET resolved_by = u.id, resolved_at = now(), resolution = v_note
    WHERE x.id = i.id
    RETURNING * INTO i;
    PERFORM orderly.audit(u.id, 'production.resolve', 'production_issue', i.id::text, v_before::jsonb,
                          orderly.production_issue_doc(i)::jsonb);
    RETURN NEXT orderly.remember(u, args, orderly.production_issue_doc(i));
END
$$;

SELECT orderly.register_command('PRODUCTION RESOLVE', 'api.production_resolve', 'production.manage',
    arguments  => 'id:id! note:text',
    positional => '{id}',
    usage      => 'PRODUCTION RESOLVE id [note=]',
    summary    => 'Resolve a production issue, with what was done about it.',
    changes    => true);
