-- Catalog: tables and CHECKs, browsing (CATALOG, PRODUCT SHOW), editing under catalog.manage with
-- audit rows, validation errors that change nothing, stock, bundles, the demo catalog.
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT plan(75);

DO $$
BEGIN
    PERFORM admin.create_user('cat', 'cat-secret-1', ARRAY['production_manager']);  -- catalog.manage
    PERFORM admin.create_user('rep', 'rep-secret-1', ARRAY['sales_rep']);           -- catalog.read
    PERFORM admin.create_user('nobody', 'nobody-secret-1', '{}');
END
$$;

SELECT test.snapshot(ARRAY['orderly.audit_log',
                           'orderly.products + orderly.skus + orderly.categories + orderly.option_values']);

-- Structure and permissions ---------------------------------------------------------------------------

SELECT col_is_unique('orderly', 'products', 'code', 'product codes are unique');
SELECT col_is_unique('orderly', 'skus', 'code', 'SKU codes are unique');
-- A carrier's integration login (V018) posts tracking events and reads nothing else.
SELECT is((SELECT array_agg(r.name ORDER BY r.name) FROM orderly.roles r
           WHERE r.name <> 'carrier' AND NOT EXISTS (SELECT 1 FROM orderly.role_permissions rp WHERE rp.role_id = r.id AND rp.permission = 'catalog.read')),
          NULL, 'every seeded role but carrier has catalog.read');
SELECT set_eq($$SELECT r.name FROM orderly.roles r JOIN orderly.role_permissions rp ON rp.role_id = r.id WHERE rp.permission = 'catalog.manage'$$,
              ARRAY['admin', 'sales_manager', 'production_manager'], 'catalog.manage holders');
SELECT set_eq($$SELECT r.name FROM orderly.roles r JOIN orderly.role_permissions rp ON rp.role_id = r.id WHERE rp.permission = 'pricing.manage'$$,
              ARRAY['admin', 'sales_manager', 'finance_manager'], 'pricing.manage holders');

SELECT throws_ok(format('SELECT * FROM api.%I(%s, %L)', fn, test.uid('rep'), '{}'), 'OL403', 'permission denied: catalog.manage',
                 format('a sales rep may not call %s', fn))
FROM unnest(ARRAY['category_create', 'product_create', 'product_update', 'option_add', 'sku_create', 'stock_set',
                  'stock_adjust', 'bundle_create']) fn;
SELECT throws_ok(format('SELECT * FROM api.%I(%s, %L)', fn, test.uid('nobody'), '{}'), 'OL403', 'permission denied: catalog.read',
                 format('no role: %s is refused', fn))
FROM unnest(ARRAY['catalog', 'product_show']) fn;

-- Editing ---------------------------------------------------------------------------------------------

SELECT is(test.call('category_create', 'cat', '{"code": "elec", "name": "Electronics"}') ->> 'code', 'ELEC', 'category codes are upper-cased');
SELECT is((test.last_audit()).action, 'category.create', 'audit: category.create');
SELECT is((test.last_audit()).actor_user_id, test.uid('cat'), 'audit: the acting user');
SELECT lives_ok($$SELECT test.call('category_create', 'cat', '{"code": "PHONES", "name": "Phones", "parent": "elec"}')$$, 'a sub-category');
SELECT lives_ok($$SELECT test.call('category_create', 'cat', '{"code": "OTHER", "name": "Other"}')$$, 'another root');

SELECT test.snapshot();
SELECT throws_ok($$SELECT test.call('category_create', 'cat', '{"code": "ELEC", "name": "Again"}')$$, 'OL409', 'category ELEC already exists', 'duplicate category');
SELECT throws_ok($$SELECT test.call('category_create', 'cat', '{"code": "X", "name": "X", "parent": "NOPE"}')$$, 'OL404', 'unknown category "NOPE"', 'unknown parent');
SELECT throws_ok($$SELECT test.call('category_create', 'cat', '{"code": "bad code!", "name": "X"}')$$, 'OL400',
                 'invalid code: use 1 to 48 letters, digits, "_", "." or "-"', 'bad category code');
SELECT throws_ok($$SELECT test.call('product_create', 'cat', '{"code": "P1", "name": "P", "kind": "gadget"}')$$, 'OL400',
                 'kind must be goods, service or custom (bundles: BUNDLE CREATE)', 'bad kind');
SELECT throws_ok($$SELECT test.call('product_create', 'cat', '{"code": "P1", "name": "P", "kind": "goods", "base_price": -1}')$$, 'OL400',
                 'base_price must be between 0 and 999999999999.99', 'negative base price');
SELECT throws_ok($$SELECT test.call('product_create', 'cat', '{"code": "P1", "name": "P", "kind": "goods", "base_price": 1.005}')$$, 'OL400',
                 'base_price must have at most 2 decimals', 'sub-cent base price');
SELECT throws_ok($$SELECT test.call('product_create', 'cat', '{"code": "P1", "name": "P", "kind": "goods", "currency": "XYZ"}')$$, 'OL400',
                 'currency must be an ISO 4217 currency code like EUR or USD ("XYZ" is none)', 'a currency that is none (V037: orderly.currencies)');
SELECT is(orderly.check_currency(' chf ')::text, 'CHF', 'a known one, however it is written');
SELECT throws_ok($$SELECT test.call('product_create', 'cat', '{"code": "P1", "name": "P", "kind": "goods", "formula": "1"}')$$, 'OL400',
                 'only custom products have a formula', 'a formula on goods');
SELECT throws_ok($$SELECT test.call('product_create', 'cat', '{"code": "P1", "kind": "goods"}')$$, 'OL400', 'name is required', 'missing name');
SELECT ok(test.unchanged(), 'failed catalog calls changed nothing');

SELECT is((test.call('product_create', 'cat', '{"code": "phn-a", "name": "Phone A", "kind": "goods", "category": "PHONES", "base_price": 100}') -> 'skus' -> 0) - 'sku_id',
          jsonb_build_object('sku', 'PHN-A', 'options', '{}'::jsonb, 'active', true, 'on_hand', 0, 'reserved', 0, 'available', 0),
          'a goods product gets its default SKU');
SELECT is((test.last_audit()).action, 'product.create', 'audit: product.create');
SELECT is(test.call('product_create', 'cat', '{"code": "SVC", "name": "Setup", "kind": "service", "base_price": 25}') -> 'skus', '[]'::jsonb,
          'a service has no SKU');
SELECT throws_ok($$SELECT test.call('product_create', 'cat', '{"code": "PHN-A", "name": "Again", "kind": "goods"}')$$, 'OL409',
                 'product PHN-A already exists', 'duplicate product');

SELECT is(jsonb_array_length(test.call('option_add', 'cat', '{"product": "PHN-A", "group": "Colour", "variant": true,
          "values": [{"value": "BLK", "name": "Black"}, {"value": "wht", "name": "White", "price_delta": 5}]}') -> 'options' -> 0 -> 'values'),
          2, 'a variant option group with two values');
SELECT is((SELECT active FROM orderly.skus WHERE code = 'PHN-A'), false, 'adding a variant group retires the default SKU');
SELECT is((test.last_audit()).action, 'product.option_add', 'audit: product.option_add');
SELECT lives_ok($$SELECT test.call('option_add', 'cat', '{"product": "PHN-A", "group": "colour", "values": [{"value": "red", "price_delta": 10}]}')$$,
                'new values for an existing group');
SELECT throws_ok($$SELECT test.call('option_add', 'cat', '{"product": "PHN-A", "group": "colour", "values": [{"value": "red"}]}')$$, 'OL409',
                 'option colour already has the value red', 'a value twice');
SELECT throws_ok($$SELECT test.call('option_add', 'cat', '{"product": "SVC", "group": "size", "variant": true, "values": [{"value": "s"}]}')$$, 'OL400',
                 'only goods have variant options (they pick the SKU)', 'variants only for goods');
SELECT throws_ok($$SELECT test.call('option_add', 'cat', '{"product": "PHN-A", "group": "extras", "values": []}')$$, 'OL400',
                 'values must be a list of 1 to 100 objects like {"value":"black","name":"Black","price_delta":0}', 'no values');

SELECT is(test.call('sku_create', 'cat', '{"product": "PHN-A", "code": "phn-a-blk", "options": {"colour": "blk"}, "stock": 5}') ->> 'available',
          '5', 'a SKU with initial stock');
SELECT is((test.last_audit()).action, 'sku.create', 'audit: sku.create');
SELECT throws_ok($$SELECT test.call('sku_create', 'cat', '{"product": "PHN-A", "code": "PHN-A-BLK2", "options": {"colour": "blk"}}')$$, 'OL409',
                 'PHN-A already has a SKU for these options', 'one SKU per variant combination');
SELECT throws_ok($$SELECT test.call('sku_create', 'cat', '{"product": "PHN-A", "code": "PHN-A-X", "options": {}}')$$, 'OL400',
                 'option colour is required', 'a SKU names every variant option');
SELECT throws_ok($$SELECT test.call('sku_create', 'cat', '{"product": "PHN-A", "code": "PHN-A-X", "options": {"colour": "pink"}}')$$, 'OL400',
                 'unknown value "pink" for option colour', 'unknown value');
SELECT throws_ok($$SELECT test.call('sku_create', 'cat', '{"product": "SVC", "code": "SVC-1"}')$$, 'OL400',
                 'only goods have SKUs (SVC is service)', 'services have no SKUs');

SELECT is(test.call('product_update', 'cat', '{"code": "PHN-A", "base_price": 120, "name": "Phone A+"}') ->> 'base_price', '120.00', 'product update');
SELECT is((test.last_audit()).before ->> 'base_price', '100.00', 'audit: before');
SELECT is((test.last_audit()).after ->> 'name', 'Phone A+', 'audit: after');
SELECT throws_ok($$SELECT test.call('product_update', 'cat', '{"code": "PHN-A", "kind": "service"}')$$, 'OL400',
                 'unknown argument "kind"; expected one of: code, name, category, base_price, description, active, formula, params, idempotency_key', 'kind is fixed');
SELECT throws_ok($$SELECT test.call('product_update', 'cat', '{"code": "NOPE", "name": "x"}')$$, 'OL404', 'unknown product "NOPE"', 'unknown product');

-- Stock -------------------------------------------------------------------------------------------

SELECT is(test.call('stock_adjust', 'cat', '{"sku": "PHN-A-BLK", "delta": 3, "reason": "delivery"}') ->> 'on_hand', '8', 'stock adjust');
SELECT is((test.last_audit()).after ->> 'reason', 'delivery', 'audit: the reason');
UPDATE orderly.skus SET stock_reserved = 6 WHERE code = 'PHN-A-BLK';
SELECT throws_ok($$SELECT test.call('stock_set', 'cat', '{"sku": "PHN-A-BLK", "on_hand": 5}')$$, 'OL409',
                 'SKU PHN-A-BLK has 6 reserved: stock on hand cannot go below that', 'stock set never below reserved');
SELECT throws_ok($$SELECT test.call('stock_adjust', 'cat', '{"sku": "PHN-A-BLK", "delta": -3}')$$, 'OL409',
                 'SKU PHN-A-BLK has 6 reserved: stock on hand cannot go below that', 'stock adjust never below reserved');
SELECT is(test.call('stock_set', 'cat', '{"sku": "phn-a-blk", "on_hand": 6}') ->> 'available', '0', 'down to exactly what is reserved');
SELECT throws_ok($$UPDATE orderly.skus SET stock_reserved = 7 WHERE code = 'PHN-A-BLK'$$, '23514', NULL, 'the table refuses reserved > on hand');
SELECT throws_ok($$UPDATE orderly.skus SET stock_on_hand = -1, stock_reserved = 0 WHERE code = 'PHN-A-BLK'$$, '23514', NULL, 'the table refuses negative stock');
SELECT throws_ok($$SELECT test.call('stock_set', 'cat', '{"sku": "NOPE", "on_hand": 1}')$$, 'OL404', 'unknown SKU "NOPE"', 'unknown SKU');

-- Bundles -----------------------------------------------------------------------------------------

SELECT is(test.call('bundle_create', 'cat', '{"code": "BND", "name": "Bundle", "base_price": 150,
          "items": [{"sku": "PHN-A-BLK", "qty": 1}]}') -> 'components' -> 0 ->> 'sku', 'PHN-A-BLK', 'a bundle with its component');
SELECT is((test.last_audit()).action, 'bundle.create', 'audit: bundle.create');
SELECT throws_ok($$SELECT test.call('bundle_create', 'cat', '{"code": "BND2", "name": "B", "base_price": 1, "items": [{"sku": "NOPE"}]}')$$, 'OL404',
                 'item 1: unknown SKU "NOPE"', 'unknown component');

-- Browsing ----------------------------------------------------------------------------------------

SELECT is((SELECT jsonb_agg(r ->> 'code') FROM jsonb_array_elements(test.rows('catalog', 'rep', '{"category": "ELEC"}')) r),
          '["PHN-A"]'::jsonb, 'CATALOG category= includes sub-categories');
SELECT is((SELECT jsonb_agg(r ->> 'code') FROM jsonb_array_elements(test.rows('catalog', 'rep', '{"q": "setu"}')) r),
          '["SVC"]'::jsonb, 'CATALOG q= matches the name');
SELECT is((SELECT jsonb_agg(r ->> 'code') FROM jsonb_array_elements(test.rows('catalog', 'rep', '{"limit": 1, "after": "BND"}')) r),
          '["PHN-A"]'::jsonb, 'CATALOG is keyset-paginated by code');
SELECT is(test.rows('catalog', 'rep', '{"q": "%"}'), '[]'::jsonb, 'q is text, not a pattern');
SELECT is((test.call('product_show', 'rep', '{"code": "phn-a"}') -> 'skus' -> 1) - 'sku_id',
          '{"sku": "PHN-A-BLK", "options": {"colour": "blk"}, "active": true, "on_hand": 6, "reserved": 6, "available": 0}'::jsonb,
          'PRODUCT SHOW: SKUs with on hand, reserved, available');
SELECT throws_ok($$SELECT test.call('product_show', 'rep', '{"code": "NOPE"}')$$, 'OL404', 'unknown product "NOPE"', 'PRODUCT SHOW unknown');
-- An inactive product: staff see it; a customer's login only when one of its orders has it.
SELECT admin.create_user('buyer', 'buyer-secret-1', ARRAY['customer']);
UPDATE orderly.products SET active = false WHERE code = 'PHN-A';
SELECT is(test.call('product_show', 'rep', '{"code": "PHN-A"}') ->> 'active', 'false', 'staff see an inactive product');
SELECT throws_ok($$SELECT test.call('product_show', 'buyer', '{"code": "PHN-A"}')$$, 'OL404', 'unknown product "PHN-A"',
                 'a customer does not: off sale (or not yet on sale), as if there were none');
UPDATE orderly.products SET active = true WHERE code = 'PHN-A';

-- Demo catalog ------------------------------------------------------------------------------------

SELECT ok((SELECT sum(added) FROM admin.load_demo_catalog()) > 0, 'the demo catalog loads');
SELECT is((SELECT sum(added)::int FROM admin.load_demo_catalog()), 0, 'and loading it again adds nothing');

SELECT is_empty('SELECT * FROM test.audit_rows_without_actor()', 'every audit row of this file names its actor');

SELECT * FROM finish();
ROLLBACK;
