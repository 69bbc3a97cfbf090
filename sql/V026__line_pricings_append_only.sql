-- Orderly: a stored line pricing is never changed or removed, whoever asks (issue 16).
--
-- Order lines point at orderly.line_pricings by key and without a foreign key (V025 says why),
-- so nothing but this guard stops a row that lines still use from being edited or deleted: an
-- edited body would change the explanation of every order priced that way, a deleted one would
-- drop a bundle's components from stock needs, shipping and cancellation. The owner (and so
-- every SECURITY DEFINER function) holds all privileges on the table, hence a trigger, as for
-- the audit log and the order records.

CREATE TRIGGER line_pricings_append_only BEFORE UPDATE OR DELETE ON orderly.line_pricings
    FOR EACH ROW EXECUTE FUNCTION orderly.order_record_is_append_only();
CREATE TRIGGER line_pricings_no_truncate BEFORE TRUNCATE ON orderly.line_pricings
    FOR EACH STATEMENT EXECUTE FUNCTION orderly.order_record_is_append_only();
