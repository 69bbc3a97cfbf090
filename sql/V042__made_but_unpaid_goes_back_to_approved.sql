-- Orderly: a prepaid order whose make-to-order lines are all made, not paid yet, goes from
-- in_production back to approved ("waiting for payment (prepaid)"), as a ready order does whose
-- payment is refunded (V031): it stayed "In production" for the customer with nothing left to
-- make, and in production's work queue. Paid, it is ready. Moved by orderly.advance only.
INSERT INTO orderly.order_status_transitions (from_status, to_status, permission) VALUES ('in_production', 'approved', 'order.hold')
ON CONFLICT DO NOTHING;
