-- Pricing engine: orderly.price_order (base, options, segment prices, graduated tiers, rules,
-- stacking vs exclusive, buy X get Y, coupons, formulas, tax, overrides, rounding), coupon
-- redeem/release, pricing-management api functions and their permission checks.
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT plan(209);

DO $$
BEGIN
    PERFORM admin.create_user('pm', 'pm-secret-1', ARRAY['admin']);          -- catalog.manage, pricing.manage
    PERFORM admin.create_user('rep', 'rep-secret-1', ARRAY['sales_rep']);    -- catalog.read only
    PERFORM admin.create_user('nobody', 'nobody-secret-1', '{}');
END
$$;

CREATE TEMP TABLE ids (name text PRIMARY KEY, id bigint);
-- Calls an api function as "pm" and returns its one row.
CREATE FUNCTION pg_temp.pm(fn text, args jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE r json;
BEGIN
    EXECUTE format('SELECT * FROM api.%I($1, $2)', fn) INTO r USING test.uid('pm'), args;
    RETURN r::jsonb;
END $$;
-- price_order with the usual defaults; line1 is its first line.
CREATE FUNCTION pg_temp.price(lines jsonb, customer text DEFAULT NULL, coupon text DEFAULT NULL,
                              ship_to bigint DEFAULT NULL, at timestamptz DEFAULT NULL, can_override boolean DEFAULT false)
RETURNS jsonb LANGUAGE sql AS $$
    SELECT orderly.price_order(test.id(customer), lines, coupon, ship_to, at, can_override)
$$;
CREATE FUNCTION pg_temp.line1(line jsonb, customer text DEFAULT NULL, coupon text DEFAULT NULL) RETURNS jsonb LANGUAGE sql AS $$
    SELECT pg_temp.price(jsonb_build_array(line), customer, coupon) -> 'lines' -> 0
$$;
CREATE FUNCTION pg_temp.net(line jsonb, customer text DEFAULT NULL, coupon text DEFAULT NULL) RETURNS numeric LANGUAGE sql AS $$
    SELECT (pg_temp.line1(line, customer, coupon) ->> 'net')::numeric
$$;
CREATE FUNCTION pg_temp.steps(line jsonb, kind text, customer text DEFAULT NULL) RETURNS jsonb LANGUAGE sql AS $$
    SELECT coalesce(jsonb_agg(s), '[]') FROM jsonb_array_elements(pg_temp.line1(line, customer) -> 'explanation') s
    WHERE s ->> 'step' = kind
$$;

-- Fixtures -------------------------------------------------------------------------------------------

SELECT pg_temp.pm('category_create', '{"code": "ELEC", "name": "Electronics"}');
SELECT pg_temp.pm('category_create', '{"code": "PHONES", "name": "Phones", "parent": "ELEC"}');
SELECT pg_temp.pm('category_create', '{"code": "MISC", "name": "Misc"}');
SELECT pg_temp.pm('product_create', '{"code": "PHN-A", "name": "Phone A", "kind": "goods", "category": "PHONES", "base_price": 100}');
SELECT pg_temp.pm('option_add', '{"product": "PHN-A", "group": "storage", "variant": true,
    "values": [{"value": "64", "price_delta": 0}, {"value": "256", "price_delta": 50}]}');
SELECT pg_temp.pm('option_add', '{"product": "PHN-A", "group": "acc", "multiple": true,
    "values": [{"value": "case", "price_delta": 10}, {"value": "charger", "price_delta": 5}, {"value": "old", "price_delta": 1}]}');
UPDATE orderly.option_values SET active = false WHERE code = 'old';
SELECT pg_temp.pm('sku_create', '{"product": "PHN-A", "code": "PHN-A-64", "options": {"storage": "64"}, "stock": 10}');
SELECT pg_temp.pm('sku_create', '{"product": "PHN-A", "code": "PHN-A-256", "options": {"storage": "256"}, "stock": 10}');
SELECT pg_temp.pm('product_create', '{"code": "GADGET", "name": "Gadget", "kind": "goods", "category": "PHONES", "base_price": 200}');
SELECT pg_temp.pm('product_create', '{"code": "WIDGET", "name": "Widget", "kind": "goods", "category": "MISC", "base_price": 10}');
SELECT pg_temp.pm('product_create', '{"code": "CABLE", "name": "Cable", "kind": "goods", "category": "MISC", "base_price": 5}');
SELECT pg_temp.pm('product_create', '{"code": "HALF", "name": "Half", "kind": "goods", "category": "MISC", "base_price": 0.10}');
SELECT pg_temp.pm('product_create', '{"code": "FIFTY", "name": "Fifty cents", "kind": "goods", "category": "MISC", "base_price": 0.50}');
SELECT pg_temp.pm('product_create', '{"code": "DOLLAR", "name": "US only", "kind": "goods", "category": "MISC", "base_price": 1, "currency": "USD"}');
SELECT pg_temp.pm('product_create', '{"code": "OLD", "name": "Old", "kind": "goods", "category": "MISC", "base_price": 1}');
SELECT pg_temp.pm('product_update', '{"code": "OLD", "active": false}');
SELECT pg_temp.pm('product_create', '{"code": "SVC", "name": "Setup", "kind": "service", "category": "MISC", "base_price": 25}');
SELECT pg_temp.pm('product_create', '{"code": "CASE-C", "name": "Custom case", "kind": "custom", "category": "MISC",
    "formula": "120 + width_cm * height_cm * 0.015",
    "params": {"width_cm": {"min": 5, "max": 60}, "height_cm": {"min": 5, "max": 60}}}');
SELECT pg_temp.pm('product_create', '{"code": "DIV", "name": "Divider", "kind": "custom", "category": "MISC",
    "formula": "100 / (w - 10)", "params": {"w": {"min": 0, "max": 20}}}');
SELECT pg_temp.pm('bundle_create', '{"code": "BND", "name": "Bundle", "base_price": 150,
    "items": [{"sku": "PHN-A-64", "qty": 1}, {"sku": "WIDGET", "qty": 2}]}');

INSERT INTO orderly.customers (name, email, phone, segment) VALUES
    ('Std GmbH', 'std@example.com', '+4930123456', 'standard'), ('Dealer Inc', 'dealer@example.com', '+14085550100', 'dealer'),
    ('Third SA', 'third@example.com', '+33112345678', 'standard'), ('Homeless Ltd', 'homeless@example.com', '+442012345678', 'standard'),
    ('Japan KK', 'japan@example.com', '+81312345678', 'standard');
INSERT INTO ids SELECT 'std', id FROM orderly.customers WHERE name = 'Std GmbH';
INSERT INTO ids SELECT 'dealer', id FROM orderly.customers WHERE name = 'Dealer Inc';
INSERT INTO ids SELECT 'third', id FROM orderly.customers WHERE name = 'Third SA';
INSERT INTO ids SELECT 'homeless', id FROM orderly.customers WHERE name = 'Homeless Ltd';
INSERT INTO ids SELECT 'japan', id FROM orderly.customers WHERE name = 'Japan KK';
INSERT INTO orderly.addresses (customer_id, recipient, phone, line1, country, region, city, postal_code, is_default, removed_at)
SELECT test.id(c), 'Receiving', '+4930123456', 'Main street 1', country, region, city, postal_code, is_default, removed_at
FROM (VALUES ('std', 'DE', 'Berlin', 'Berlin', '10115', true, NULL::timestamptz),
             ('std', 'FR', 'IDF', 'Paris', '75001', false, now()),
             ('dealer', 'US', 'CA', 'San Jose', '95113', true, NULL),
             ('dealer', 'US', 'NY', 'New York', '10001', false, NULL),
             ('third', 'FR', 'ARA', 'Lyon', '69001', true, NULL),
             ('japan', 'JP', 'Tokyo', 'Tokyo', '100-0001', true, NULL)) AS a(c, country, region, city, postal_code, is_default, removed_at);
INSERT INTO ids SELECT 'fr_removed', id FROM orderly.addresses WHERE city = 'Paris';
INSERT INTO ids SELECT 'ny', id FROM orderly.addresses WHERE city = 'New York';

SELECT pg_temp.pm('tax_set', '{"country": "DE", "rate": 19, "name": "DE VAT"}');
SELECT pg_temp.pm('tax_set', '{"country": "FR", "rate": 20, "name": "FR TVA"}');
SELECT pg_temp.pm('tax_set', '{"country": "US", "rate": 5, "name": "US sales tax"}');
SELECT pg_temp.pm('tax_set', '{"country": "us", "region": "CA", "rate": 7.25, "name": "CA sales tax"}');

-- Structure and grants --------------------------------------------------------------------------------

SELECT has_function('orderly', 'price_order', ARRAY['bigint', 'jsonb', 'text', 'bigint', 'timestamp with time zone', 'boolean'],
                    'orderly.price_order(customer_id, lines, coupon, ship_to, at, can_override) exists');
SELECT function_returns('orderly', 'price_order', ARRAY['bigint', 'jsonb', 'text', 'bigint', 'timestamp with time zone', 'boolean'],
                        'jsonb', 'price_order returns jsonb');
SELECT ok(NOT has_function_privilege('orderly_app', 'orderly.price_order(bigint, jsonb, text, bigint, timestamptz, boolean)', 'EXECUTE'),
          'orderly_app cannot call price_order directly');
SELECT ok(NOT EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                      WHERE n.nspname = 'orderly' AND p.proname ~ '^(formula|price|line|coupon)' AND p.prosrc ~* 'EXECUTE'),
          'no pricing or formula function uses EXECUTE');

-- Base price, options, SKUs, shape ---------------------------------------------------------------------

SELECT is(pg_temp.line1('{"product": "PHN-A", "qty": 2, "options": {"storage": "64"}}') - 'explanation',
          jsonb_build_object('line', 1, 'product', 'PHN-A', 'product_id', (SELECT id FROM orderly.products WHERE code = 'PHN-A'),
                             'name', 'Phone A', 'kind', 'goods', 'currency', 'EUR', 'sku', 'PHN-A-64',
                             'sku_id', (SELECT id FROM orderly.skus WHERE code = 'PHN-A-64'), 'qty', 2,
                             'options', '{"storage": "64"}'::jsonb, 'params', '{}'::jsonb, 'list_price', 100.00,
                             'gross', 200.00, 'discount', 0.00, 'net', 200.00, 'tax_rate', 0, 'tax', 0.00,
                             'override', false, 'components', NULL),
          'a goods line: the variant option picks the SKU; documented shape');
SELECT is((SELECT jsonb_object_keys_sorted FROM (SELECT array_agg(k ORDER BY k) AS jsonb_object_keys_sorted
           FROM jsonb_object_keys(pg_temp.price('[{"product": "SVC", "qty": 1}]')) k) x),
          ARRAY['coupon', 'currency', 'customer', 'discount_total', 'lines', 'priced_at', 'segment', 'ship_to', 'subtotal',
                'tax', 'tax_total', 'total'],
          'the order document has the documented keys');
SELECT is(pg_temp.line1('{"product": "PHN-A", "qty": 1, "options": {"storage": "256", "acc": ["case", "charger"]}}') -> 'list_price',
          '165.00'::jsonb, 'list price = base + variant delta + each accessory delta');
SELECT is(jsonb_array_length(pg_temp.steps('{"product": "PHN-A", "qty": 1, "options": {"storage": "256", "acc": ["case", "charger"]}}', 'option')),
          3, 'each option delta is one explanation step');
SELECT is(pg_temp.line1('{"sku": "phn-a-256", "qty": 1, "options": {"acc": "case"}}') -> 'options',
          '{"acc": ["case"], "storage": "256"}'::jsonb, 'a line by SKU code (any case) takes its variant options from the SKU');
SELECT is(pg_temp.line1('{"sku": "PHN-A-256", "qty": 1}') -> 'list_price', '150.00'::jsonb, 'SKU line list price');
SELECT throws_ok($$SELECT pg_temp.price('[{"sku": "PHN-A-256", "qty": 1, "options": {"storage": "64"}}]')$$, 'OL400',
                 'line 1: option storage does not match the SKU (it is 256)', 'an option contradicting the SKU');
SELECT is(pg_temp.line1('{"product": "SVC", "qty": 3}') -> 'sku_id', 'null'::jsonb, 'a service line has no SKU');
SELECT is(pg_temp.line1('{"product": "BND", "qty": 2}') -> 'components',
          jsonb_build_array(jsonb_build_object('sku', 'PHN-A-64', 'sku_id', (SELECT id FROM orderly.skus WHERE code = 'PHN-A-64'), 'qty', 1),
                            jsonb_build_object('sku', 'WIDGET', 'sku_id', (SELECT id FROM orderly.skus WHERE code = 'WIDGET'), 'qty', 2)),
          'a bundle line lists its component SKUs per bundle unit');
SELECT is(pg_temp.net('{"product": "BND", "qty": 2}'), 300.00, 'a bundle is priced at its own price');
UPDATE orderly.skus SET active = false WHERE code = 'WIDGET';
SELECT throws_ok($$SELECT pg_temp.price('[{"product": "BND", "qty": 1}]')$$, 'OL409', 'line 1: bundle BND: its part WIDGET is not available',
                 'a bundle whose part SKU is off sale is not sold either');
UPDATE orderly.skus SET active = true WHERE code = 'WIDGET';
UPDATE orderly.products SET active = false WHERE code = 'PHN-A';
SELECT throws_ok($$SELECT pg_temp.price('[{"product": "BND", "qty": 1}]')$$, 'OL409', 'line 1: bundle BND: its part PHN-A-64 is not available',
                 'nor one whose part''s product is');
UPDATE orderly.products SET active = true WHERE code = 'PHN-A';

-- Validation ---------------------------------------------------------------------------------------------

SELECT throws_ok($$SELECT pg_temp.price('{"product": "SVC"}')$$, 'OL400', 'lines must be a non-empty array', 'lines must be an array');
SELECT throws_ok($$SELECT pg_temp.price('[]')$$, 'OL400', 'lines must be a non-empty array', 'no lines');
SELECT throws_ok($$SELECT pg_temp.price('[{"product": "SVC", "qty": 1}, {"product": "SVC", "qty": 0}]')$$, 'OL400',
                 'line 2: qty must be between 1 and 100000', 'qty 0, prefixed with its line number');
SELECT throws_ok($$SELECT pg_temp.price('[{"product": "SVC", "qty": 100001}]')$$, 'OL400',
                 'line 1: qty must be between 1 and 100000', 'qty too large');
SELECT throws_ok($$SELECT pg_temp.price('[{"product": "SVC", "qty": "lots"}]')$$, 'OL400', 'line 1: qty must be an integer', 'qty not a number');
SELECT throws_ok($$SELECT pg_temp.price('[{"product": "SVC", "qty": 1.5}]')$$, 'OL400', 'line 1: qty must be an integer', 'fractional qty');
SELECT throws_ok($$SELECT pg_temp.price('[{"product": "SVC"}]')$$, 'OL400', 'line 1: qty is required', 'missing qty');
SELECT throws_ok($$SELECT pg_temp.price('[{"line": 7, "product": "NOPE", "qty": 1}]')$$, 'OL404', 'line 7: unknown product "NOPE"',
                 'unknown product; the client''s own line number is used');
SELECT throws_ok($$SELECT pg_temp.price('[{"line": 3, "product": "SVC", "qty": 1}, {"line": 3, "product": "SVC", "qty": 1}]')$$, 'OL400',
                 'line 3: line number used twice', 'duplicate line numbers');
SELECT throws_ok($$SELECT pg_temp.price('[{"sku": "NOPE-1", "qty": 1}]')$$, 'OL404', 'line 1: unknown SKU "NOPE-1"', 'unknown SKU');
SELECT throws_ok($$SELECT pg_temp.price('[{"qty": 1}]')$$, 'OL400', 'line 1: sku or product is required', 'neither sku nor product');
SELECT throws_ok($$SELECT pg_temp.price('[{"product": "SVC", "qty": 1, "qtty": 2}]')$$, 'OL400',
                 'line 1: unknown key "qtty" (use sku, product, qty, options, params, unit_price, reason)', 'unknown line key');
SELECT throws_ok($$SELECT pg_temp.price('[{"product": "OLD", "qty": 1}]')$$, 'OL409', 'line 1: product OLD is not available',
                 'an inactive product is OL409');
SELECT throws_ok($$SELECT pg_temp.price('[{"product": "PHN-A", "qty": 1}]')$$, 'OL400', 'line 1: option storage is required',
                 'goods with variants need the variant options');
SELECT throws_ok($$SELECT pg_temp.price('[{"product": "PHN-A", "qty": 1, "options": {"storage": "64", "colour": "red"}}]')$$, 'OL400',
                 'line 1: unknown option "colour" for PHN-A', 'unknown option group');
SELECT throws_ok($$SELECT pg_temp.price('[{"product": "PHN-A", "qty": 1, "options": {"storage": "512"}}]')$$, 'OL400',
                 'line 1: unknown value "512" for option storage (values: 64, 256)', 'unknown option value, with the values there are');
SELECT throws_ok($$SELECT pg_temp.price('[{"product": "PHN-A", "qty": 1, "options": {"storage": "64", "acc": ["old"]}}]')$$, 'OL409',
                 'line 1: value "old" of option acc is not available', 'an inactive option value is refused');
SELECT throws_ok($$SELECT pg_temp.price('[{"product": "PHN-A", "qty": 1, "options": {"storage": "64", "acc": ["case", "case"]}}]')$$, 'OL400',
                 'line 1: option acc lists a value twice', 'a value listed twice');
SELECT throws_ok($$SELECT pg_temp.price('[{"product": "PHN-A", "qty": 1, "options": {"storage": ["64", "256"]}}]')$$, 'OL400',
                 'line 1: option storage takes one value', 'several values for a single-choice group');
SELECT is(pg_temp.price('[{"product": "PHN-A", "qty": 1, "options": {"storage": "64", "acc": []}}]') -> 'lines' -> 0 ->> 'net',
          pg_temp.price('[{"product": "PHN-A", "qty": 1, "options": {"storage": "64"}}]') -> 'lines' -> 0 ->> 'net',
          'an empty list of a multiple-choice group is none chosen (it was a database error)');
SELECT throws_ok($$SELECT pg_temp.price('[{"product": "SVC", "qty": 1}, {"product": "DOLLAR", "qty": 1}]')$$, 'OL400',
                 'line 2: priced in USD, but the order is in EUR', 'one currency per order');
SELECT throws_ok(format('SELECT orderly.price_order(%s, %L, NULL, NULL, NULL, false)', -1, '[{"product": "SVC", "qty": 1}]'), 'OL404',
                 'unknown customer -1', 'unknown customer');

-- Segment price lists ----------------------------------------------------------------------------------

SELECT pg_temp.pm('price_set', '{"product": "GADGET", "segment": "dealer", "price": 150}');
SELECT pg_temp.pm('price_set', '{"product": "PHN-A", "segment": "dealer", "sku": "PHN-A-256", "price": 130}');
SELECT is((SELECT action FROM orderly.audit_log ORDER BY id DESC LIMIT 1), 'price.set', 'price_set is audited');
SELECT is(pg_temp.line1('{"product": "GADGET", "qty": 1}', 'dealer') -> 'list_price', '150.00'::jsonb, 'the dealer segment price');
SELECT is(pg_temp.line1('{"product": "GADGET", "qty": 1}', 'std') -> 'list_price', '200.00'::jsonb, 'standard customers: base price');
SELECT is(pg_temp.line1('{"product": "GADGET", "qty": 1}') -> 'segment', NULL, 'the line has no segment key (the order has)');
SELECT is(pg_temp.price('[{"product": "GADGET", "qty": 1}]') ->> 'segment', 'standard', 'no customer: segment standard');
SELECT is(pg_temp.line1('{"sku": "PHN-A-256", "qty": 1, "options": {"acc": ["case"]}}', 'dealer') -> 'list_price', '140.00'::jsonb,
          'a SKU segment price replaces base + variant delta; accessories still add');
SELECT is(pg_temp.steps('{"sku": "PHN-A-256", "qty": 1}', 'base', 'dealer') -> 0 ->> 'source', 'segment_sku_price',
          'the explanation names the SKU price as source');
SELECT is(pg_temp.line1('{"sku": "PHN-A-64", "qty": 1}', 'dealer') -> 'list_price', '100.00'::jsonb,
          'another SKU of the product without a SKU price: base price');
SELECT pg_temp.pm('price_set', '{"product": "GADGET", "segment": "dealer", "remove": true}');
SELECT is(pg_temp.line1('{"product": "GADGET", "qty": 1}', 'dealer') -> 'list_price', '200.00'::jsonb, 'a removed segment price no longer applies');

-- Graduated tiers (per band) ---------------------------------------------------------------------------

SELECT pg_temp.pm('price_set', '{"product": "WIDGET", "min_qty": 10, "percent": 10}');
SELECT pg_temp.pm('price_set', '{"product": "WIDGET", "min_qty": 50, "percent": 20}');
SELECT is(pg_temp.net('{"product": "WIDGET", "qty": 9}'), 90.00, 'tiers: 9 units, all below the first band');
SELECT is(pg_temp.net('{"product": "WIDGET", "qty": 10}'), 99.00, 'tiers: the 10th unit is the first at -10 %');
SELECT is(pg_temp.net('{"product": "WIDGET", "qty": 49}'), 450.00, 'tiers: 49 = 9 at list + 40 at -10 %');
SELECT is(pg_temp.net('{"product": "WIDGET", "qty": 50}'), 458.00, 'tiers: 50 = 9 + 40 at -10 % + 1 at -20 %');
SELECT is(pg_temp.net('{"product": "WIDGET", "qty": 60}'), 538.00, 'tiers: 60 = 9 + 40 at -10 % + 11 at -20 %');
SELECT is(pg_temp.steps('{"product": "WIDGET", "qty": 60}', 'tier'),
          '[{"step": "tier", "segment": null, "from_qty": 10, "to_qty": 49, "units": 40, "percent": 10.00, "amount": -40.00,
             "text": "units 10-49: 10.00 % off (40 units)"},
            {"step": "tier", "segment": null, "from_qty": 50, "to_qty": null, "units": 11, "percent": 20.00, "amount": -22.00,
             "text": "units 50-: 20.00 % off (11 units)"}]'::jsonb,
          'each band is one explanation step');
SELECT pg_temp.pm('price_set', '{"product": "WIDGET", "segment": "dealer", "min_qty": 5, "percent": 50}');
SELECT is(pg_temp.net('{"product": "WIDGET", "qty": 10}', 'dealer'), 70.00, 'a segment with bands of its own uses only those');
SELECT is(pg_temp.net('{"product": "WIDGET", "qty": 10}', 'std'), 99.00, 'other segments keep the general bands');

-- Buy X get Y -----------------------------------------------------------------------------------------

INSERT INTO ids SELECT 'bogo', (pg_temp.pm('rule_create', '{"name": "Cables 3+1", "kind": "buy_x_get_y", "buy": 3, "get": 1, "product": "CABLE"}') ->> 'id')::bigint;
SELECT is(pg_temp.net('{"product": "CABLE", "qty": 3}'), 15.00, 'buy 3 get 1: 3 units, none free');
SELECT is(pg_temp.net('{"product": "CABLE", "qty": 4}'), 15.00, 'buy 3 get 1: 4 units pay 3');
SELECT is(pg_temp.net('{"product": "CABLE", "qty": 7}'), 30.00, 'buy 3 get 1: 7 units pay 6');
SELECT is(pg_temp.net('{"product": "CABLE", "qty": 8}'), 30.00, 'buy 3 get 1: 8 units pay 6');
SELECT is((pg_temp.steps('{"product": "CABLE", "qty": 8}', 'rule') -> 0) - 'text',
          jsonb_build_object('step', 'rule', 'rule_id', test.id('bogo'), 'name', 'Cables 3+1', 'kind', 'buy_x_get_y',
                             'exclusive', false, 'priority', 100, 'amount', -10.00, 'buy', 3, 'get', 1, 'free_units', 2),
          'the explanation names the rule, its id and the free units');
SELECT is(pg_temp.steps('{"product": "CABLE", "qty": 3}', 'rule'), '[]'::jsonb, 'no free unit: the rule does not show');

-- Percent and fixed rules, scope, stacking, exclusive, window ------------------------------------------------

INSERT INTO ids SELECT 'cat10', (pg_temp.pm('rule_create', '{"name": "Electronics -10%", "kind": "percent", "value": 10, "category": "ELEC", "priority": 10}') ->> 'id')::bigint;
SELECT is(pg_temp.net('{"product": "GADGET", "qty": 1}'), 180.00, 'a category rule covers products of its sub-categories');
SELECT is(pg_temp.net('{"product": "WIDGET", "qty": 1}'), 10.00, 'and not products of other categories');
INSERT INTO ids SELECT 'fix5', (pg_temp.pm('rule_create', '{"name": "Gadget 5 off", "kind": "fixed", "value": 5, "product": "GADGET", "priority": 20}') ->> 'id')::bigint;
SELECT is(pg_temp.net('{"product": "GADGET", "qty": 1}'), 175.00, 'stackable: percent then fixed on the running amount');
SELECT is(pg_temp.net('{"product": "GADGET", "qty": 2}'), 350.00, 'a fixed rule is per unit');
INSERT INTO ids SELECT 'dealer5', (pg_temp.pm('rule_create', '{"name": "Dealers -5%", "kind": "percent", "value": 5, "segment": "dealer", "priority": 30}') ->> 'id')::bigint;
SELECT is(pg_temp.net('{"product": "GADGET", "qty": 1}', 'dealer'), 166.25, 'a segment rule; percentages compound (175 - 5 % = 166.25)');
SELECT is(pg_temp.net('{"product": "GADGET", "qty": 1}', 'std'), 175.00, 'the segment rule leaves other segments alone');
SELECT is((SELECT jsonb_agg((s ->> 'rule_id')::bigint) FROM jsonb_array_elements(pg_temp.steps('{"product": "GADGET", "qty": 1}', 'rule', 'dealer')) s),
          jsonb_build_array(test.id('cat10'), test.id('fix5'), test.id('dealer5')), 'rules apply in priority order');

INSERT INTO ids SELECT 'excl', (pg_temp.pm('rule_create', '{"name": "Half price", "kind": "percent", "value": 50, "product": "GADGET", "priority": 5, "exclusive": true}') ->> 'id')::bigint;
SELECT is(pg_temp.net('{"product": "GADGET", "qty": 1}', 'dealer'), 100.00, 'an exclusive rule applicable first wins alone');
SELECT is(jsonb_array_length(pg_temp.steps('{"product": "GADGET", "qty": 1}', 'rule', 'dealer')), 1, 'and is the only rule step');
SELECT pg_temp.pm('rule_update', jsonb_build_object('id', test.id('excl'), 'priority', 25));
SELECT is((SELECT action FROM orderly.audit_log ORDER BY id DESC LIMIT 1), 'rule.update', 'rule_update is audited');
SELECT is(pg_temp.net('{"product": "GADGET", "qty": 1}', 'dealer'), 166.25, 'an exclusive rule after other discounts is skipped');
SELECT is(pg_temp.steps('{"product": "GADGET", "qty": 1}', 'rule_skipped', 'dealer') -> 0 ->> 'rule_id', test.id('excl')::text,
          'and the explanation says it was skipped');
SELECT pg_temp.pm('rule_update', jsonb_build_object('id', test.id('excl'), 'active', false));
SELECT is(pg_temp.net('{"product": "GADGET", "qty": 1}', 'dealer'), 166.25, 'a deactivated rule is gone');

-- A fixed amount is in a currency; any rule may be for one currency's products.
INSERT INTO ids SELECT 'two_off', (pg_temp.pm('rule_create', '{"name": "Two off", "kind": "fixed", "value": 2, "category": "MISC", "priority": 40}') ->> 'id')::bigint;
INSERT INTO ids SELECT 'usd10', (pg_temp.pm('rule_create', '{"name": "Dollar -10%", "kind": "percent", "value": 10, "currency": "usd", "priority": 41}') ->> 'id')::bigint;
SELECT is((SELECT currency FROM orderly.pricing_rules WHERE id = test.id('two_off')), 'EUR', 'a fixed rule without a product or currency is in euros');
SELECT is(pg_temp.net('{"product": "WIDGET", "qty": 1}'), 8.00, 'two euros off a product in euros');
SELECT is(pg_temp.net('{"product": "DOLLAR", "qty": 1}'), 0.90, 'but not two euros off a dollar product; the dollar rule applies to it');
SELECT is((pg_temp.pm('rule_create', '{"name": "Dollar off", "kind": "fixed", "value": 0.1, "product": "DOLLAR", "priority": 42}') ->> 'currency'),
          'USD', 'a fixed rule for one product is in its currency');
SELECT throws_ok($$ SELECT pg_temp.pm('rule_create', '{"name": "Euro off dollars", "kind": "fixed", "value": 1, "product": "DOLLAR", "currency": "EUR"}') $$,
                 'OL400', 'product DOLLAR is priced in USD: a rule for it is in USD (or names no currency)', 'a rule for a product in another currency');
SELECT pg_temp.pm('rule_update', jsonb_build_object('id', test.id('two_off'), 'active', false));
SELECT pg_temp.pm('rule_update', jsonb_build_object('id', test.id('usd10'), 'active', false));
UPDATE orderly.pricing_rules SET active = false WHERE name = 'Dollar off';

INSERT INTO ids SELECT 'later', (pg_temp.pm('rule_create', jsonb_build_object('name', 'Next week', 'kind', 'percent', 'value', 20,
    'product', 'GADGET', 'priority', 90, 'starts', to_char(now() + interval '2 days', 'YYYY-MM-DD'),
    'ends', to_char(now() + interval '9 days', 'YYYY-MM-DD'))) ->> 'id')::bigint;
SELECT is(pg_temp.net('{"product": "GADGET", "qty": 1}'), 175.00, 'a rule before its window does not apply');
SELECT is((pg_temp.price('[{"product": "GADGET", "qty": 1}]', at => now() + interval '4 days') -> 'lines' -> 0 ->> 'net')::numeric,
          140.00, 'inside its window (priced at a later "at") it does');
SELECT is((pg_temp.price('[{"product": "GADGET", "qty": 1}]', at => now() + interval '10 days') -> 'lines' -> 0 ->> 'net')::numeric,
          175.00, 'after its window it does not');
SELECT pg_temp.pm('rule_update', jsonb_build_object('id', test.id('cat10'), 'active', false));
SELECT is(pg_temp.net('{"product": "GADGET", "qty": 1}'), 195.00, 'RULE UPDATE active=false switches a rule off');

-- Rounding half-up ---------------------------------------------------------------------------------------

SELECT pg_temp.pm('rule_create', '{"name": "Half -5%", "kind": "percent", "value": 5, "product": "HALF"}');
SELECT is(pg_temp.steps('{"product": "HALF", "qty": 1}', 'rule') -> 0 -> 'amount', '-0.01'::jsonb, '5 % of 0.10 = 0.005 rounds up to 0.01');
SELECT is(pg_temp.net('{"product": "HALF", "qty": 1}'), 0.09, 'so the net is 0.09');
SELECT is(pg_temp.line1('{"product": "FIFTY", "qty": 1}', 'std') -> 'tax', '0.10'::jsonb, '19 % of 0.50 = 0.095 rounds up to 0.10 (per line)');
SELECT is(pg_temp.line1('{"product": "CASE-C", "qty": 1, "params": {"width_cm": 5, "height_cm": 7}}') -> 'list_price', '120.53'::jsonb,
          'formula 120.525 rounds half-up to 120.53');
SELECT is(orderly.money(2.345), 2.35, 'money(): 2.345 -> 2.35');
SELECT is(orderly.money(2.3449), 2.34, 'money(): 2.3449 -> 2.34');

-- Formula prices -----------------------------------------------------------------------------------------

SELECT is(pg_temp.line1('{"product": "CASE-C", "qty": 2, "params": {"width_cm": 10, "height_cm": 20}}') -> 'list_price', '123.00'::jsonb,
          'formula 120 + 10 * 20 * 0.015');
SELECT is(pg_temp.line1('{"product": "CASE-C", "qty": 1, "params": {"width_cm": "10", "height_cm": 20}}') -> 'params',
          '{"width_cm": 10, "height_cm": 20}'::jsonb, 'a decimal string parameter is accepted; the line shows the values used');
SELECT is(pg_temp.steps('{"product": "CASE-C", "qty": 1, "params": {"width_cm": 10, "height_cm": 20}}', 'base') -> 0 ->> 'source', 'formula',
          'the explanation names the formula as source');
SELECT throws_ok($$SELECT pg_temp.price('[{"product": "CASE-C", "qty": 1, "params": {"width_cm": 10}}]')$$, 'OL400',
                 'line 1: parameter height_cm is required', 'missing parameter');
SELECT throws_ok($$SELECT pg_temp.price('[{"product": "CASE-C", "qty": 1, "params": {"width_cm": 10, "height_cm": 10, "depth": 1}}]')$$, 'OL400',
                 'line 1: unknown parameter "depth"', 'extra parameter');
SELECT throws_ok(format('SELECT pg_temp.price(%L)', jsonb_build_array(jsonb_build_object('product', 'CASE-C', 'qty', 1,
                        'params', jsonb_build_object('width_cm', v, 'height_cm', 10)))), 'OL400',
                 'line 1: parameter width_cm must be a number', format('hostile parameter %s', v))
FROM unnest(ARRAY['"abc"', '"NaN"', '"Infinity"', '"-Infinity"', '"1e3"', 'true', '[1]', '{"x": 1}', '"10; DROP TABLE x"']::jsonb[]) v;
SELECT throws_ok($$SELECT pg_temp.price('[{"product": "CASE-C", "qty": 1, "params": {"width_cm": 1e20, "height_cm": 10}}]')$$, 'OL400',
                 'line 1: parameter width_cm must be between 5 and 60', 'huge parameter');
SELECT throws_ok($$SELECT pg_temp.price('[{"product": "CASE-C", "qty": 1, "params": {"width_cm": 4.99, "height_cm": 10}}]')$$, 'OL400',
                 'line 1: parameter width_cm must be between 5 and 60', 'parameter below its minimum');
SELECT throws_ok($$SELECT pg_temp.price('[{"product": "CASE-C", "qty": 1, "params": [10, 20]}]')$$, 'OL400',
                 'line 1: params must be an object of numbers', 'params not an object');
SELECT throws_ok($$SELECT pg_temp.price('[{"product": "SVC", "qty": 1, "params": {"x": 1}}]')$$, 'OL400',
                 'line 1: params are only for products priced by formula', 'params on a product without formula');
SELECT throws_ok($$SELECT pg_temp.price('[{"product": "DIV", "qty": 1, "params": {"w": 10}}]')$$, 'OL400',
                 'line 1: division by zero in the price formula', 'division by zero at evaluation');
SELECT is(pg_temp.line1('{"product": "DIV", "qty": 1, "params": {"w": 12}}') -> 'list_price', '50.00'::jsonb, 'the same formula elsewhere');
SELECT throws_ok($$SELECT pg_temp.price('[{"product": "DIV", "qty": 1, "params": {"w": 0}}]')$$, 'OL400',
                 'line 1: the price formula gives a negative price', 'a negative formula price');

-- Hostile formulas are refused when defined (and the evaluator refuses them anyway).
SELECT throws_ok(format('SELECT pg_temp.pm(%L, %L)', 'product_create',
                        jsonb_build_object('code', 'EVIL', 'name', 'Evil', 'kind', 'custom', 'formula', f, 'params', '{"w": {"min": 1, "max": 2}}'::jsonb)),
                 'OL400', m, format('formula %s refused', left(f, 40)))
FROM (VALUES ('1; DROP TABLE x', 'invalid formula: unexpected character ";"'),
             ('pg_sleep(1)', 'invalid formula: unknown function "pg_sleep"'),
             ('(SELECT 1)', 'invalid formula: unknown parameter "SELECT"'),
             (repeat('(', 30) || 'w' || repeat(')', 30), 'invalid formula: nested too deeply (at most 20 levels)'),
             (repeat('-', 30) || 'w', 'invalid formula: nested too deeply (at most 20 levels)'),
             ('1e999999', 'invalid formula: bad number "1e999999" (plain decimals, at most 12 digits before and 6 after the point)'),
             ('1234567890123 * w', 'invalid formula: bad number "1234567890123" (plain decimals, at most 12 digits before and 6 after the point)'),
             ('w * height', 'invalid formula: unknown parameter "height"'),
             ('w +', 'invalid formula: it ends too early'),
             ('(w + 1', 'invalid formula: missing ")"'),
             ('w w', 'invalid formula: unexpected "w"'),
             ('w'' || ''1', 'invalid formula: unexpected character "''"'),
             ('', 'formula is required with params'),
             (repeat('w+', 300) || 'w', 'invalid formula: at most 500 characters')) AS t(f, m);
SELECT throws_ok($$SELECT pg_temp.pm('product_create', '{"code": "EVIL", "name": "Evil", "kind": "custom", "formula": "w", "params": {"w": {"min": 1}}}')$$,
                 'OL400', 'parameter w needs numeric "min" and "max"', 'parameters must declare min and max');
SELECT throws_ok($$SELECT pg_temp.pm('product_update', '{"code": "CASE-C", "formula": "120 + width_cm * depth"}')$$,
                 'OL400', 'invalid formula: unknown parameter "depth"', 'an update is validated too');
SELECT is(orderly.formula_eval('max(1, 2, 3) + min(4, 5) + ceil(1.2) + floor(1.8) + round(2.5) - -1', '{}'), 14.000000000000,
          'functions and unary minus');
SELECT is(orderly.formula_eval('2 + 3 * 4 - 10 / 4', '{}'), 11.500000000000, 'precedence');
SELECT throws_ok($$SELECT orderly.formula_eval('999999999999 * 999999999999', '{}')$$, 'OL400',
                 'the price formula gives a number out of range', 'intermediate results are bounded');

-- Tax ----------------------------------------------------------------------------------------------------

SELECT is(pg_temp.line1('{"product": "SVC", "qty": 4}', 'std') -> 'tax', '19.00'::jsonb, 'default address in DE: 19 %');
SELECT is(pg_temp.price('[{"product": "SVC", "qty": 4}]', 'std') -> 'ship_to' ->> 'country', 'DE', 'the order shows where tax was taken from');
SELECT is(pg_temp.line1('{"product": "SVC", "qty": 4}', 'dealer') -> 'tax_rate', '7.25'::jsonb, 'a region rate wins over its country (US-CA)');
SELECT is(pg_temp.price('[{"product": "SVC", "qty": 4}]', 'dealer', ship_to => test.id('ny')) -> 'lines' -> 0 -> 'tax_rate', '5'::jsonb,
          'ship_to another address: the country rate when the region has none');
SELECT throws_ok(format('SELECT pg_temp.price(%L, %L, ship_to => %s)', '[{"product": "SVC", "qty": 1}]', 'std', test.id('fr_removed')),
                 'OL404', format('ship-to address %s was removed; give another (ship_to)', test.id('fr_removed')), 'a removed address cannot be shipped to');
SELECT throws_ok(format('SELECT pg_temp.price(%L, %L, ship_to => %s)', '[{"product": "SVC", "qty": 1}]', 'third', test.id('ny')),
                 'OL404', format('unknown ship-to address %s', test.id('ny')), 'another customer''s address is unknown');
SELECT is(pg_temp.steps('{"product": "SVC", "qty": 1}', 'tax', 'homeless') -> 0 ->> 'text', 'no ship-to address: no tax',
          'no address: tax 0 and the explanation says so');
SELECT is(pg_temp.steps('{"product": "SVC", "qty": 1}', 'tax', 'japan') -> 0 ->> 'text', 'no tax rate for JP/Tokyo: no tax',
          'no rate for the country: tax 0, said so');
SELECT is(pg_temp.line1('{"product": "SVC", "qty": 1}') -> 'tax', '0.00'::jsonb, 'no customer: no tax');

-- Totals -------------------------------------------------------------------------------------------------

SELECT is(pg_temp.price('[{"product": "WIDGET", "qty": 10}, {"product": "SVC", "qty": 2}]', 'std') - 'lines' - 'priced_at' - 'tax' - 'ship_to',
          jsonb_build_object('currency', 'EUR', 'customer', test.id('std'), 'segment', 'standard', 'coupon', NULL,
                             'subtotal', 150.00, 'discount_total', 1.00, 'tax_total', 28.31, 'total', 177.31),
          'totals: subtotal = gross, then discounts, tax per line (18.81 + 9.50)');

-- Manual price override --------------------------------------------------------------------------------

SELECT throws_ok($$SELECT pg_temp.price('[{"product": "GADGET", "qty": 2, "unit_price": 80, "reason": "deal"}]')$$, 'OL403',
                 'line 1: permission denied: price.override', 'a manual price needs can_override');
SELECT throws_ok($$SELECT pg_temp.price('[{"product": "GADGET", "qty": 2, "unit_price": 80, "reason": "  "}]', can_override => true)$$, 'OL400',
                 'line 1: a manual unit_price needs a reason', 'and a reason');
SELECT throws_ok($$SELECT pg_temp.price('[{"product": "GADGET", "qty": 2, "unit_price": "NaN", "reason": "x"}]', can_override => true)$$, 'OL400',
                 'line 1: unit_price must be a number', 'a NaN manual price');
SELECT is(pg_temp.price('[{"product": "GADGET", "qty": 2, "unit_price": 80.005, "reason": "trade fair deal"}]', can_override => true) -> 'lines' -> 0
          -> 'explanation' -> -2,
          '{"step": "override", "unit_price": 80.01, "reason": "trade fair deal", "amount": -239.98,
            "text": "manual price 80.01 per unit (tiers and discounts not applied): trade fair deal"}'::jsonb,
          'the override step gives the price and the reason');
SELECT is((SELECT jsonb_build_object('o', l -> 'override', 'n', l -> 'net', 'd', l -> 'discount')
           FROM (SELECT pg_temp.price('[{"product": "GADGET", "qty": 2, "unit_price": 80, "reason": "deal"}]', can_override => true) -> 'lines' -> 0 AS l) x),
          '{"o": true, "n": 160.00, "d": 240.00}'::jsonb, 'the line is flagged, net = manual price x qty, discount = gross - net');

-- Coupons ------------------------------------------------------------------------------------------------

INSERT INTO ids SELECT 'crule', (pg_temp.pm('rule_create', '{"name": "Coupon -10%", "kind": "percent", "value": 10, "product": "WIDGET"}') ->> 'id')::bigint;
SELECT pg_temp.pm('coupon_create', jsonb_build_object('code', 'Save10', 'rule', test.id('crule'), 'max_uses', 2, 'max_uses_per_customer', 1));
SELECT is((SELECT action FROM orderly.audit_log ORDER BY id DESC LIMIT 1), 'coupon.create', 'coupon_create is audited');
SELECT pg_temp.pm('coupon_create', jsonb_build_object('code', 'OLDIE', 'rule', test.id('crule'), 'starts', '2020-01-01', 'ends', '2020-02-01'));
SELECT pg_temp.pm('coupon_create', jsonb_build_object('code', 'SOON', 'rule', test.id('crule'), 'starts', to_char(now() + interval '3 days', 'YYYY-MM-DD')));
SELECT is(pg_temp.net('{"product": "WIDGET", "qty": 1}'), 10.00, 'a coupon''s rule does not apply without the coupon');
SELECT is(pg_temp.net('{"product": "WIDGET", "qty": 1}', 'std', 'save10'), 9.00, 'with the coupon (any case) it does');
SELECT is(pg_temp.price('[{"product": "WIDGET", "qty": 1}]', 'std', 'SAVE10') -> 'coupon', '{"code": "Save10", "applied": true}'::jsonb,
          'the order reports the coupon as applied');
SELECT is(pg_temp.price('[{"product": "SVC", "qty": 1}]', 'std', 'SAVE10') -> 'coupon' -> 'applied', 'false'::jsonb,
          'a valid coupon that matches no line: applied false');
SELECT throws_ok($$SELECT pg_temp.price('[{"product": "SVC", "qty": 1}]', 'std', 'NOSUCH')$$, 'OL404', 'unknown coupon "NOSUCH"', 'unknown coupon');
SELECT throws_ok($$SELECT pg_temp.price('[{"product": "SVC", "qty": 1}]', 'std', 'oldie')$$, 'OL409', 'coupon "oldie" has expired', 'expired coupon');
SELECT throws_ok($$SELECT pg_temp.price('[{"product": "SVC", "qty": 1}]', 'std', 'SOON')$$, 'OL409', 'coupon "SOON" is not valid yet', 'future coupon');
SELECT throws_ok($$SELECT pg_temp.pm('coupon_create', '{"code": "save10", "rule": 1}')$$, 'OL409', 'coupon save10 already exists',
                 'coupon codes are unique in any case');

INSERT INTO ids SELECT 'r1', orderly.coupon_redeem('save10', 1001, test.id('std'), test.uid('rep'));
SELECT is((SELECT used_count FROM orderly.coupons WHERE code = 'Save10'), 1, 'redeem counts a use');
SELECT is(orderly.coupon_redeem('SAVE10', 1001, test.id('std'), test.uid('rep')), test.id('r1'), 'redeeming again for the same order is a no-op');
SELECT is((SELECT action FROM orderly.audit_log ORDER BY id DESC LIMIT 1), 'coupon.redeem', 'redeem is audited');
SELECT throws_ok($$SELECT pg_temp.price('[{"product": "WIDGET", "qty": 1}]', 'std', 'save10')$$, 'OL409',
                 'coupon "save10" has been used up for this customer', 'price_order: per-customer limit reached');
SELECT throws_ok(format('SELECT orderly.coupon_redeem(%L, 1002, %s, %s)', 'save10', test.id('std'), test.uid('rep')), 'OL409',
                 'coupon "save10" has been used up for this customer', 'redeem: per-customer limit');
SELECT lives_ok(format('SELECT orderly.coupon_redeem(%L, 1003, %s, %s)', 'save10', test.id('dealer'), test.uid('rep')), 'another customer redeems');
SELECT throws_ok($$SELECT pg_temp.price('[{"product": "WIDGET", "qty": 1}]', 'third', 'save10')$$, 'OL409',
                 'coupon "save10" has been used up', 'price_order: max_uses reached');
SELECT throws_ok(format('SELECT orderly.coupon_redeem(%L, 1004, %s, %s)', 'save10', test.id('third'), test.uid('rep')), 'OL409',
                 'coupon "save10" has been used up', 'redeem: max_uses reached');
SELECT is(orderly.coupon_release(1001, test.uid('rep')), 1, 'release frees the use of an order');
SELECT is(orderly.coupon_release(1001, test.uid('rep')), 0, 'releasing twice is not an error');
SELECT is((SELECT used_count FROM orderly.coupons WHERE code = 'Save10'), 1, 'used count went down');
SELECT lives_ok(format('SELECT orderly.coupon_redeem(%L, 1004, %s, %s)', 'save10', test.id('third'), test.uid('rep')), 'the freed use can be redeemed again');
SELECT throws_ok(format('SELECT orderly.coupon_redeem(%L, 1005, %s, %s)', 'OLDIE', test.id('dealer'), test.uid('rep')), 'OL409',
                 'coupon "OLDIE" has expired', 'redeem checks the window too');
SELECT is((SELECT count(*)::int FROM orderly.coupon_redemptions WHERE released_at IS NULL), 2, 'two live redemptions');

-- Pricing management: validation and permissions ----------------------------------------------------------

SELECT throws_ok($$SELECT pg_temp.pm('rule_create', '{"name": "x", "kind": "percent", "value": 150}')$$, 'OL400',
                 'a percent rule needs a value above 0 and at most 100', 'percent over 100');
SELECT throws_ok($$SELECT pg_temp.pm('rule_create', '{"name": "x", "kind": "buy_x_get_y", "buy": 3}')$$, 'OL400',
                 'a buy_x_get_y rule needs buy and get (1 to 10000) and no value', 'buy without get');
SELECT throws_ok($$SELECT pg_temp.pm('rule_create', '{"name": "x", "kind": "percent", "value": 5, "starts": "2025-02-01", "ends": "2025-01-01"}')$$, 'OL400',
                 'starts must be before ends', 'window backwards');
SELECT throws_ok($$SELECT pg_temp.pm('rule_create', '{"name": "x", "kind": "percent", "value": 5, "starts": "tomorrow"}')$$, 'OL400',
                 'starts must be a date or time like 2025-01-31 or 2025-01-31T12:00:00Z', 'a bad date');
SELECT throws_ok($$SELECT pg_temp.pm('rule_update', '{"id": -5, "active": false}')$$, 'OL404', 'unknown rule -5', 'unknown rule');
SELECT throws_ok($$SELECT pg_temp.pm('price_set', '{"product": "WIDGET", "min_qty": 1, "percent": 5}')$$, 'OL400',
                 'min_qty must be between 2 and 100000', 'a band from 1 is the list price');
SELECT throws_ok($$SELECT pg_temp.pm('tax_set', '{"country": "DEU", "rate": 19}')$$, 'OL400', 'country must be a 2-letter code like DE', 'bad country');
SELECT throws_ok($$SELECT pg_temp.pm('tax_set', '{"country": "DE", "rate": 101}')$$, 'OL400',
                 'rate must be a percentage from 0 to 100 (at most 4 decimals)', 'bad rate');

SELECT throws_ok(format('SELECT * FROM api.%I(%s, %L)', fn, test.uid('rep'), '{}'), 'OL403', 'permission denied: pricing.manage',
                 format('a sales rep may not call %s', fn))
FROM unnest(ARRAY['price_set', 'rule_create', 'rule_update', 'coupon_create', 'tax_set']) fn;

-- PRODUCT PRICE (api) ------------------------------------------------------------------------------------

SELECT is((SELECT r::jsonb -> 'lines' -> 0 -> 'tax' FROM api.product_price(test.uid('rep'),
           '{"code": "svc", "qty": 2, "ship_to": "DE"}') r), '9.50'::jsonb, 'PRODUCT PRICE: without customer, tax by country code');
SELECT is((SELECT r::jsonb -> 'lines' -> 0 -> 'tax_rate' FROM api.product_price(test.uid('rep'),
           '{"code": "SVC", "ship_to": "us-ca"}') r), '7.25'::jsonb, 'PRODUCT PRICE: country and region');
SELECT throws_ok(format('SELECT * FROM api.product_price(%s, %L)', test.uid('rep'), '{"code": "SVC", "ship_to": "XX"}'), 'OL400',
                 'country must be an ISO 3166-1 code, like DE or US', 'PRODUCT PRICE: a country that is none is refused (it quoted no tax)');
SELECT is((SELECT r::jsonb ->> 'segment' FROM api.product_price(test.uid('rep'),
           jsonb_build_object('code', 'WIDGET', 'customer', test.id('dealer'), 'qty', 10)) r), 'dealer', 'PRODUCT PRICE: the customer''s segment');
SELECT throws_ok(format('SELECT * FROM api.product_price(%s, %L)', test.uid('rep'),
                        '{"code": "GADGET", "unit_price": 1, "reason": "x"}'), 'OL400', NULL, 'PRODUCT PRICE takes no manual price');
SELECT throws_ok($$SELECT orderly.coupon_redeem('NOSUCH', 1006, NULL, NULL)$$, 'OL404', 'unknown coupon "NOSUCH"', 'redeem: unknown coupon');
DO $$ BEGIN PERFORM admin.create_user('buyer', 'buyer-secret-1', ARRAY['customer']); END $$;
UPDATE orderly.users SET customer_id = test.id('std') WHERE username = 'buyer';
SELECT is((SELECT r::jsonb ->> 'customer' FROM api.product_price(test.uid('buyer'),
           jsonb_build_object('code', 'SVC', 'customer', test.id('std'))) r), test.id('std')::text,
          'PRODUCT PRICE: a customer login prices for its own customer');
SELECT throws_ok(format('SELECT * FROM api.product_price(%s, %L)', test.uid('buyer'), jsonb_build_object('code', 'SVC', 'customer', test.id('dealer'))),
                 'OL404', format('unknown customer %s', test.id('dealer')), 'but not for another customer');
SELECT throws_ok(format('SELECT * FROM api.product_price(%s, %L)', test.uid('nobody'), '{"code": "SVC"}'), 'OL403',
                 'permission denied: catalog.read', 'PRODUCT PRICE needs catalog.read');

-- Both ways of pricing give the same answer (issue 16) ---------------------------------------------------
-- price_lines_set prices the lines it takes a whole order at once; price_line one line at a time.
-- Every item it takes, alone at several quantities and all together, for every segment, coupon and
-- tax place of this file's data, priced both ways: byte for byte the same.
CREATE TEMP TABLE both_ways AS
WITH items AS (
    SELECT jsonb_build_object('sku', s.code) AS item FROM orderly.skus s JOIN orderly.products p ON p.id = s.product_id
    WHERE s.active AND p.active AND p.kind = 'goods' AND p.formula IS NULL
    UNION ALL
    SELECT jsonb_build_object('product', p.code) FROM orderly.products p WHERE p.active AND p.kind <> 'goods' AND p.formula IS NULL
    UNION ALL
    -- Plain options: extras of a group of several, one or a list; a variant group's value as its SKU has it.
    SELECT o::jsonb FROM unnest(ARRAY['{"sku": "PHN-A-64", "options": {"acc": ["charger", "case"]}}',
                                      '{"sku": "PHN-A-256", "options": {"acc": "case", "storage": "256"}}',
                                      '{"sku": "PHN-A-64", "options": {}}',
                                      '{"product": "PHN-A", "options": {"storage": "256", "acc": ["case"]}}',
                                      '{"product": "phn-a", "options": {"storage": "64"}}']) o),
orders AS (
    SELECT jsonb_build_array(i.item || jsonb_build_object('qty', q)) AS lines FROM items i, unnest(ARRAY[1, 3, 7, 12, 60]) q
    UNION ALL
    SELECT jsonb_agg(i.item || jsonb_build_object('qty', 5, 'line', 10 + row_number)) FROM (SELECT item, row_number() OVER () FROM items) i),
contexts AS (
    SELECT DISTINCT c.segment, orderly.tax_context(orderly.ship_to_place(c.id, NULL)) AS tax FROM orderly.customers c
    UNION SELECT 'standard', orderly.tax_context(NULL))
SELECT x.segment, x.lines, (cps.cp).code,
       orderly.price_lines_set(x.segment, x.lines, cps.cp, x.tax, timestamptz '2026-06-01 12:00Z') AS set_based,
       (SELECT jsonb_agg(jsonb_build_object('line', coalesce((e ->> 'line')::integer, n::integer))
                         || orderly.price_line(e, x.segment, cps.cp, x.tax, timestamptz '2026-06-01 12:00Z', false) ORDER BY n)
        FROM jsonb_array_elements(x.lines) WITH ORDINALITY AS t(e, n)) AS line_by_line
FROM (SELECT * FROM orders, contexts) x
CROSS JOIN LATERAL (SELECT c FROM orderly.coupons c UNION ALL SELECT NULL::orderly.coupons) cps(cp);
SELECT cmp_ok((SELECT count(*) FROM both_ways), '>', 500::bigint, 'both ways: many orders priced');
SELECT is((SELECT count(*) FROM both_ways WHERE set_based IS NULL), 0::bigint, 'price_lines_set takes every one of them');
SELECT is((SELECT count(*) FROM both_ways WHERE set_based::text IS DISTINCT FROM line_by_line::text), 0::bigint,
          'and prices each exactly as price_line does');
SELECT ok((SELECT count(DISTINCT code) FROM both_ways) > 1 AND EXISTS (SELECT 1 FROM both_ways WHERE set_based::text ~ '"step": "rule"')
          AND EXISTS (SELECT 1 FROM both_ways WHERE set_based::text ~ '"step": "tier"'),
          'with coupons, rules and tiers among them');
-- The explanation as clients read it: each step's step, text and amount first, then its other
-- keys — the text json_extend gives, for every line priced above and a few odd steps.
SELECT is_empty($$
    WITH ex(e) AS (SELECT l -> 'explanation' FROM both_ways, jsonb_array_elements(set_based) l
                   UNION ALL VALUES ('[]'::jsonb), (NULL), ('[{"step": "x"}]'), ('[{"step": "x", "amount": null, "text": null}]'))
    SELECT e FROM ex
    WHERE orderly.explanation_doc(e)::text IS DISTINCT FROM
          (SELECT coalesce(json_agg(orderly.json_extend(
                                        CASE WHEN st ? 'amount' THEN json_build_object('step', st -> 'step', 'text', st -> 'text', 'amount', st -> 'amount')
                                             ELSE json_build_object('step', st -> 'step', 'text', st -> 'text') END,
                                        (st - 'step' - 'text' - 'amount')::json) ORDER BY n), '[]')
           FROM jsonb_array_elements(coalesce(e, '[]')) WITH ORDINALITY AS t(st, n))::text
$$, 'explanation_doc: step, text and amount first, then the rest, exactly as json_extend writes it');

-- Manual prices, by one who may set them: both ways alike too.
SELECT is_empty($$
    WITH o(lines) AS (VALUES ('[{"sku": "PHN-A-64", "qty": 3, "unit_price": 80.125, "reason": "  price match  "}]'::jsonb),
                             ('[{"sku": "PHN-A-256", "qty": 1, "unit_price": 0, "reason": "gift"}, {"product": "CABLE", "qty": 60}]'),
                             ('[{"product": "PHN-A", "qty": 2, "options": {"storage": "256", "acc": ["case"]}, "unit_price": 149, "reason": "bundle deal"}]'))
    SELECT o.lines FROM o
    WHERE orderly.price_lines_set('standard', o.lines, NULL, orderly.tax_context(NULL), timestamptz '2026-06-01 12:00Z', true)::text
          IS DISTINCT FROM
          (SELECT jsonb_agg(jsonb_build_object('line', n) || orderly.price_line(e, 'standard', NULL, orderly.tax_context(NULL),
                                                                               timestamptz '2026-06-01 12:00Z', true) ORDER BY n)
           FROM jsonb_array_elements(o.lines) WITH ORDINALITY AS t(e, n))::text
$$, 'a manual price: the same both ways (rounded, with its reason trimmed)');
SELECT is(ARRAY(SELECT orderly.price_lines_set('standard', l, NULL, orderly.tax_context(NULL), now(), true) IS NULL
                FROM unnest(ARRAY['[{"sku": "PHN-A-64", "qty": 1, "unit_price": "80", "reason": "x"}]',
                                  '[{"sku": "PHN-A-64", "qty": 1, "unit_price": 80, "reason": "  "}]',
                                  '[{"sku": "PHN-A-64", "qty": 1, "reason": "x"}]',
                                  '[{"sku": "PHN-A-64", "qty": 1, "unit_price": -1, "reason": "x"}]',
                                  '[{"sku": "PHN-A-64", "qty": 1.5}]']::jsonb[]) l)
          || (orderly.price_lines_set('standard', '[{"sku": "PHN-A-64", "qty": 1, "unit_price": 80, "reason": "x"}]', NULL,
                                      orderly.tax_context(NULL), now(), false) IS NULL),
          array_fill(true, ARRAY[6]),
          'and leaves to price_line a price given as text, a blank reason, a reason alone, a negative price, a fractional qty, a manual price without the right');
SELECT is(ARRAY(SELECT orderly.price_lines_set('standard', l, NULL, orderly.tax_context(NULL), now()) IS NULL
                FROM unnest(ARRAY['[{"sku": "PHN-A-64", "qty": 1, "options": {"ACC": ["case"]}}]',
                                  '[{"product": "PHN-A", "qty": 1}]',
                                  '[{"sku": "PHN-A-64", "qty": 1, "unit_price": 5, "reason": "x"}]',
                                  '[{"sku": "PHN-A-64", "qty": 0}]',
                                  '[{"sku": "PHN-A-64", "qty": "2"}]',
                                  '[{"sku": "NOPE", "qty": 1}]',
                                  '[{"sku": "PHN-A-64", "qty": 1, "line": 2}, {"sku": "PHN-A-64", "qty": 1, "line": 2}]',
                                  '[{"sku": "PHN-A-64", "qty": 1, "product": "GADGET"}]',
                                  '[7]',
                                  '[{"sku": "PHN-A-64", "qty": 1, "options": {"acc": ["old"]}}]',
                                  '[{"sku": "PHN-A-64", "qty": 1, "options": {"acc": ["case", "case"]}}]',
                                  '[{"sku": "PHN-A-64", "qty": 1, "options": {"storage": "256"}}]',
                                  '[{"sku": "PHN-A-64", "qty": 1, "options": {"acc": []}}]',
                                  '[{"sku": "PHN-A-64", "qty": 1, "options": {"colour": "red"}}]']::jsonb[]) l),
          array_fill(true, ARRAY[14]),
          'price_lines_set leaves to price_line: options spelt otherwise, goods by product without a variant, a manual price, a bad qty, an unknown SKU, a line number twice, a SKU of another product, a line that is not an object, an inactive value, a value twice, a variant the SKU does not have, an empty list, an unknown group');

-- Stored lines give back the engine's answer (issue 16, item 5) -----------------------------------------
-- A stored line keeps its own figures, its tax place and a key to its pricing, shared with every
-- line priced the same way (R__112_line_pricings.sql). Every order priced both ways above, and
-- formulas and manual prices, stored as a draft of every customer, without and with each coupon
-- price_order accepts: each line put back together by orderly.line_priced is byte for byte what
-- price_order answers, and the order document explains each line as the engine's answer does.
CREATE TEMP TABLE stored (order_id bigint PRIMARY KEY);
-- Drafts are priced now, not at the time above: every coupon open to all for this.
UPDATE orderly.coupons SET starts_at = NULL, ends_at = NULL, max_uses = NULL, max_uses_per_customer = NULL, active = true;
DO $$
DECLARE
    x record;
    o orderly.orders;
BEGIN
    FOR x IN
        SELECT l.lines, c.id AS customer, cp.code
        FROM (SELECT DISTINCT lines FROM both_ways
              UNION ALL SELECT '[{"product": "CASE-C", "qty": 2, "params": {"width_cm": 10, "height_cm": 20}},
                                 {"product": "DIV", "qty": 1, "params": {"w": 12.5}}, {"sku": "WIDGET", "qty": 1}]'
              UNION ALL SELECT '[{"sku": "PHN-A-64", "qty": 3, "unit_price": 80.125, "reason": "  price match  "},
                                 {"product": "CABLE", "qty": 60}, {"product": "BND", "qty": 2, "unit_price": 99, "reason": "deal"}]') l,
             orderly.customers c,
             (SELECT code FROM orderly.coupons UNION ALL SELECT NULL) cp
    LOOP
        BEGIN
            INSERT INTO orderly.orders (customer_id, status, coupon_code) VALUES (x.customer, 'draft', x.code) RETURNING * INTO o;
            PERFORM orderly.set_order_lines(o, orderly.numbered_specs(x.lines));
            INSERT INTO stored VALUES (o.id);
        EXCEPTION WHEN sqlstate 'OL409' OR sqlstate 'OL404' OR sqlstate 'OL400' THEN
            NULL;   -- a coupon this customer may not use, or a line the customer's currency refuses
        END;
    END LOOP;
END
$$;
SELECT cmp_ok((SELECT count(*) FROM stored s JOIN orderly.order_lines l ON l.order_id = s.order_id), '>', 1500::bigint,
              'stored lines: many');
SELECT ok((SELECT count(DISTINCT o.coupon_code) FROM stored s JOIN orderly.orders o ON o.id = s.order_id) = 3
          AND EXISTS (SELECT 1 FROM stored s JOIN orderly.order_lines l ON l.order_id = s.order_id
                      JOIN orderly.line_pricings p ON p.digest = l.pricing WHERE p.body::text ~ '"step": "rule"')
          AND EXISTS (SELECT 1 FROM stored s JOIN orderly.order_lines l ON l.order_id = s.order_id
                      JOIN orderly.line_pricings p ON p.digest = l.pricing WHERE p.body::text ~ '"step": "tier"')
          AND (SELECT count(DISTINCT o.customer_id) FROM stored s JOIN orderly.orders o ON o.id = s.order_id) = 5
          AND EXISTS (SELECT 1 FROM stored s JOIN orderly.order_lines l ON l.order_id = s.order_id WHERE l.is_override)
          AND EXISTS (SELECT 1 FROM stored s JOIN orderly.order_lines l ON l.order_id = s.order_id
                      JOIN orderly.products p ON p.id = l.product_id WHERE p.formula IS NOT NULL),
          'of every customer, with every coupon, rules, tiers, manual prices and formulas');
SELECT is_empty($$
    SELECT o.id FROM stored s JOIN orderly.orders o ON o.id = s.order_id
    WHERE (SELECT jsonb_agg(orderly.line_priced(l) ORDER BY l.line_no) FROM orderly.order_lines l WHERE l.order_id = o.id)::text
          IS DISTINCT FROM (orderly.price_order(o.customer_id, orderly.order_specs(o.id), o.coupon_code, o.ship_to_id, now(), true)
                            -> 'lines')::text
$$, 'each stored line put back together is exactly the engine''s answer');
SELECT is_empty($$
    SELECT o.id FROM stored s JOIN orderly.orders o ON o.id = s.order_id
    WHERE (SELECT json_agg(d -> 'explanation') FROM json_array_elements(orderly.order_doc(o) -> 'lines') d)::text
          IS DISTINCT FROM (SELECT json_agg(orderly.explanation_doc(e -> 'explanation'))
                            FROM jsonb_array_elements(orderly.price_order(o.customer_id, orderly.order_specs(o.id), o.coupon_code,
                                                                          o.ship_to_id, now(), true) -> 'lines') e)::text
$$, 'and the order document explains each line as the engine does');
SELECT cmp_ok((SELECT count(DISTINCT l.pricing) * 3 FROM stored s JOIN orderly.order_lines l ON l.order_id = s.order_id), '<',
              (SELECT count(*) FROM stored s JOIN orderly.order_lines l ON l.order_id = s.order_id),
              'lines priced the same way share their pricing (one row for many lines)');
-- The same order again adds no pricing; the place its tax was taken for stays when the address
-- is edited afterwards.
CREATE TEMP TABLE pricings_before AS SELECT count(*) AS n FROM orderly.line_pricings;
DO $$
DECLARE
    o orderly.orders;
BEGIN
    INSERT INTO orderly.orders (customer_id, status) VALUES (test.id('std'), 'draft') RETURNING * INTO o;
    PERFORM orderly.set_order_lines(o, '[{"line": 1, "sku": "PHN-A-64", "qty": 3}, {"line": 2, "product": "SVC", "qty": 1}]');
    INSERT INTO ids VALUES ('again', o.id);
END
$$;
SELECT is((SELECT count(*) FROM orderly.line_pricings), (SELECT n FROM pricings_before),
          'storing an order priced like an earlier one adds no pricing');
UPDATE orderly.addresses SET region = 'BB', city = 'Potsdam' WHERE customer_id = test.id('std') AND is_default;
SELECT is((SELECT orderly.order_doc(o) -> 'lines' -> 0 -> 'explanation' -> -1 ->> 'place' FROM orderly.orders o WHERE o.id = test.id('again')),
          jsonb_build_object('region', 'Berlin', 'country', 'DE',
                             'address_id', (SELECT a.id FROM orderly.addresses a WHERE a.customer_id = test.id('std') AND a.is_default))::text,
          'the tax step names the place as it was when the line was priced');

-- Two transactions storing the same new pricing: the second waits for the first (here: its lock
-- timeout shows it waiting, where a plain insert would fail on the key or store it twice), and
-- once the first has committed it stores nothing more. The other transaction is a second session
-- (dblink).
CREATE TEMP TABLE pricing_race (available boolean, waited boolean, rows_after bigint);
DO $$
DECLARE
    v_line  text := '[{"line": 1, "product": "RACE", "name": "Race", "explanation": [{"step": "base", "amount": 1}]}]';
    v_key   bytea := (orderly.pricing_parts(v_line::jsonb -> 0)).digest;
    v_wait  boolean := false;
BEGIN
    IF NOT test.other_session('pricing_other') THEN
        INSERT INTO pricing_race VALUES (false, NULL, NULL);
        RETURN;
    END IF;
    PERFORM dblink_exec('pricing_other', 'BEGIN');
    PERFORM * FROM dblink('pricing_other', format('SELECT count(*) FROM orderly.store_line_pricings(%L)', v_line)) AS t(n bigint);
    BEGIN
        SET LOCAL lock_timeout = '200ms';
        PERFORM orderly.store_line_pricings(v_line::jsonb);
    EXCEPTION WHEN lock_not_available THEN
        v_wait := true;
    END;
    SET LOCAL lock_timeout = 0;
    PERFORM dblink_exec('pricing_other', 'COMMIT');
    PERFORM orderly.store_line_pricings(v_line::jsonb);
    INSERT INTO pricing_race VALUES (true, v_wait, (SELECT count(*) FROM orderly.line_pricings p WHERE p.digest = v_key));
    -- Committed by the other session, so outside this file's rollback: it takes it out again,
    -- past the append-only guard the way a restore would (replica role: ordinary triggers off).
    PERFORM dblink_exec('pricing_other', 'SET session_replication_role = replica');
    PERFORM dblink_exec('pricing_other', format('DELETE FROM orderly.line_pricings WHERE digest = %L', v_key));
    PERFORM dblink_disconnect('pricing_other');
END
$$;
SELECT CASE WHEN (SELECT available FROM pricing_race)
            THEN is((SELECT waited::text || ' ' || rows_after FROM pricing_race), 'true 1',
                    'the same new pricing stored by two transactions: the second waits for the first, then stores nothing (one row)')
            ELSE skip('dblink is not installed', 1) END;

-- A stored pricing is never changed or removed, the owner included: lines point at it by key.
SET ROLE orderly_owner;
SELECT throws_ok($$UPDATE orderly.line_pricings SET body = '{}' WHERE digest IN (SELECT digest FROM orderly.line_pricings LIMIT 1)$$,
                 '42501', 'line_pricings is append-only', 'a stored pricing cannot be edited');
SELECT throws_ok($$DELETE FROM orderly.line_pricings WHERE digest IN (SELECT digest FROM orderly.line_pricings LIMIT 1)$$,
                 '42501', 'line_pricings is append-only', 'nor deleted');
SELECT throws_ok('TRUNCATE orderly.line_pricings CASCADE', '42501', 'line_pricings is append-only', 'nor truncated');
RESET ROLE;

SELECT is_empty('SELECT * FROM test.audit_rows_without_actor()', 'every audit row of this file names its actor');

SELECT * FROM finish();
ROLLBACK;
