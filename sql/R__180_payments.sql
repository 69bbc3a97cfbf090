-- Orderly: payments and refunds (issue 12, item 3): PAYMENT RECORD, PAYMENT REFUND, PAYMENT LIST.
--
-- A payment is a row of orderly.payments (V017__fulfilment.sql), in the order's currency only;
-- the order keeps the sums (orders.amount_paid, amount_refunded) in the same transaction, under
-- its row lock, and orderly.payment_status / open_amount (R__155_fulfilment_flow.sql) derive the
-- rest. After a payment, orderly.advance moves the order on: a prepaid order is released
-- (approved → ready) once paid, a delivered one completed.
--
-- The same payment recorded twice is one row: a payment is known by its method and reference (a
-- bank's transaction id, a card slip, a cheque number; compared without case and surrounding
-- spaces), so recording it again — a retry, a second clerk with the same bank statement — finds
-- the row and answers with the very same reply, and changes nothing. The same reference with
-- another amount or for another order is -CONFLICT. Refunds are their own rows (kind refund), known
-- by their own method and reference the same way.
--
-- Rules: payments only for an order that has been approved (not a draft, one awaiting approval
-- or rejected); never more than the open amount (the message names it); a refund never more than
-- what was paid and not yet refunded. received_at (default now) may not lie in the future.
--
-- Events: payment.received (and payment.refunded) to role finance_manager and to the order's
-- creator: {order, customer, payment, amount, currency, method, reference, received_at,
-- payment_status, open_amount, recorded_by}; a customer login sees them without customer and
-- recorded_by (R__045_customer_view.sql).
--
-- Locks: the order row first (orderly.order_for), then the payment's unique (kind, method,
-- reference) entry; the event lock last.

-- Documents -------------------------------------------------------------------------------------

-- One payment as PAYMENT RECORD / REFUND answer and PAYMENT LIST lists it, with the order's sums as
-- they stood right after it (from the rows up to this one, which are append-only and numbered in
-- the order they were taken under the order's lock): the same document whenever it is built,
-- which is what makes a recorded payment's second recording answer exactly like the first.
CREATE OR REPLACE FUNCTION orderly.payment_doc(p orderly.payments) RETURNS json
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o orderly.orders;
BEGIN
    SELECT * INTO o FROM orderly.orders x WHERE x.id = p.order_id;
    -- What the order owed then (V027), whatever it owes now: as the order's total, so that
    -- orderly.amount_owed(o) is that and the open amount and status below are the ones of then.
    o.total := p.owed;
    o.cancelled_total := 0;
    o.charges_total := 0;
    SELECT coalesce(sum(x.amount) FILTER (WHERE x.kind = 'payment'), 0),
           coalesce(sum(x.amount) FILTER (WHERE x.kind = 'refund'), 0)
    INTO o.amount_paid, o.amount_refunded
    FROM orderly.payments x
    WHERE x.order_id = p.order_id AND x.id <= p.id;
    RETURN json_build_object(
        'id', p.id,
        'order', p.order_id,
        'kind', p.kind,
        'amount', p.amount,
        'currency', p.currency,
        'method', p.method,
        'reference', p.reference,
        'received_at', orderly.json_time(p.received_at),
        'recorded_by', orderly.username_of(p.recorded_by),
        'recorded_at', orderly.json_time(p.recorded_at),
        'order_paid', o.amount_paid,
        'order_refunded', o.amount_refunded,
        'open_amount', orderly.open_amount(o),
        'payment_status', orderly.payment_status(o));
END
$$;

-- Recording -------------------------------------------------------------------------------------

-- PAYMENT RECORD and PAYMENT REFUND (kind payment or refund), checked and written under the
-- order's lock, and the order moved on (orderly.advance). Returns the payment row and whether
-- this call wrote it (false: the same payment was recorded before, and nothing changed).
-- only_refund_due: a refund of what a cancellation left due (REFUND RECORD, R__198_cancellation.sql),
-- never more than that.
DROP FUNCTION IF EXISTS orderly.enter_payment(orderly.users, jsonb, text);
CREATE OR REPLACE FUNCTION orderly.enter_payment(u orderly.users, args jsonb, kind text, only_refund_due boolean DEFAULT false,
                                                 OUT p orderly.payments, OUT created boolean)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_method    text := lower(btrim(orderly.arg_text(args, 'method', true)));
    v_amount    numeric := orderly.arg_numeric(args, 'amount', true);
    v_reference text := btrim(orderly.arg_text(args, 'reference', true));
    v_at        timestamptz := coalesce(orderly.arg_time(args, CASE kind WHEN 'refund' THEN 'refunded_at' ELSE 'received_at' END), now());
    v_currency  text := nullif(upper(btrim(orderly.arg_text(args, 'currency'))), '');
    v_words     text := CASE kind WHEN 'refund' THEN 'refund' ELSE 'payment' END;
    o           orderly.orders;
BEGIN
    IF v_method NOT IN ('bank_transfer', 'card', 'cash', 'cheque', 'other') THEN
        RAISE EXCEPTION 'method must be one of: bank_transfer, card, cash, cheque, other' USING ERRCODE = 'OL400';
    END IF;
    IF v_amount <= 0 OR v_amount <> round(v_amount, 2) THEN
        RAISE EXCEPTION 'amount must be more than 0, with at most 2 decimals' USING ERRCODE = 'OL400';
    END IF;
    IF v_amount >= 1e12 THEN
        RAISE EXCEPTION 'amount must be less than 1000000000000' USING ERRCODE = 'OL400';
    END IF;
    IF length(v_reference) > 200 OR v_reference ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'reference must be one line of at most 200 characters' USING ERRCODE = 'OL400';
    END IF;
    IF v_at > now() + interval '5 minutes' THEN
        RAISE EXCEPTION '% is in the future', CASE kind WHEN 'refund' THEN 'refunded_at' ELSE 'received_at' END
            USING ERRCODE = 'OL400';
    END IF;

    o := orderly.order_for(u, orderly.arg_bigint(args, 'order', true), true);
    -- Money for an order is received (or given back) on the day it was created at the earliest
    -- (a payment in the morning for an order entered that afternoon is fine; 1900 is a typo).
    IF v_at < date_trunc('day', o.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' THEN
        RAISE EXCEPTION '% (%) is before order % was created (%)', CASE kind WHEN 'refund' THEN 'refunded_at' ELSE 'received_at' END,
            orderly.json_time(v_at), o.id, (o.created_at AT TIME ZONE 'UTC')::date USING ERRCODE = 'OL400';
    END IF;
    IF v_currency IS NOT NULL AND v_currency <> o.currency THEN
        RAISE EXCEPTION 'order % is in %: a % is recorded in the order''s currency only', o.id, o.currency, v_words
            USING ERRCODE = 'OL400';
    END IF;

    -- The same payment again: one row, the same reply. Before the amount checks, so that a
    -- retry of the payment that paid the order in full is not refused as an over-payment.
    SELECT * INTO p FROM orderly.payments x
    WHERE x.kind = enter_payment.kind AND x.method = v_method AND lower(btrim(x.reference)) = lower(v_reference);
    IF p.id IS NOT NULL THEN
        PERFORM orderly.raise_if_other_payment(p, o.id, v_amount);
        created := false;
        RETURN;
    END IF;

    IF kind = 'payment' THEN
        IF NOT orderly.was_approved(o.id) THEN
            RAISE EXCEPTION 'order % is %: payments are recorded once it is approved', o.id, o.status
                USING ERRCODE = 'OL409';
        END IF;
        IF v_amount > orderly.open_amount(o) THEN
            RAISE EXCEPTION 'payment of % % is more than the open amount of order %: % %', v_amount, o.currency, o.id,
                orderly.open_amount(o), o.currency USING ERRCODE = 'OL409';
        END IF;
    ELSIF only_refund_due AND v_amount > orderly.refund_due(o) THEN
        RAISE EXCEPTION 'refund of % % is more than the refund due on order %: % %', v_amount, o.currency, o.id,
            orderly.refund_due(o), o.currency USING ERRCODE = 'OL409';
    -- A final order (completed: nothing left to pay or to pay back; cancelled: what it owes is its
    -- fee) is paid back what is due, never more: a refund beyond it would leave the order owing
    -- money again (a cancellation's fee refunded, a completed order reopened).
    ELSIF o.status IN ('completed', 'cancelled') AND v_amount > orderly.refund_due(o) THEN
        RAISE EXCEPTION 'order % is %: a refund of % % is more than the refund due (% %) and would make it owe money again',
            o.id, o.status, v_amount, o.currency, orderly.refund_due(o), o.currency USING ERRCODE = 'OL409';
    ELSIF v_amount > o.amount_paid - o.amount_refunded THEN
        RAISE EXCEPTION 'refund of % % is more than order % has paid and not had refunded: % %', v_amount, o.currency,
            o.id, o.amount_paid - o.amount_refunded, o.currency USING ERRCODE = 'OL409';
    END IF;

    -- A concurrent recording of the same reference for another order (under another order's
    -- lock) is waited for here, and then found.
    INSERT INTO orderly.payments (order_id, customer_id, kind, amount, currency, method, reference, received_at, recorded_by, owed)
    VALUES (o.id, o.customer_id, enter_payment.kind, v_amount, o.currency, v_method, v_reference, v_at, u.id,
            orderly.amount_owed(o))
    ON CONFLICT (kind, method, lower(btrim(reference))) DO NOTHING
    RETURNING * INTO p;
    IF p.id IS NULL THEN
        SELECT * INTO p FROM orderly.payments x
        WHERE x.kind = enter_payment.kind AND x.method = v_method AND lower(btrim(x.reference)) = lower(v_reference);
        PERFORM orderly.raise_if_other_payment(p, o.id, v_amount);
        created := false;
        RETURN;
    END IF;

    PERFORM orderly.audit(u.id, 'payment.' || CASE kind WHEN 'refund' THEN 'refund' ELSE 'record' END, 'order', o.id::text,
                          jsonb_build_object('amount_paid', o.amount_paid, 'amount_refunded', o.amount_refunded,
                                             'payment_status', orderly.payment_status(o)),
                          orderly.payment_doc(p)::jsonb);
    UPDATE orderly.orders x
    SET amount_paid = x.amount_paid + CASE kind WHEN 'payment' THEN v_amount ELSE 0 END,
        amount_refunded = x.amount_refunded + CASE kind WHEN 'refund' THEN v_amount ELSE 0 END,
        updated_at = now()
    WHERE x.id = o.id
    RETURNING * INTO o;
    -- Paid: a prepaid order is released (ready), a delivered one completed; part of a prepaid
    -- order's payment refunded before it ships: back to approved, to wait for the money.
    PERFORM orderly.advance(o, u.id);
    created := true;
END
$$;

-- A payment found by its (kind, method, reference) is this one only for the same order and amount.
CREATE OR REPLACE FUNCTION orderly.raise_if_other_payment(p orderly.payments, order_id bigint, amount numeric) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p.order_id <> raise_if_other_payment.order_id OR p.amount <> raise_if_other_payment.amount THEN
        RAISE EXCEPTION '% % "%" is already recorded: % % for order %', p.method, p.kind, orderly.for_message(p.reference),
            p.amount, p.currency, p.order_id USING ERRCODE = 'OL409';
    END IF;
END
$$;

-- payment.received / payment.refunded to finance and the order's creator; call last.
CREATE OR REPLACE FUNCTION orderly.notify_payment(p orderly.payments, actor_id bigint) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_doc     jsonb := orderly.payment_doc(p)::jsonb;
    v_kind    text := CASE p.kind WHEN 'refund' THEN 'payment.refunded' ELSE 'payment.received' END;
    v_creator bigint := (SELECT o.created_by FROM orderly.orders o WHERE o.id = p.order_id);
    v_payload jsonb := jsonb_build_object(
        'order', p.order_id,
        'customer', (SELECT c.name FROM orderly.customers c WHERE c.id = p.customer_id),
        'payment', p.id,
        'amount', p.amount,
        'currency', p.currency,
        'method', p.method,
        'reference', p.reference,
        'received_at', v_doc -> 'received_at',
        'payment_status', v_doc -> 'payment_status',
        'open_amount', v_doc -> 'open_amount',
        'recorded_by', v_doc -> 'recorded_by');
BEGIN
    PERFORM api.notify(NULL, 'finance_manager', v_kind, v_payload, actor_id);
    IF v_creator IS NOT NULL THEN
        PERFORM api.notify(v_creator, NULL, v_kind, v_payload, actor_id);
    END IF;
END
$$;

-- Commands -------------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION api.payment_record(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.begin_command('PAYMENT RECORD', payment_record.actor, payment_record.args);
    v_replay json := orderly.replay(u, payment_record.args);
    e        record;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    e := orderly.enter_payment(u, args, 'payment');
    RETURN NEXT orderly.remember(u, args, orderly.visible_doc('payment', orderly.payment_doc(e.p), orderly.own_customer(u)));
    IF e.created THEN
        PERFORM orderly.notify_payment(e.p, u.id);
    END IF;
END
$$;

SELECT orderly.register_command('PAYMENT RECORD', 'api.payment_record', 'payment.record',
    arguments  => 'order:id! amount:number! method:code! reference:text! received_at:timestamp currency:code',
    usage      => 'PAYMENT RECORD order= amount= method=bank_transfer|card|cash|cheque|other reference= [received_at=] [currency=]',
    summary    => 'Record a payment in the order''s currency, up to its open amount; the same method and reference again is the same payment.',
    changes    => true);

CREATE OR REPLACE FUNCTION api.payment_refund(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.begin_command('PAYMENT REFUND', payment_refund.actor, payment_refund.args);
    v_replay json := orderly.replay(u, payment_refund.args);
    e        record;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    e := orderly.enter_payment(u, args, 'refund');
    RETURN NEXT orderly.remember(u, args, orderly.visible_doc('payment', orderly.payment_doc(e.p), orderly.own_customer(u)));
    IF e.created THEN
        PERFORM orderly.notify_payment(e.p, u.id);
    END IF;
END
$$;

SELECT orderly.register_command('PAYMENT REFUND', 'api.payment_refund', 'payment.record',
    arguments  => 'order:id! amount:number! method:code! reference:text! refunded_at:timestamp currency:code',
    usage      => 'PAYMENT REFUND order= amount= method=bank_transfer|card|cash|cheque|other reference= [refunded_at=] [currency=]',
    summary    => 'Record a refund, up to what the order has paid and not had refunded; the same method and reference again is the same refund.',
    changes    => true);

CREATE OR REPLACE FUNCTION api.payment_list(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u     orderly.users := orderly.begin_command('PAYMENT LIST', payment_list.actor, payment_list.args);
    o     orderly.orders := orderly.order_for(u, orderly.arg_bigint(args, 'order', true), false);
    v_own bigint := orderly.own_customer(u);
BEGIN
    RETURN QUERY
    SELECT orderly.visible_doc('payment', orderly.payment_doc(p), v_own)
    FROM orderly.payments p
    WHERE p.order_id = o.id
    ORDER BY p.id;
END
$$;

SELECT orderly.register_command('PAYMENT LIST', 'api.payment_list', 'order.read',
    arguments  => 'order:id!',
    positional => '{order}',
    usage      => 'PAYMENT LIST order',
    summary    => 'An order''s payments and refunds, oldest first, each with the order''s paid, refunded and open amounts after it.');
