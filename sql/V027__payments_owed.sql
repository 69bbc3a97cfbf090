-- Orderly: each payment keeps what its order owed when it was recorded.
--
-- A payment's document shows the order's open amount and payment status as they stood right
-- after it (PAYMENT LIST, and the answer to recording the same payment again). The sums paid and
-- refunded come from the rows up to it, but what the order owes changes later (a cancellation's
-- fee instead of the total, an amendment): without this column an old payment read "refund_due"
-- after a cancellation, and recording it again answered otherwise than the first time. Rows
-- recorded before this column take what their order owes now, which is what their documents have
-- shown so far. The table is append-only (V017's trigger), so the guard steps aside for the fill.

ALTER TABLE orderly.payments ADD COLUMN owed numeric(14,2);
ALTER TABLE orderly.payments DISABLE TRIGGER payments_append_only;
UPDATE orderly.payments p SET owed = o.total - o.cancelled_total + o.charges_total
FROM orderly.orders o WHERE o.id = p.order_id;
ALTER TABLE orderly.payments ENABLE TRIGGER payments_append_only;
ALTER TABLE orderly.payments ALTER COLUMN owed SET NOT NULL;
COMMENT ON COLUMN orderly.payments.owed IS 'What the order owed (total - cancelled_total + charges_total) when this row was recorded';
