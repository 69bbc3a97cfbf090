-- Orderly: the currencies money may be in (ISO 4217), so that a product, a credit limit or a
-- cancellation policy in "XYZ" or "EUE" is refused instead of starting a currency of its own
-- (money is never summed across currencies: a typo made a currency nobody could pay in).
--
-- Amounts are kept to the cent in every currency (README: rounding); the list is which codes are
-- currencies, not how many decimals each has.
CREATE TABLE orderly.currencies (
    code char(3) PRIMARY KEY CONSTRAINT currencies_code_format CHECK (code ~ '^[A-Z]{3}$'),
    name text NOT NULL CONSTRAINT currencies_name_check CHECK (length(btrim(name)) BETWEEN 1 AND 100 AND name !~ '[[:cntrl:]]')
);

COMMENT ON TABLE orderly.currencies IS 'The currencies prices, credit limits and fees may be in (ISO 4217 codes)';

INSERT INTO orderly.currencies (code, name) VALUES
    ('AED', 'UAE dirham'), ('AFN', 'Afghani'), ('ALL', 'Lek'), ('AMD', 'Armenian dram'), ('ANG', 'Netherlands Antillean guilder'),
    ('AOA', 'Kwanza'), ('ARS', 'Argentine peso'), ('AUD', 'Australian dollar'), ('AWG', 'Aruban florin'), ('AZN', 'Azerbaijan manat'),
    ('BAM', 'Convertible mark'), ('BBD', 'Barbados dollar'), ('BDT', 'Taka'), ('BGN', 'Bulgarian lev'), ('BHD', 'Bahraini dinar'),
    ('BIF', 'Burundi franc'), ('BMD', 'Bermudian dollar'), ('BND', 'Brunei dollar'), ('BOB', 'Boliviano'), ('BRL', 'Brazilian real'),
    ('BSD', 'Bahamian dollar'), ('BTN', 'Ngultrum'), ('BWP', 'Pula'), ('BYN', 'Belarusian ruble'), ('BZD', 'Belize dollar'),
    ('CAD', 'Canadian dollar'), ('CDF', 'Congolese franc'), ('CHF', 'Swiss franc'), ('CLP', 'Chilean peso'), ('CNY', 'Yuan renminbi'),
    ('COP', 'Colombian peso'), ('CRC', 'Costa Rican colon'), ('CUP', 'Cuban peso'), ('CVE', 'Cabo Verde escudo'), ('CZK', 'Czech koruna'),
    ('DJF', 'Djibouti franc'), ('DKK', 'Danish krone'), ('DOP', 'Dominican peso'), ('DZD', 'Algerian dinar'), ('EGP', 'Egyptian pound'),
    ('ERN', 'Nakfa'), ('ETB', 'Ethiopian birr'), ('EUR', 'Euro'), ('FJD', 'Fiji dollar'), ('FKP', 'Falkland Islands pound'),
    ('GBP', 'Pound sterling'), ('GEL', 'Lari'), ('GHS', 'Ghana cedi'), ('GIP', 'Gibraltar pound'), ('GMD', 'Dalasi'),
    ('GNF', 'Guinean franc'), ('GTQ', 'Quetzal'), ('GYD', 'Guyana dollar'), ('HKD', 'Hong Kong dollar'), ('HNL', 'Lempira'),
    ('HTG', 'Gourde'), ('HUF', 'Forint'), ('IDR', 'Rupiah'), ('ILS', 'New Israeli sheqel'), ('INR', 'Indian rupee'),
    ('IQD', 'Iraqi dinar'), ('IRR', 'Iranian rial'), ('ISK', 'Iceland krona'), ('JMD', 'Jamaican dollar'), ('JOD', 'Jordanian dinar'),
    ('JPY', 'Yen'), ('KES', 'Kenyan shilling'), ('KGS', 'Som'), ('KHR', 'Riel'), ('KMF', 'Comorian franc'),
    ('KPW', 'North Korean won'), ('KRW', 'Won'), ('KWD', 'Kuwaiti dinar'), ('KYD', 'Cayman Islands dollar'), ('KZT', 'Tenge'),
    ('LAK', 'Lao kip'), ('LBP', 'Lebanese pound'), ('LKR', 'Sri Lanka rupee'), ('LRD', 'Liberian dollar'), ('LSL', 'Loti'),
    ('LYD', 'Libyan dinar'), ('MAD', 'Moroccan dirham'), ('MDL', 'Moldovan leu'), ('MGA', 'Malagasy ariary'), ('MKD', 'Denar'),
    ('MMK', 'Kyat'), ('MNT', 'Tugrik'), ('MOP', 'Pataca'), ('MRU', 'Ouguiya'), ('MUR', 'Mauritius rupee'),
    ('MVR', 'Rufiyaa'), ('MWK', 'Malawi kwacha'), ('MXN', 'Mexican peso'), ('MYR', 'Malaysian ringgit'), ('MZN', 'Mozambique metical'),
    ('NAD', 'Namibia dollar'), ('NGN', 'Naira'), ('NIO', 'Cordoba oro'), ('NOK', 'Norwegian krone'), ('NPR', 'Nepalese rupee'),
    ('NZD', 'New Zealand dollar'), ('OMR', 'Rial Omani'), ('PAB', 'Balboa'), ('PEN', 'Sol'), ('PGK', 'Kina'),
    ('PHP', 'Philippine peso'), ('PKR', 'Pakistan rupee'), ('PLN', 'Zloty'), ('PYG', 'Guarani'), ('QAR', 'Qatari rial'),
    ('RON', 'Romanian leu'), ('RSD', 'Serbian dinar'), ('RUB', 'Russian ruble'), ('RWF', 'Rwanda franc'), ('SAR', 'Saudi riyal'),
    ('SBD', 'Solomon Islands dollar'), ('SCR', 'Seychelles rupee'), ('SDG', 'Sudanese pound'), ('SEK', 'Swedish krona'), ('SGD', 'Singapore dollar'),
    ('SHP', 'Saint Helena pound'), ('SLE', 'Leone'), ('SOS', 'Somali shilling'), ('SRD', 'Surinam dollar'), ('SSP', 'South Sudanese pound'),
    ('STN', 'Dobra'), ('SVC', 'El Salvador colon'), ('SYP', 'Syrian pound'), ('SZL', 'Lilangeni'), ('THB', 'Baht'),
    ('TJS', 'Somoni'), ('TMT', 'Turkmenistan new manat'), ('TND', 'Tunisian dinar'), ('TOP', 'Pa''anga'), ('TRY', 'Turkish lira'),
    ('TTD', 'Trinidad and Tobago dollar'), ('TWD', 'New Taiwan dollar'), ('TZS', 'Tanzanian shilling'), ('UAH', 'Hryvnia'), ('UGX', 'Uganda shilling'),
    ('USD', 'US dollar'), ('UYU', 'Peso uruguayo'), ('UZS', 'Uzbekistan sum'), ('VES', 'Bolivar soberano'), ('VND', 'Dong'),
    ('VUV', 'Vatu'), ('WST', 'Tala'), ('XAF', 'CFA franc BEAC'), ('XCD', 'East Caribbean dollar'), ('XOF', 'CFA franc BCEAO'),
    ('XPF', 'CFP franc'), ('YER', 'Yemeni rial'), ('ZAR', 'Rand'), ('ZMW', 'Zambian kwacha'), ('ZWG', 'Zimbabwe gold');

-- A code already in use stays usable (data from before this list is not refused after the upgrade).
INSERT INTO orderly.currencies (code, name)
SELECT DISTINCT x.code, x.code || ' (in use before the currency list)'
FROM (SELECT currency AS code FROM orderly.products
      UNION SELECT credit_currency FROM orderly.customers
      UNION SELECT currency FROM orderly.cancellation_policies WHERE currency IS NOT NULL) x
ON CONFLICT DO NOTHING;

ALTER TABLE orderly.products
    ADD CONSTRAINT products_currency_fkey FOREIGN KEY (currency) REFERENCES orderly.currencies (code) ON UPDATE CASCADE;
ALTER TABLE orderly.customers
    ADD CONSTRAINT customers_credit_currency_fkey FOREIGN KEY (credit_currency) REFERENCES orderly.currencies (code) ON UPDATE CASCADE;
ALTER TABLE orderly.cancellation_policies
    ADD CONSTRAINT cancellation_policies_currency_fkey FOREIGN KEY (currency) REFERENCES orderly.currencies (code) ON UPDATE CASCADE;
