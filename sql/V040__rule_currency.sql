-- Orderly: a fixed discount is an amount, so it has a currency (a "5 off" rule took 5 yen, 5 euros
-- and 5 dinars off alike); any rule may name one, to apply to products priced in it only.
-- Existing fixed rules take their product's currency, or EUR (the currency of every amount
-- given without one: products, credit limits).
ALTER TABLE orderly.pricing_rules
    ADD COLUMN currency char(3) CONSTRAINT pricing_rules_currency_fkey REFERENCES orderly.currencies (code) ON UPDATE CASCADE;

UPDATE orderly.pricing_rules r
SET currency = coalesce((SELECT p.currency FROM orderly.products p WHERE p.id = r.product_id), 'EUR')
WHERE r.kind = 'fixed';

ALTER TABLE orderly.pricing_rules
    ADD CONSTRAINT pricing_rules_fixed_currency_check CHECK (kind <> 'fixed' OR currency IS NOT NULL);

COMMENT ON COLUMN orderly.pricing_rules.currency IS 'The rule applies to products priced in this currency only (NULL: any); a fixed rule''s value is in it';
