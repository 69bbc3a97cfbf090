-- Orderly: an order keeps the payment terms it was approved under.
--
-- Terms decide whether an order waits for payment before the warehouse sees it (prepaid) and
-- whether the credit check holds it (net_N). They were read from the customer each time, so a
-- change of the customer's terms moved orders already released: switching to prepaid took a
-- ready order off the pick list, switching back left an order that had waited for payment stuck
-- at approved (nothing re-ran its advance). Now the customer's terms are copied onto the order
-- when it is approved (orderly.change_status) and only new approvals follow a change; finance
-- stops an order already released with a hold. Orders approved before this column take their
-- customer's terms now, which is what they were judged by until today.

ALTER TABLE orderly.orders ADD COLUMN payment_terms text
    CONSTRAINT orders_payment_terms_format CHECK (payment_terms ~ '^(prepaid|net_[1-9][0-9]{0,2})$');
UPDATE orderly.orders o SET payment_terms = c.payment_terms
FROM orderly.customers c
WHERE c.id = o.customer_id
  AND EXISTS (SELECT 1 FROM orderly.order_status_history h WHERE h.order_id = o.id AND h.to_status = 'approved');
COMMENT ON COLUMN orderly.orders.payment_terms IS 'The customer''s payment terms when the order was approved (NULL: not approved yet; the customer''s own apply)';
