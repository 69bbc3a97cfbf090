-- Orderly: receivables for finance: what customers still owe on their orders and how overdue it
-- is, and what is to be paid back to them. A plain read of the orders' money columns (payments,
-- R__180, keep amount_paid / amount_refunded on the order) through the same open_amount and
-- refund_due as the order's document (R__138), so the two never disagree.
--
-- When an order is billed, and so when it falls due (Orderly keeps no invoices of its own):
--   prepaid   at its first approval, and due then (it waits for the money before it ships);
--   net_N     when its first shipment leaves (an order of services only: when it is delivered,
--             its services performed), and due N days later;
--   either    cancelled before that, when the cancellation was decided (its fee).
-- Not yet billed (net terms, nothing shipped): aging not_billed. Days overdue count whole UTC days
-- after the due day; an order with money to pay back is in refund_due, whatever else it is.

CREATE OR REPLACE VIEW orderly.receivables AS
SELECT o.id AS order_id,
       o.customer_id,
       c.name AS customer_name,
       o.status,
       o.currency,
       t.terms AS payment_terms,
       orderly.amount_owed(o) AS owed,
       o.amount_paid - o.amount_refunded AS paid,
       orderly.open_amount(o) AS open_amount,
       orderly.refund_due(o) AS refund_due,
       b.billed_at,
       e.due_at,
       d.days_overdue,
       CASE WHEN orderly.refund_due(o) > 0 THEN 'refund_due'
            WHEN e.due_at IS NULL THEN 'not_billed'
            WHEN d.days_overdue = 0 THEN 'current'
            WHEN d.days_overdue <= 30 THEN '1_30'
            WHEN d.days_overdue <= 60 THEN '31_60'
            WHEN d.days_overdue <= 90 THEN '61_90'
            ELSE 'over_90' END AS aging
FROM orderly.orders o
JOIN orderly.customers c ON c.id = o.customer_id
CROSS JOIN LATERAL (SELECT orderly.order_terms(o) AS terms) t
CROSS JOIN LATERAL (
    SELECT coalesce(CASE WHEN t.terms = 'prepaid'
                         THEN (SELECT min(h.changed_at) FROM orderly.order_status_history h
                               WHERE h.order_id = o.id AND h.to_status = 'approved')
                         ELSE coalesce((SELECT min(s.shipped_at) FROM orderly.shipments s WHERE s.order_id = o.id),
                                       (SELECT min(h.changed_at) FROM orderly.order_status_history h
                                        WHERE h.order_id = o.id AND h.to_status = 'delivered')) END,
                    (SELECT max(x.decided_at) FROM orderly.order_cancellations x
                     WHERE x.order_id = o.id AND x.status = 'applied' AND o.status = 'cancelled')) AS billed_at
) b
CROSS JOIN LATERAL (
    SELECT b.billed_at + CASE WHEN t.terms = 'prepaid' THEN interval '0' ELSE make_interval(days => substr(t.terms, 5)::integer) END AS due_at
) e
CROSS JOIN LATERAL (
    SELECT CASE WHEN orderly.open_amount(o) > 0 AND e.due_at IS NOT NULL
                THEN greatest((now() AT TIME ZONE 'UTC')::date - (e.due_at AT TIME ZONE 'UTC')::date, 0) ELSE 0 END AS days_overdue
) d
-- Money to pay back, whatever the order's status (paid ahead, then rejected); money to be paid only
-- once the order was approved (its terms fixed) or cancelled (a fee): before that it owes nothing.
WHERE orderly.refund_due(o) > 0
   OR (orderly.open_amount(o) > 0 AND (o.payment_terms IS NOT NULL OR o.status = 'cancelled'));

COMMENT ON VIEW orderly.receivables IS 'Orders with money still to be paid or to be paid back: billing, due day and aging (analytics.receivables, REPORT receivables)';

-- For BI (SECURITY DEFINER: BI logins read analytics only, never the orderly tables behind it).
CREATE OR REPLACE FUNCTION analytics.receivables_rows() RETURNS SETOF orderly.receivables
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM orderly.receivables $$;

REVOKE ALL ON FUNCTION analytics.receivables_rows() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION analytics.receivables_rows() TO orderly_bi;
COMMENT ON FUNCTION analytics.receivables_rows() IS 'The rows of analytics.receivables';

CREATE OR REPLACE VIEW analytics.receivables AS SELECT * FROM analytics.receivables_rows();

COMMENT ON VIEW analytics.receivables IS 'Each placed order with money still to be paid (open_amount) or to be paid back (refund_due), in its own currency: when it was billed (prepaid: at approval; net_N: when its first shipment left, or a cancellation fee when decided), when it is due (net_N: N days later), how many days overdue, and its aging bucket';
COMMENT ON COLUMN analytics.receivables.order_id IS 'Order number';
COMMENT ON COLUMN analytics.receivables.customer_id IS 'Customer id';
COMMENT ON COLUMN analytics.receivables.customer_name IS 'Customer name';
COMMENT ON COLUMN analytics.receivables.status IS 'Order status now';
COMMENT ON COLUMN analytics.receivables.currency IS 'Currency of every amount in the row (never summed across currencies)';
COMMENT ON COLUMN analytics.receivables.payment_terms IS 'prepaid or net_N: the terms the order was approved under';
COMMENT ON COLUMN analytics.receivables.owed IS 'What the customer owes for the order: total less what was cancelled, plus charges (a cancellation fee)';
COMMENT ON COLUMN analytics.receivables.paid IS 'Paid less refunded';
COMMENT ON COLUMN analytics.receivables.open_amount IS 'Still to be paid (owed less paid; never negative)';
COMMENT ON COLUMN analytics.receivables.refund_due IS 'To be paid back: paid beyond what is owed (after a cancellation or an amendment lowering the total)';
COMMENT ON COLUMN analytics.receivables.billed_at IS 'When the order was billed: prepaid at its first approval; net terms when its first shipment left (services only: when delivered), or when its cancellation was decided (a fee); NULL: not billed yet';
COMMENT ON COLUMN analytics.receivables.due_at IS 'When payment is due: prepaid at billing, net_N N days after it; NULL: not billed yet';
COMMENT ON COLUMN analytics.receivables.days_overdue IS 'Whole days (UTC) since the due day with money still open; 0: not overdue, nothing open, or not billed';
COMMENT ON COLUMN analytics.receivables.aging IS 'refund_due (money to pay back), not_billed, current (not overdue), 1_30, 31_60, 61_90 or over_90 days overdue';
