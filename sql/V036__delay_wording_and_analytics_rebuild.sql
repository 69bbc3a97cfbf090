-- Orderly: a delay e-mail that reads right without a requested date and in the customer's
-- language; the analytics rollups are rebuilt.
--
-- The shipped order.delay templates said "may arrive later than {{requested_date}}", which read
-- "later than ." for an order without one (a production issue or a carrier's exception warns
-- those too), and their {{reason}} was English in a German e-mail. The shipped wording no longer
-- names the date (templates an admin changed are left as they are; {{requested_date}} is still
-- there for them, empty when the order has none), and the reasons have texts per language.
CREATE TABLE orderly.risk_reason_texts (
    reason        text NOT NULL REFERENCES orderly.risk_reasons (code) ON UPDATE CASCADE ON DELETE CASCADE,
    language      text NOT NULL CONSTRAINT risk_reason_texts_language_format CHECK (language ~ '^[a-z]{2}$'),
    customer_text text NOT NULL CONSTRAINT risk_reason_texts_text_check
                  CHECK (length(btrim(customer_text)) BETWEEN 1 AND 500 AND customer_text !~ '[[:cntrl:]]'),
    CONSTRAINT risk_reason_texts_pkey PRIMARY KEY (reason, language)
);

COMMENT ON TABLE orderly.risk_reason_texts IS
    'What the customer is told of a delay reason in a language other than English (risk_reasons.customer_text)';

INSERT INTO orderly.risk_reason_texts (reason, language, customer_text) VALUES
    ('late_stage',       'de', 'Ihre Bestellung dauert länger als geplant.'),
    ('stock_short',      'de', 'Ein Artikel Ihrer Bestellung wartet auf Lagerbestand.'),
    ('production_issue', 'de', 'Die Fertigung Ihrer Bestellung dauert länger als geplant.'),
    ('transport',        'de', 'Die Zustellung Ihrer Bestellung verzögert sich beim Transport.');

UPDATE orderly.message_templates
SET body = E'Hello {{customer}},\n\nwe are sorry: your order {{order}} may arrive later than planned.\n{{reason}}\nWe will keep you informed.\n'
WHERE kind = 'order.delay' AND language = 'en'
  AND body = E'Hello {{customer}},\n\nwe are sorry: your order {{order}} may arrive later than {{requested_date}}.\n{{reason}}\nWe will keep you informed.\n';

UPDATE orderly.message_templates
SET body = E'Guten Tag {{customer}},\n\nleider kann sich Ihre Bestellung {{order}} verzögern.\n{{reason}}\nWir halten Sie auf dem Laufenden.\n'
WHERE kind = 'order.delay' AND language = 'de'
  AND body = E'Guten Tag {{customer}},\n\nleider kann sich Ihre Bestellung {{order}} über den {{requested_date}} hinaus verzögern.\n{{reason}}\nWir halten Sie auf dem Laufenden.\n';

-- The next refresh rebuilds every rollup from the orders (the backfill of a first start): a
-- partly cancelled line now counts, to the cent, what the order still counts of it, and the
-- payment stage ends when the order was paid in full for good (refunds count).
UPDATE orderly.analytics_state
SET refreshed_to = NULL, backfill_started_at = NULL, backfill_next = NULL, backfill_customer_next = NULL;
