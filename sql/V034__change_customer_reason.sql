-- Orderly: what a customer is told of why a change ended, apart from the reason staff gave.
--
-- A change declined at approval kept the approver's reason in decision_reason, and the customer's
-- logins saw it (change.declined, the change's document): an approver's reason is internal, as
-- it is for an order's rejection. Each way of ending a change now says what the customer reads:
-- "not approved", "declined by production", "withdrawn by staff", "order cancelled", the
-- customer's own words when its login withdrew it, Orderly's own when the order moved on.
-- Rows ended before this column: their own reason when the customer or Orderly ended them, else
-- the same words by how they ended (which staff member's action it was is not recorded apart).
ALTER TABLE orderly.order_changes ADD COLUMN customer_reason text
    CONSTRAINT order_changes_customer_reason_check
    CHECK (length(btrim(customer_reason)) BETWEEN 1 AND 500 AND customer_reason !~ '[[:cntrl:]]');

UPDATE orderly.order_changes c
SET customer_reason = CASE
        WHEN c.decided_by IS NULL
          OR EXISTS (SELECT 1 FROM orderly.users u WHERE u.id = c.decided_by AND u.customer_id = c.customer_id) THEN c.decision_reason
        WHEN c.decision_reason = 'order cancelled' THEN 'order cancelled'
        WHEN c.status = 'declined' THEN 'declined by staff'
        ELSE 'withdrawn by staff' END
WHERE c.status IN ('declined', 'abandoned');

ALTER TABLE orderly.order_changes ADD CONSTRAINT order_changes_customer_reason_ended_check
    CHECK ((status IN ('declined', 'abandoned')) = (customer_reason IS NOT NULL));

COMMENT ON COLUMN orderly.order_changes.customer_reason IS
    'Why the change ended, as its customer is told (decision_reason is staff''s: an approver''s reason is internal)';
