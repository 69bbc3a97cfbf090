-- Orderly: a draft, or an order that was rejected, can be discarded: ORDER CANCEL takes it to
-- cancelled, free, without a cancellation policy (nothing was ordered, or its stock and coupon
-- were released at the rejection). Before, ORDER CANCEL told the user to "abandon" a draft that
-- no command could abandon, and unwanted drafts and rejected orders stayed in ORDER LIST and the
-- customer's summary for good.
INSERT INTO orderly.order_status_transitions (from_status, to_status, permission)
VALUES ('draft', 'cancelled', 'order.cancel'), ('rejected', 'cancelled', 'order.cancel')
ON CONFLICT ON CONSTRAINT order_status_transitions_pkey DO NOTHING;

UPDATE orderly.order_statuses
SET description = 'Cancelled: before anything shipped (stock, coupon and production released), or a draft or rejected order discarded'
WHERE code = 'cancelled'
  AND description = 'Cancelled before anything shipped: stock, coupon and production released';
