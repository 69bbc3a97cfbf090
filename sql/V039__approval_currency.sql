-- Orderly: approval rules and limits are amounts in one currency, the approval currency, and an
-- order in another currency is compared by its value in it at the exchange rate an admin set.
-- Before, a limit of 10 000 held for 10 000 yen and 10 000 euros alike: a yen order needed the
-- large orders' chain for the price of a dinner, a pound order above 50 000 € slipped under it.
-- An order whose currency has no rate is treated as above every bound (R__161: rule_for_order),
-- so that a forgotten rate asks more approval, never less.
ALTER TABLE orderly.approval_settings
    ADD COLUMN currency char(3) NOT NULL DEFAULT 'EUR'
        CONSTRAINT approval_settings_currency_fkey REFERENCES orderly.currencies (code) ON UPDATE CASCADE;

COMMENT ON COLUMN orderly.approval_settings.currency IS
    'The currency approval rules'' bounds and approval limits are in; orders in others are converted at orderly.exchange_rates';

-- rate: what one unit of currency is worth in base (USD → EUR 0.92). Kept per base, so that a
-- change of the approval currency leaves no rate meaning something else.
CREATE TABLE orderly.exchange_rates (
    currency   char(3) NOT NULL REFERENCES orderly.currencies (code) ON UPDATE CASCADE,
    base       char(3) NOT NULL REFERENCES orderly.currencies (code) ON UPDATE CASCADE,
    rate       numeric NOT NULL CONSTRAINT exchange_rates_rate_check CHECK (rate > 0 AND rate < 1e9 AND scale(rate) <= 10),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT exchange_rates_pkey PRIMARY KEY (currency, base),
    CONSTRAINT exchange_rates_base_check CHECK (currency <> base)
);

COMMENT ON TABLE orderly.exchange_rates IS
    'What one unit of a currency is worth in another (the approval currency), for approval rules and limits only';
