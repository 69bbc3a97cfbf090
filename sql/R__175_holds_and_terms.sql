-- Orderly: customer terms and order holds (issue 12, item 2): CUSTOMER TERMS, ORDER HOLD,
-- ORDER RELEASE.
--
-- Terms: a customer pays prepaid (its orders are released to the warehouse, approved → ready,
-- only once paid) or net_N (N days after shipping; its orders go on at once), and may have a
-- credit limit in one currency. CUSTOMER TERMS is its own command, with payment.record (finance),
-- rather than more arguments of CUSTOMER UPDATE (customer.manage, which sales staff and the
-- customer's own logins hold): who may give credit is not who may change a phone number. New
-- terms apply to orders approved from then on; orders already on hold stay on hold.
--
-- Credit: when an order is approved (R__161_approval_flow.sql), orderly.advance
-- (R__155_fulfilment_flow.sql) puts a net order on hold, reason credit_limit, when the
-- customer's open balance in the credit currency plus this order exceeds the limit; the
-- finance_manager role and the creator hear of it (order.on_hold, raised for every hold by the
-- trigger of R__140_orders.sql).
--
-- Holds: ORDER HOLD id reason= stops an order in any status the transition table lets go on
-- hold (approved, in_production, ready, partially_shipped; order.hold); ORDER RELEASE id sends
-- it back to the status it was held from and lets orderly.advance move it on (a prepaid order
-- paid meanwhile goes to ready, …), without checking the credit limit again: a credit hold is
-- released by finance on purpose, so releasing one takes payment.record as well as order.hold.
--
-- Locks: the order row first (orderly.order_for), as every order change; the customer row alone
-- for CUSTOMER TERMS.

-- CUSTOMER TERMS ---------------------------------------------------------------------------------

-- As CUSTOMER TERMS answers and the audit log keeps it; open_balance: what the customer's
-- approved, not yet completed orders in the credit currency still owe.
CREATE OR REPLACE FUNCTION orderly.customer_terms_doc(c orderly.customers) RETURNS json
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN json_build_object(
        'customer', c.id,
        'name', c.name,
        'payment_terms', c.payment_terms,
        'credit_limit', c.credit_limit,
        'credit_currency', c.credit_currency,
        'open_balance', orderly.open_balance(c.id, c.credit_currency));
END
$$;

CREATE OR REPLACE FUNCTION api.customer_terms(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.begin_command('CUSTOMER TERMS', customer_terms.actor, customer_terms.args);
    v_replay json := orderly.replay(u, customer_terms.args);
    before   orderly.customers;
    c        orderly.customers;
    v_limit  jsonb;
    v_amount numeric;   -- checked before it meets the column's numeric(14,2), which would round it
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    IF NOT (args ?| ARRAY['payment_terms', 'credit_limit', 'credit_currency']) THEN
        RAISE EXCEPTION 'nothing to change: give payment_terms, credit_limit or credit_currency' USING ERRCODE = 'OL400';
    END IF;
    before := orderly.customer_for(u, orderly.arg_bigint(args, 'id', true), true);
    c := before;
    IF args ? 'payment_terms' THEN
        c.payment_terms := lower(btrim(orderly.arg_text(args, 'payment_terms')));
        IF c.payment_terms IS NULL OR c.payment_terms !~ '^(prepaid|net_[1-9][0-9]{0,2})$' THEN
            RAISE EXCEPTION 'payment_terms must be prepaid or net_N (N days, 1 to 999), like net_30' USING ERRCODE = 'OL400';
        END IF;
    END IF;
    IF args ? 'credit_limit' THEN
        v_limit := orderly.arg_scalar(args, 'credit_limit', false, 'an amount or "none"', keep_blank => true);
        IF v_limit IS NULL OR lower(btrim(v_limit #>> '{}')) IN ('', 'none') THEN
            c.credit_limit := NULL;
        ELSE
            v_amount := orderly.arg_numeric(args, 'credit_limit');
            IF v_amount < 0 OR v_amount <> round(v_amount, 2) OR v_amount >= 1e12 THEN
                RAISE EXCEPTION 'credit_limit must be an amount of at least 0 with at most 2 decimals, or "none"'
                    USING ERRCODE = 'OL400';
            END IF;
            c.credit_limit := v_amount;
        END IF;
    END IF;
    IF args ? 'credit_currency' THEN
        IF orderly.arg_text(args, 'credit_currency') IS NULL THEN
            RAISE EXCEPTION 'credit_currency must be a currency code like EUR' USING ERRCODE = 'OL400';
        END IF;
        c.credit_currency := orderly.check_currency(orderly.arg_text(args, 'credit_currency'), 'credit_currency');
    END IF;
    UPDATE orderly.customers x
    SET payment_terms = c.payment_terms, credit_limit = c.credit_limit, credit_currency = c.credit_currency,
        updated_at = now()
    WHERE x.id = c.id
    RETURNING * INTO c;
    PERFORM orderly.audit(u.id, 'customer.terms', 'customer', c.id::text,
                          orderly.customer_terms_doc(before)::jsonb - 'open_balance',
                          orderly.customer_terms_doc(c)::jsonb - 'open_balance');
    RETURN NEXT orderly.remember(u, args, orderly.customer_terms_doc(c));
END
$$;

SELECT orderly.register_command('CUSTOMER TERMS', 'api.customer_terms', 'payment.record',
    arguments  => 'id:id! payment_terms:code credit_limit:any credit_currency:code',
    positional => '{id}',
    usage      => 'CUSTOMER TERMS id [payment_terms=prepaid|net_N] [credit_limit=|none] [credit_currency=]',
    summary    => 'Set a customer''s payment terms and credit limit (finance); the reply shows its open balance.',
    changes    => true);

-- ORDER HOLD, ORDER RELEASE ---------------------------------------------------------------------

CREATE OR REPLACE FUNCTION api.order_hold(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.begin_command('ORDER HOLD', order_hold.actor, order_hold.args);
    v_replay json := orderly.replay(u, order_hold.args);
    v_reason text;
    o        orderly.orders;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    v_reason := btrim(orderly.arg_text(args, 'reason', true));
    IF length(v_reason) > 500 OR v_reason ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'reason must be one line of at most 500 characters' USING ERRCODE = 'OL400';
    END IF;
    o := orderly.order_for(u, orderly.arg_bigint(args, 'id', true), true);
    IF o.status = 'on_hold' THEN
        RAISE EXCEPTION 'order % is already on hold (%)', o.id, o.hold_reason USING ERRCODE = 'OL409';
    END IF;
    -- The transition row decides from where (else -CONFLICT naming the allowed next statuses).
    o := orderly.change_status(o, 'on_hold', u.id, v_reason);
    RETURN NEXT orderly.remember(u, args, orderly.visible_doc('order', orderly.order_doc(o), orderly.own_customer(u)));
END
$$;

SELECT orderly.register_command('ORDER HOLD', 'api.order_hold', 'order.hold',
    arguments  => 'id:id! reason:text!',
    positional => '{id}',
    usage      => 'ORDER HOLD id reason=',
    summary    => 'Stop an order (approved, in production, ready or partly shipped) with a reason; finance and the creator are told.',
    changes    => true);

CREATE OR REPLACE FUNCTION api.order_release(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.begin_command('ORDER RELEASE', order_release.actor, order_release.args);
    v_replay json := orderly.replay(u, order_release.args);
    v_note   text;
    o        orderly.orders;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    v_note := nullif(btrim(orderly.arg_text(args, 'reason')), '');
    IF length(v_note) > 500 OR v_note ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'reason must be one line of at most 500 characters' USING ERRCODE = 'OL400';
    END IF;
    o := orderly.order_for(u, orderly.arg_bigint(args, 'id', true), true);
    IF o.status <> 'on_hold' THEN
        RAISE EXCEPTION 'order % is %; only an order on hold can be released', o.id, o.status USING ERRCODE = 'OL409';
    END IF;
    IF o.hold_reason = 'credit_limit' AND NOT orderly.has_permission(u.id, 'payment.record') THEN
        RAISE EXCEPTION 'order % is held over its customer''s credit limit: finance (payment.record) releases it', o.id
            USING ERRCODE = 'OL403';
    END IF;
    -- Back where it was; but an order held at ready that may no longer be (a make-to-order line
    -- added, a prepaid total raised while held) goes to approved: announcing it ready to the
    -- warehouse only to take it back would be false.
    o := orderly.change_status(o, CASE WHEN o.held_from = 'ready' AND NOT orderly.may_be_ready(o) THEN 'approved' ELSE o.held_from END,
                               u.id, coalesce(v_note, format('released (held: %s)', o.hold_reason)));
    -- On as far as the facts allow, the credit limit not checked again.
    o := orderly.advance(o, u.id);
    RETURN NEXT orderly.remember(u, args, orderly.visible_doc('order', orderly.order_doc(o), orderly.own_customer(u)));
END
$$;

SELECT orderly.register_command('ORDER RELEASE', 'api.order_release', 'order.hold',
    arguments  => 'id:id! reason:text',
    positional => '{id}',
    usage      => 'ORDER RELEASE id [reason=]',
    summary    => 'Release an order from hold to where it was, and on (a credit-limit hold needs payment.record too).',
    changes    => true);
