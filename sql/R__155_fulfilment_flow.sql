-- Orderly: the automatic part of an order's life after approval (issue 12). The facts are rows
-- — payments, production lines, shipments (V017__fulfilment.sql) — and the commands that write
-- them (payments, production, shipments, holds: the later R files) call orderly.advance after
-- their change, in the same transaction, under the order's row lock. advance moves the order as
-- far as the facts allow, only along rows of order_status_transitions (automatic => true), so
-- that the lifecycle stays data. It comes before the approval flow, which calls it once an order
-- is approved.

-- What each line still needs. A custom (make-to-order) line is made before it ships; goods,
-- custom and bundle lines ship; a service line is neither made nor shipped but performed
-- (SERVICE DONE, R__185_production.sql), which holds up no shipment, only the delivery of the
-- order (fulfilment_facts' services_done). No SET search_path: they are inlined where they are used.
CREATE OR REPLACE FUNCTION orderly.line_needs_production(kind text) RETURNS boolean
LANGUAGE sql IMMUTABLE
AS $$ SELECT $1 = 'custom' $$;

CREATE OR REPLACE FUNCTION orderly.line_ships(kind text) RETURNS boolean
LANGUAGE sql IMMUTABLE
AS $$ SELECT $1 IN ('goods', 'custom', 'bundle') $$;

-- payment_status and open_amount: R__138_order_fulfilment.sql (the order document needs them).

-- How many of a line's open units the order's waiting cancellation request asks for (0 when none
-- waits): every open unit when it asks for the whole order or the whole line, else its quantity.
-- Those units do not ship (SHIPMENT CREATE refuses them, PICK LIST leaves them out) and a service
-- asked for is not performed until the request is decided, as nothing else of the order changes
-- meanwhile (R__197, check_no_cancel_request): the customer asked for them not to come.
CREATE OR REPLACE FUNCTION orderly.cancel_asked(order_id bigint, line_no integer, open integer) RETURNS integer
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_lines jsonb;
    v_found boolean;
    e       jsonb;
BEGIN
    SELECT x.lines, true INTO v_lines, v_found
    FROM orderly.order_cancellations x WHERE x.order_id = cancel_asked.order_id AND x.status = 'requested';
    IF v_found IS NULL THEN
        RETURN 0;
    END IF;
    IF v_lines IS NULL THEN
        RETURN open;
    END IF;
    SELECT x INTO e FROM jsonb_array_elements(v_lines) x WHERE (x ->> 'line')::integer = cancel_asked.line_no;
    RETURN CASE WHEN e IS NULL THEN 0 ELSE least(coalesce((e ->> 'qty')::integer, open), open) END;
END
$$;

-- A customer's open balance in one currency: what its approved, not yet completed orders still
-- owe, a cancelled one its unpaid fee (money is never summed across currencies).
CREATE OR REPLACE FUNCTION orderly.open_balance(customer_id bigint, currency text, except_order bigint DEFAULT NULL) RETURNS numeric
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(sum(orderly.open_amount(o)), 0)
    FROM orderly.orders o
    WHERE o.customer_id = $1 AND o.currency = $2 AND o.id IS DISTINCT FROM $3
      AND o.status IN ('approved', 'in_production', 'ready', 'partially_shipped', 'shipped', 'delivered', 'on_hold', 'cancelled')
$$;

-- Each line of the order with what is still to ship: ordered (less what was cancelled) less
-- shipped (0 for a line that does not ship), and whether it may ship now (a make-to-order line
-- once produced; a line cancelled whole counts as produced: nothing of it is waited for).
-- Its columns stay as they are: the pick list view (R__195_work_queues.sql) depends on them.
CREATE OR REPLACE FUNCTION orderly.open_lines(order_id bigint)
RETURNS TABLE (line_no integer, kind text, ordered integer, shipped integer, open integer, produced boolean)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    SELECT l.line_no, p.kind, l.qty - l.cancelled_qty, sh.shipped,
           CASE WHEN orderly.line_ships(p.kind) THEN greatest(l.qty - l.cancelled_qty - sh.shipped, 0) ELSE 0 END,
           NOT orderly.line_needs_production(p.kind) OR l.cancelled_qty = l.qty
               OR EXISTS (SELECT 1 FROM orderly.production_lines pl
                          WHERE pl.order_id = l.order_id AND pl.line_no = l.line_no AND pl.status = 'done')
    FROM orderly.order_lines l
    JOIN orderly.products p ON p.id = l.product_id
    CROSS JOIN LATERAL (SELECT coalesce(sum(sl.qty), 0)::integer AS shipped FROM orderly.shipment_lines sl
                        WHERE sl.order_id = l.order_id AND sl.line_no = l.line_no) sh
    WHERE l.order_id = open_lines.order_id
    ORDER BY l.line_no;
END
$$;

-- The order's service lines still to perform (SERVICE DONE, R__185_production.sql): not cancelled
-- whole, not performed yet. The one definition that the order's delivery, SERVICE DONE and the
-- cancellation's refusal read.
CREATE OR REPLACE FUNCTION orderly.services_to_perform(order_id bigint) RETURNS integer[]
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN ARRAY(SELECT x.line_no FROM orderly.order_lines x JOIN orderly.products p ON p.id = x.product_id
                 WHERE x.order_id = services_to_perform.order_id AND p.kind = 'service' AND x.qty > x.cancelled_qty
                   AND NOT EXISTS (SELECT 1 FROM orderly.production_lines pl
                                   WHERE pl.order_id = x.order_id AND pl.line_no = x.line_no AND pl.status = 'done')
                 ORDER BY x.line_no);
END
$$;

-- The facts advance reads, in one place: the lines' state from open_lines, the deliveries. A
-- line cancelled whole neither needs production nor counts as a line that ships.
-- ships_nothing: no line left to ship (an order of services only); services_needed: a service line
-- not cancelled; services_done: every such line has been performed (true without any).
DROP FUNCTION IF EXISTS orderly.fulfilment_facts(orderly.orders);
CREATE OR REPLACE FUNCTION orderly.fulfilment_facts(o orderly.orders,
    OUT production_needed boolean, OUT production_done boolean,
    OUT anything_shipped boolean, OUT everything_shipped boolean, OUT everything_delivered boolean,
    OUT ships_nothing boolean, OUT services_needed boolean, OUT services_done boolean)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- plpgsql: its plan is kept for the session.
    SELECT coalesce(bool_or(orderly.line_needs_production(l.kind) AND l.ordered > 0), false),
           coalesce(bool_and(l.produced), true),
           coalesce(bool_or(l.shipped > 0), false),
           coalesce(bool_and(l.open = 0), true)
               AND coalesce(bool_or(orderly.line_ships(l.kind) AND l.ordered > 0), false),
           NOT EXISTS (SELECT 1 FROM orderly.shipments s WHERE s.order_id = (fulfilment_facts.o).id AND s.status <> 'delivered')
               AND EXISTS (SELECT 1 FROM orderly.shipments s WHERE s.order_id = (fulfilment_facts.o).id),
           NOT coalesce(bool_or(orderly.line_ships(l.kind) AND l.ordered > 0), false),
           coalesce(bool_or(l.kind = 'service' AND l.ordered > 0), false)
    INTO production_needed, production_done, anything_shipped, everything_shipped, everything_delivered, ships_nothing, services_needed
    FROM orderly.open_lines((fulfilment_facts.o).id) l;
    -- Looked up only for an order with services (most have none: the write path pays nothing).
    services_done := NOT services_needed OR cardinality(orderly.services_to_perform((fulfilment_facts.o).id)) = 0;
END
$$;

-- Whether the order may be `ready` (released to the warehouse): every make-to-order line made,
-- and its terms let it go (orderly.terms_release). ORDER RELEASE checks it before going back to
-- ready; advance, below, computes the same from the facts it has already read.
CREATE OR REPLACE FUNCTION orderly.may_be_ready(o orderly.orders) RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN (orderly.fulfilment_facts(o)).production_done AND orderly.terms_release(o);
END
$$;

-- Whether the order's credit is judged (net terms, a limit in its currency) and, if so, its
-- customer's credit lock taken: one transaction at a time judges a customer's credit, so that
-- two orders raised at once do not each pass on the other's old total. An advisory lock ("cred"
-- and the customer), held to commit; taken before any SKU row lock by the callers that lock SKUs
-- after (a submission approved at once) or before them (apply_change), in that order.
CREATE OR REPLACE FUNCTION orderly.lock_credit(o orderly.orders) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF orderly.order_terms(o) = 'prepaid'
       OR NOT EXISTS (SELECT 1 FROM orderly.customers x
                      WHERE x.id = o.customer_id AND x.credit_limit IS NOT NULL AND x.credit_currency = o.currency) THEN
        RETURN false;
    END IF;
    PERFORM pg_advisory_xact_lock(x'63726564'::integer, (o.customer_id % 2147483647)::integer);
    RETURN true;
END
$$;

-- Whether the order takes its customer over the credit limit: net terms, a limit in the order's
-- currency, and the customer's open balance (its other orders) plus what this one still owes
-- above it. Read at approval (advance, check_credit) and when a change raises an approved
-- order's total (R__197_amendments.sql), under the customer's credit lock (orderly.lock_credit):
-- VOLATILE, so that the balance is read after the lock, as the last holder committed it.
CREATE OR REPLACE FUNCTION orderly.over_credit_limit(o orderly.orders) RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c orderly.customers;
BEGIN
    IF NOT orderly.lock_credit(o) THEN
        RETURN false;
    END IF;
    SELECT * INTO c FROM orderly.customers x WHERE x.id = o.customer_id;
    RETURN orderly.open_balance(c.id, c.credit_currency, o.id) + orderly.open_amount(o) > c.credit_limit;
END
$$;

-- Moves the order (row-locked by the caller) along its automatic transitions as far as the facts
-- allow and returns it:
-- - approved, net terms, with check_credit: over the customer's credit limit (open balance in
--   the credit currency plus this order) → on_hold, reason credit_limit;
-- - approved or in_production → ready once every make-to-order line is done and, on prepaid
--   terms, the order is paid (that is "released to the warehouse"); ready → approved when that
--   stops being true (a make-to-order line added, a prepaid order's total raised or part refunded:
--   V031), so that production can make the line and the warehouse waits for the money;
-- - → partially_shipped / shipped as shipments cover the lines;
-- - shipped → delivered once every shipment is delivered and every service performed; an order
--   of services only, ready (released: prepaid, paid) → delivered once they are all performed (V035);
-- - delivered → completed once nothing is left to pay or to pay back.
-- Each step is a change_status (history, audit), with actor_id as the user whose command caused
-- it (NULL: the system on its own, or, with carrier, a carrier's webhook).
DROP FUNCTION IF EXISTS orderly.advance(orderly.orders, bigint, boolean);
CREATE OR REPLACE FUNCTION orderly.advance(o orderly.orders, actor_id bigint, check_credit boolean DEFAULT false,
                                           carrier text DEFAULT NULL)
RETURNS orderly.orders
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f            record;
    v_next       text;
    v_releasable boolean;
    v_reason     text;
BEGIN
    IF check_credit AND o.status = 'approved' AND orderly.over_credit_limit(o) THEN
        -- change_status sets held_from and hold_reason with the status (orders_hold_check).
        RETURN orderly.change_status(o, 'on_hold', actor_id, 'credit_limit', automatic => true, carrier => carrier);
    END IF;
    LOOP
        f := orderly.fulfilment_facts(o);
        v_releasable := f.production_done AND orderly.terms_release(o);
        v_next := CASE
            WHEN o.status IN ('approved', 'in_production', 'ready') AND f.everything_shipped THEN 'shipped'
            WHEN o.status IN ('approved', 'in_production', 'ready') AND f.anything_shipped THEN 'partially_shipped'
            WHEN o.status = 'partially_shipped' AND f.everything_shipped THEN 'shipped'
            WHEN o.status IN ('approved', 'in_production') AND v_releasable THEN 'ready'
            WHEN o.status = 'ready' AND NOT v_releasable THEN 'approved'
            -- Made, waiting for a prepayment: nothing is in production any more (V042).
            WHEN o.status = 'in_production' AND f.production_done AND NOT v_releasable THEN 'approved'
            WHEN o.status = 'shipped' AND f.everything_delivered AND f.services_done THEN 'delivered'
            WHEN o.status = 'ready' AND f.ships_nothing AND f.services_needed AND f.services_done THEN 'delivered'
            -- Nothing left to pay and nothing to pay back (paid, a free order, or all of it refunded).
            WHEN o.status = 'delivered' AND orderly.open_amount(o) = 0 AND orderly.refund_due(o) = 0 THEN 'completed'
        END;
        EXIT WHEN v_next IS NULL;
        -- Back from ready, the history says why (the customer sees the order confirmed again).
        v_reason := CASE WHEN v_next = 'approved' THEN
                        CASE WHEN NOT f.production_done THEN 'a line is to be made first' ELSE 'waiting for payment (prepaid)' END
                    END;
        o := orderly.change_status(o, v_next, actor_id, v_reason, automatic => true, carrier => carrier);
    END LOOP;
    RETURN o;
END
$$;
