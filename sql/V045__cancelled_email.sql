-- Orderly: the e-mail of a cancelled order says so. It was the status e-mail of every milestone,
-- "your order is now: Cancelled … Thank you for your order.", without the fee the customer then
-- owes. A template of its own (kind order.cancelled, with {{fee}}: the fee line when one is due),
-- in English and German as the status one ships, and the fee line's wording per language
-- (orderly.customer_wording key cancellation_fee). Admins change them like the others.
ALTER TABLE orderly.customer_wording DROP CONSTRAINT customer_wording_key_format;
ALTER TABLE orderly.customer_wording ADD CONSTRAINT customer_wording_key_format
    CHECK (key ~ '^(status\.[a-z_]+|tracking_link|cancellation_fee)$');

INSERT INTO orderly.customer_wording (key, language, text) VALUES ('cancellation_fee', 'de', 'Stornogebühr:')
ON CONFLICT ON CONSTRAINT customer_wording_pkey DO NOTHING;

INSERT INTO orderly.message_templates (kind, language, subject, body) VALUES
    ('order.cancelled', 'en', 'Order {{order}} cancelled',
     E'Hello {{customer}},\n\nyour order {{order}} was cancelled ({{at}}).\n{{fee}}\nPlease contact us if you have any questions.\n'),
    ('order.cancelled', 'de', 'Bestellung {{order}} storniert',
     E'Guten Tag {{customer}},\n\nIhre Bestellung {{order}} wurde storniert ({{at}}).\n{{fee}}\nBei Fragen wenden Sie sich bitte an uns.\n')
ON CONFLICT ON CONSTRAINT message_templates_pkey DO NOTHING;
