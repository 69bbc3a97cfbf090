-- Orderly: an order whose goods have all shipped but whose services are not performed yet
-- (the setup of the machine delivered) had no cancellation policy row, so those services could
-- not be cancelled: the order stayed `shipped` until somebody recorded a service that never
-- happened. With a row for `shipped`, what is left of such an order (its services; shipped goods
-- never are) may be cancelled, free, as a sales manager decides. Admins change it like any row.
INSERT INTO orderly.cancellation_policies (status, currency, fee_percent, fee_basis, fee_fixed, fee_min, fee_max, approval_role, note)
VALUES ('shipped', NULL, 0, 'cancelled_value', 0, NULL, NULL, 'sales_manager', 'Goods shipped: only services not yet performed are left to cancel')
ON CONFLICT ON CONSTRAINT cancellation_policies_key DO NOTHING;

-- The notes of the seeded rows said what `ready` is not: an order is `ready` once released to the
-- warehouse (a stock order on net terms at its approval), not once picked. Rows an admin has
-- reworded are left alone.
UPDATE orderly.cancellation_policies SET note = 'Free until production starts or the order is released to the warehouse'
WHERE status = 'approved' AND note = 'Free until production starts or the warehouse picks';
UPDATE orderly.cancellation_policies SET note = 'Released to the warehouse: restocking'
WHERE status = 'ready' AND note = 'Picked and waiting: restocking';
UPDATE orderly.cancellation_policies SET note = 'Released to the warehouse: restocking, at least 10 EUR'
WHERE status = 'ready' AND note = 'Picked and waiting: restocking, at least 10 EUR';
