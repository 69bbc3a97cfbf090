-- Orderly: a demo catalog for trying the server (make run, the README walkthrough).
--
-- admin.load_demo_catalog() is idempotent: every row is inserted only when missing (ON CONFLICT
-- DO NOTHING on its natural key), and rows that exist are left as an admin may have edited them.
-- It returns how many rows it added per table, and writes one audit row when it added any.

CREATE OR REPLACE FUNCTION admin.load_demo_catalog()
RETURNS TABLE (entity text, added integer)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    n     integer;
    total integer := 0;
BEGIN
    -- Categories: a small tree (roots first: a statement does not see its own new rows).
    INSERT INTO orderly.categories (code, name)
    VALUES ('ELECTRONICS', 'Electronics'), ('SERVICES', 'Services'), ('CUSTOM', 'Custom made'), ('BUNDLES', 'Bundles')
    ON CONFLICT (code) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT; total := total + n;
    INSERT INTO orderly.categories (parent_id, code, name)
    SELECT (SELECT c.id FROM orderly.categories c WHERE c.code = 'ELECTRONICS'), v.code, v.name
    FROM (VALUES ('PHONES', 'Phones'), ('ACCESSORIES', 'Accessories')) AS v(code, name)
    ON CONFLICT (code) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT; entity := 'categories'; added := n + total; total := total + n; RETURN NEXT;

    INSERT INTO orderly.products (code, name, category_id, kind, base_price, description, formula, formula_params)
    SELECT v.code, v.name, (SELECT c.id FROM orderly.categories c WHERE c.code = v.cat), v.kind, v.price, v.descr, v.formula, v.params
    FROM (VALUES
        ('PHN-X1', 'Phone X1', 'PHONES', 'goods', 699.00, 'Our flagship phone', NULL, NULL::jsonb),
        ('PHN-S2', 'Phone S2', 'PHONES', 'goods', 399.00, 'The sensible phone', NULL, NULL),
        ('ACC-CABLE', 'USB-C cable', 'ACCESSORIES', 'goods', 9.90, 'One metre, braided', NULL, NULL),
        ('SVC-SETUP', 'Phone setup and screen protector fitting', 'SERVICES', 'service', 29.00, 'Done in store', NULL, NULL),
        ('CST-CASE', 'Custom-made case', 'CUSTOM', 'custom', 0, 'Made to your measurements',
         '120 + width_cm * height_cm * 0.015',
         '{"width_cm": {"min": 5, "max": 40}, "height_cm": {"min": 5, "max": 40}}'),
        ('BND-X1-START', 'Phone X1 starter set', 'BUNDLES', 'bundle', 719.00, 'Phone X1 128 GB black and two cables', NULL, NULL)
    ) AS v(code, name, cat, kind, price, descr, formula, params)
    ON CONFLICT (code) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT; entity := 'products'; added := n; total := total + n; RETURN NEXT;

    INSERT INTO orderly.option_groups (product_id, code, name, variant, required, multiple, position)
    SELECT p.id, v.code, v.name, v.variant, v.required, v.multiple, v.pos
    FROM (VALUES ('colour', 'Colour', true, true, false, 1), ('storage', 'Storage', true, true, false, 2),
                 ('accessories', 'Accessories', false, false, true, 3)) AS v(code, name, variant, required, multiple, pos)
    CROSS JOIN orderly.products p
    WHERE p.code IN ('PHN-X1', 'PHN-S2')
    ON CONFLICT ON CONSTRAINT option_groups_product_code_key DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT; entity := 'option_groups'; added := n; total := total + n; RETURN NEXT;

    INSERT INTO orderly.option_values (group_id, code, name, price_delta, position)
    SELECT g.id, v.code, v.name, v.delta, v.pos
    FROM (VALUES ('colour', 'blk', 'Black', 0.00, 1), ('colour', 'wht', 'White', 0.00, 2),
                 ('storage', '128', '128 GB', 0.00, 1), ('storage', '256', '256 GB', 100.00, 2),
                 ('accessories', 'case', 'Protective case', 19.90, 1), ('accessories', 'charger', 'Fast charger', 24.90, 2),
                 ('accessories', 'earbuds', 'Earbuds', 49.00, 3)) AS v(grp, code, name, delta, pos)
    JOIN orderly.option_groups g ON g.code = v.grp
    JOIN orderly.products p ON p.id = g.product_id AND p.code IN ('PHN-X1', 'PHN-S2')
    ON CONFLICT ON CONSTRAINT option_values_group_code_key DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT; entity := 'option_values'; added := n; total := total + n; RETURN NEXT;

    INSERT INTO orderly.skus (product_id, code, options, stock_on_hand)
    SELECT p.id, p.code || '-' || s.storage || '-' || upper(c.colour), jsonb_build_object('colour', c.colour, 'storage', s.storage),
           CASE WHEN p.code = 'PHN-X1' THEN 25 ELSE 40 END
    FROM orderly.products p
    CROSS JOIN (VALUES ('blk'), ('wht')) AS c(colour)
    CROSS JOIN (VALUES ('128'), ('256')) AS s(storage)
    WHERE p.code IN ('PHN-X1', 'PHN-S2')
    UNION ALL
    SELECT p.id, p.code, '{}', 500 FROM orderly.products p WHERE p.code = 'ACC-CABLE'
    ON CONFLICT (code) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT; entity := 'skus'; added := n; total := total + n; RETURN NEXT;

    INSERT INTO orderly.bundle_items (bundle_product_id, sku_id, qty)
    SELECT b.id, s.id, v.qty
    FROM (VALUES ('PHN-X1-128-BLK', 1), ('ACC-CABLE', 2)) AS v(sku, qty)
    JOIN orderly.skus s ON s.code = v.sku
    JOIN orderly.products b ON b.code = 'BND-X1-START'
    ON CONFLICT ON CONSTRAINT bundle_items_pkey DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT; entity := 'bundle_items'; added := n; total := total + n; RETURN NEXT;

    -- Pricing: a dealer price list entry, a tier example, buy 3 get 1, a coupon, tax rates.
    INSERT INTO orderly.segment_prices (segment, product_id, unit_price)
    SELECT 'dealer', p.id, 629.00 FROM orderly.products p WHERE p.code = 'PHN-X1'
    ON CONFLICT ON CONSTRAINT segment_prices_key DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT; entity := 'segment_prices'; added := n; total := total + n; RETURN NEXT;

    INSERT INTO orderly.price_tiers (product_id, segment, min_qty, percent_off)
    SELECT p.id, NULL, v.min_qty, v.pct FROM orderly.products p, (VALUES (10, 5.00), (50, 10.00)) AS v(min_qty, pct)
    WHERE p.code = 'PHN-S2'
    ON CONFLICT ON CONSTRAINT price_tiers_key DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT; entity := 'price_tiers'; added := n; total := total + n; RETURN NEXT;

    -- Rules have no natural key: the demo ones are recognised by name.
    INSERT INTO orderly.pricing_rules (name, kind, value, buy_qty, free_qty, product_id, priority)
    SELECT v.name, v.kind, v.value, v.buy, v.get, (SELECT p.id FROM orderly.products p WHERE p.code = v.product), v.priority
    FROM (VALUES ('Demo: cables buy 3 get 1', 'buy_x_get_y', NULL::numeric, 3, 1, 'ACC-CABLE', 50),
                 ('Demo: coupon WELCOME10, 10 % off', 'percent', 10.00, NULL, NULL, NULL, 200)) AS v(name, kind, value, buy, get, product, priority)
    WHERE NOT EXISTS (SELECT 1 FROM orderly.pricing_rules r WHERE r.name = v.name);
    GET DIAGNOSTICS n = ROW_COUNT; entity := 'pricing_rules'; added := n; total := total + n; RETURN NEXT;

    INSERT INTO orderly.coupons (code, max_uses, max_uses_per_customer)
    VALUES ('WELCOME10', 1000, 1)
    ON CONFLICT ((lower(code))) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT; entity := 'coupons'; added := n; total := total + n; RETURN NEXT;
    INSERT INTO orderly.coupon_rules (coupon_id, rule_id)
    SELECT c.id, r.id FROM orderly.coupons c, orderly.pricing_rules r
    WHERE c.code = 'WELCOME10' AND r.name = 'Demo: coupon WELCOME10, 10 % off'
    ON CONFLICT ON CONSTRAINT coupon_rules_pkey DO NOTHING;

    INSERT INTO orderly.tax_rates (country, region, rate, name)
    VALUES ('DE', NULL, 19, 'DE VAT'), ('FR', NULL, 20, 'FR TVA'), ('AT', NULL, 20, 'AT USt'),
           ('US', NULL, 0, 'US (no federal sales tax)'), ('US', 'CA', 7.25, 'California sales tax'),
           ('US', 'NY', 4, 'New York sales tax')
    ON CONFLICT ON CONSTRAINT tax_rates_key DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT; entity := 'tax_rates'; added := n; total := total + n; RETURN NEXT;

    -- Carriers (admin.set_carrier manages them; R__190_shipments.sql).
    INSERT INTO orderly.carriers (code, name, tracking_url_template)
    VALUES ('dhl', 'DHL Paket', 'https://www.dhl.com/de-en/home/tracking/tracking-parcel.html?submit=1&tracking-id={tracking_no}'),
           ('ups', 'UPS', 'https://www.ups.com/track?loc=en_US&tracknum={tracking_no}'),
           ('dpd', 'DPD', 'https://tracking.dpd.de/status/en_US/parcel/{tracking_no}')
    ON CONFLICT (code) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT; entity := 'carriers'; added := n; total := total + n; RETURN NEXT;

    IF total > 0 THEN
        PERFORM orderly.audit(NULL, 'catalog.demo_load', 'catalog', NULL, NULL, jsonb_build_object('rows_added', total),
                              actor_kind => 'admin_sql');
    END IF;
END
$$;

COMMENT ON FUNCTION admin.load_demo_catalog() IS 'Load the demo catalog, prices, coupon WELCOME10, tax rates and carriers (idempotent)';
