-- Orderly: a ready order that can no longer be released goes back to approved.
--
-- `ready` means released to the warehouse: every make-to-order line made and, on prepaid terms,
-- paid. Both can stop being true after the release: staff add a make-to-order line (ORDER AMEND
-- add_line is allowed at ready), an amendment raises the total of a paid prepaid order, finance
-- refunds part of a prepaid payment. The order stayed `ready` ("Ready to ship") although the
-- warehouse could not ship it, and production could not start the new line (it works on approved,
-- in_production and partially_shipped orders): the order was stuck. orderly.advance now moves it
-- back along this row, automatically, saying why in the status history; paid or made, it is
-- released again. The permission is what a person would need (the hold's): no command makes it.
-- Orders already in that state move at their next advance (a payment, a hold released).

INSERT INTO orderly.order_status_transitions (from_status, to_status, permission) VALUES ('ready', 'approved', 'order.hold');
