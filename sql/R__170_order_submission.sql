-- Orderly: submitting an order (ORDER SUBMIT, and ORDER CREATE, which makes an order in one step
-- and may submit it). After the approval files: submission hands the order to
-- orderly.route_approval and orderly.notify_routed (R__161_approval_flow.sql), which move it with
-- the orders' own functions (R__140_orders.sql, where everything else of an order is).
--
-- Locks: every change takes the order's row lock first; submission then locks the coupon (if
-- any) and the SKUs in id order, so two submissions never wait on each other in a cycle. The SKU
-- rows are locked last, once the reply is built and the routing told (orderly.finish_submit): every
-- submission of a hot SKU queues on its row until the holder commits.

-- Submission: the final pricing, the coupon's use, the status, then the approval
-- routing (pending_approval, or approved when no rule applies). The caller builds its reply and
-- then calls orderly.finish_submit, which takes the stock and notifies. Needs lines and a ship-to address
-- (the order's, else the customer's default at this moment). A rejected order is submitted
-- again the same way: its stock and coupon were released at the rejection.
-- expected_total (the commands' expected_total=): the total the submitter agreed to, e.g. from
-- ORDER QUOTE; priced otherwise now (a price, rule or tax changed since), the submission is
-- refused and nothing changes, instead of an order at a total nobody saw.
DROP FUNCTION IF EXISTS orderly.submit_order(orderly.users, orderly.orders);
CREATE OR REPLACE FUNCTION orderly.submit_order(u orderly.users, o orderly.orders, expected_total numeric DEFAULT NULL) RETURNS orderly.orders
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_ship bigint;
BEGIN
    PERFORM orderly.require_permission(u.id, 'order.submit');
    -- An amount in the order's currency, as a quote shows it.
    IF expected_total < 0 OR expected_total >= 1e12 OR expected_total <> round(expected_total, 2) THEN
        RAISE EXCEPTION 'expected_total must be an amount of at least 0 with at most 2 decimals' USING ERRCODE = 'OL400';
    END IF;
    IF o.status NOT IN ('draft', 'rejected') THEN
        RAISE EXCEPTION 'order % is %; only a draft or a rejected order can be submitted', o.id, o.status
            USING ERRCODE = 'OL409';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM orderly.order_lines l WHERE l.order_id = o.id) THEN
        RAISE EXCEPTION 'order % has no lines', o.id USING ERRCODE = 'OL409';
    END IF;
    IF o.requested_date < current_date THEN
        RAISE EXCEPTION 'order %: requested_date % has passed; change it with ORDER UPDATE', o.id, o.requested_date
            USING ERRCODE = 'OL409';
    END IF;
    SELECT a.id INTO v_ship FROM orderly.addresses a
    WHERE a.customer_id = o.customer_id AND a.removed_at IS NULL
      AND (a.id = o.ship_to_id OR (o.ship_to_id IS NULL AND a.is_default));
    IF v_ship IS NULL THEN
        RAISE EXCEPTION 'order % needs a ship-to address: add one with ADDRESS ADD, or pick one with ORDER UPDATE % ship_to=', o.id, o.id
            USING ERRCODE = 'OL409';
    END IF;
    -- The final pricing, unless the order was priced in this very transaction for this address
    -- (ORDER CREATE … submit=true): then those are today's prices already, and pricing is the
    -- costly part of a submission.
    IF v_ship IS DISTINCT FROM o.ship_to_id OR o.priced_at IS DISTINCT FROM now() THEN
        UPDATE orderly.orders x SET ship_to_id = v_ship WHERE x.id = o.id RETURNING * INTO o;
        o := orderly.set_order_lines(o, orderly.order_specs(o.id));
    END IF;
    IF o.total IS DISTINCT FROM coalesce(expected_total, o.total) THEN
        -- No order id: ORDER CREATE's draft goes with the refusal.
        RAISE EXCEPTION 'the total is % %, not the expected %: prices, rules, the coupon or the tax differ from what was quoted; nothing was submitted, quote it again',
            o.total, o.currency, expected_total USING ERRCODE = 'OL409';
    END IF;
    IF o.coupon_code IS NOT NULL THEN
        PERFORM orderly.coupon_redeem(o.coupon_code, o.id, o.customer_id, u.id);
    END IF;
    -- A made-to-order line makes a standard order a custom one: the type chooses the approval
    -- rule, and production judges what it is to make (a customer, or a rep, drafting it as
    -- standard went round production's approval). Strategic stays strategic (staff's call).
    IF o.type = 'standard' AND EXISTS (SELECT 1 FROM orderly.order_lines l JOIN orderly.products p ON p.id = l.product_id
                                       WHERE l.order_id = o.id AND p.kind = 'custom') THEN
        UPDATE orderly.orders x SET type = 'custom' WHERE x.id = o.id RETURNING * INTO o;
    END IF;
    o := orderly.change_status(o, 'submitted', u.id, NULL);   -- also stamps submitted_by and submitted_at
    PERFORM orderly.audit(u.id, 'order.submit', 'order', o.id::text, NULL,
                          jsonb_build_object('total', o.total, 'currency', o.currency, 'ship_to', o.ship_to_id,
                                             'coupon', o.coupon_code, 'type', o.type));
    RETURN orderly.route_approval(o, u.id);
END
$$;

-- The end of every submission (o as orderly.submit_order returned it), after its reply has been
-- built: its events — the routing's (R__161_approval_flow.sql), then the status events the
-- deferred trigger of R__140 would raise at commit, in that order as before; raising one waits
-- for nobody — and then the stock: the SKU row locks, held until commit (every other submission
-- of those SKUs waits for them, so little but the commit comes after them: issue 16's flash
-- sale), and only then the reservation rows. Their foreign key takes a KEY SHARE lock on each
-- SKU row: taken before the SKU's update, by every submission at once, it made the row's lockers
-- a MultiXact that grew with each submission and that every update of the row had to resolve
-- (at 32 concurrent submissions of the same SKUs, 4 times slower); after the update this
-- transaction holds the row already and the foreign key's lock costs nothing.
-- actor_id: the user who submits.
DROP FUNCTION IF EXISTS orderly.finish_submit(orderly.orders);
CREATE OR REPLACE FUNCTION orderly.finish_submit(o orderly.orders, actor_id bigint) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM orderly.notify_routed(o, actor_id);
    -- A draft staff prepared, submitted by someone else (the customer accepting it): its author
    -- hears of it, as of nothing else until the approval's outcome.
    IF o.created_by IS DISTINCT FROM actor_id AND orderly.is_staff(o.created_by) THEN
        PERFORM api.notify(o.created_by, NULL, 'order.submitted',
                           jsonb_build_object('order', o.id, 'customer', (SELECT c.name FROM orderly.customers c WHERE c.id = o.customer_id),
                                              'total', o.total, 'currency', o.currency, 'status', o.status,
                                              'submitted_by', orderly.username_of(actor_id)),
                           actor_id);
    END IF;
    -- Raises the pending status events now; immediate for the rest of the transaction, which a
    -- submission ends (a pgTAP file that goes on sees later status events at once).
    SET CONSTRAINTS orderly.order_status_events IMMEDIATE;
    PERFORM orderly.take_stock(o.id);
    PERFORM orderly.reserve_stock(o, actor_id);
END
$$;

-- Commands -------------------------------------------------------------------------------------

-- Their replies were stored with orderly.idempotent_finish before every changing command took
-- idempotency keys (orderly.remember, R__014_idempotency.sql). Dropped here, after the last
-- caller was replaced, so that no command calls it while a migration is half-way.
DROP FUNCTION IF EXISTS orderly.idempotent_finish(bigint, text, json);

-- One shot: draft, lines, optionally submit, in one transaction. With idempotency_key a retry
-- gets the first reply back instead of a second order.
CREATE OR REPLACE FUNCTION api.order_create(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.begin_command('ORDER CREATE', order_create.actor, order_create.args);
    v_replay json := orderly.replay(u, order_create.args);
    v_lines  jsonb;
    o        orderly.orders;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    v_lines := orderly.check_lines_arg(args);
    IF args ? 'expected_total' AND NOT coalesce(orderly.arg_bool(args, 'submit'), false) THEN
        RAISE EXCEPTION 'expected_total goes with submit=true (a draft is not held to a total)' USING ERRCODE = 'OL400';
    END IF;
    o := orderly.create_draft(u, args - 'lines' - 'submit' - 'expected_total' - 'idempotency_key', jsonb_array_length(v_lines));
    PERFORM orderly.require_override(u, l) FROM jsonb_array_elements(v_lines) l;
    o := orderly.set_order_lines(o, orderly.numbered_specs(v_lines));
    UPDATE orderly.order_lines x SET override_by = u.id WHERE x.order_id = o.id AND x.is_override;
    IF NOT coalesce(orderly.arg_bool(args, 'submit'), false) THEN
        RETURN NEXT orderly.remember(u, args, orderly.visible_doc('order', orderly.order_doc(o), orderly.own_customer(u)));
        RETURN;
    END IF;
    o := orderly.submit_order(u, o, orderly.arg_numeric(args, 'expected_total', args ? 'expected_total'));
    -- The reply is built (and stored) before orderly.finish_submit takes the stock.
    RETURN NEXT orderly.remember(u, args, orderly.visible_doc('order', orderly.order_doc(o), orderly.own_customer(u)));
    PERFORM orderly.finish_submit(o, u.id);
END
$$;

SELECT orderly.register_command('ORDER CREATE', 'api.order_create', 'order.create',
    arguments  => 'customer:id! lines:array! type:text ship_to:id requested_date:date coupon:code note:text submit:boolean expected_total:number',
    usage      => 'ORDER CREATE customer= lines=[…] [type=] [ship_to=] [requested_date=] [coupon=] [note=] [submit=true [expected_total=]]',
    summary    => 'Create an order in one step, optionally submitting it (refused if its total is not expected_total). A retry with the same idempotency_key gets the same reply.',
    changes    => true);

CREATE OR REPLACE FUNCTION api.order_submit(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.begin_command('ORDER SUBMIT', order_submit.actor, order_submit.args);
    v_replay json := orderly.replay(u, order_submit.args);
    o        orderly.orders;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    o := orderly.order_for(u, orderly.arg_bigint(args, 'id', true), true);
    o := orderly.submit_order(u, o, orderly.arg_numeric(args, 'expected_total', args ? 'expected_total'));
    -- The reply is built (and stored) before orderly.finish_submit takes the stock.
    RETURN NEXT orderly.remember(u, args, orderly.visible_doc('order', orderly.order_doc(o), orderly.own_customer(u)));
    PERFORM orderly.finish_submit(o, u.id);
END
$$;

SELECT orderly.register_command('ORDER SUBMIT', 'api.order_submit', 'order.submit',
    arguments  => 'id:id! expected_total:number',
    positional => '{id}',
    usage      => 'ORDER SUBMIT id [expected_total=]',
    summary    => 'Submit a draft (or a rejected order again): prices are fixed, the coupon used, stock reserved; refused if the total is not expected_total.',
    changes    => true);
