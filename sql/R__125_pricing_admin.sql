-- Orderly: pricing management (pricing.manage): PRICE SET (segment prices and quantity bands),
-- RULE CREATE/UPDATE (discount rules), COUPON CREATE and TAX SET. They write the rows that the
-- pricing engine (R__120_pricing.sql, which describes how they combine) reads; every change is
-- audited. They use the catalog's helpers (R__110_catalog.sql), never the engine.

CREATE OR REPLACE FUNCTION orderly.arg_segment(args jsonb, key text) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v text := lower(btrim(orderly.arg_text(args, key)));
BEGIN
    IF coalesce(v, '') = '' THEN
        RETURN NULL;
    END IF;
    IF v !~ '^[a-z][a-z0-9_]{0,31}$' THEN
        RAISE EXCEPTION 'invalid %: use 1 to 32 lowercase letters, digits or "_", starting with a letter', key
            USING ERRCODE = 'OL400';
    END IF;
    RETURN v;
END
$$;

CREATE OR REPLACE FUNCTION orderly.rule_doc(rule_id bigint) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object(
        'id', r.id, 'name', r.name, 'kind', r.kind, 'value', r.value, 'buy', r.buy_qty, 'get', r.free_qty,
        'product', (SELECT p.code FROM orderly.products p WHERE p.id = r.product_id),
        'category', (SELECT c.code FROM orderly.categories c WHERE c.id = r.category_id),
        'segment', r.segment, 'currency', r.currency,
        'starts_at', orderly.json_time(r.starts_at), 'ends_at', orderly.json_time(r.ends_at),
        'priority', r.priority, 'exclusive', r.exclusive, 'active', r.active,
        'coupons', (SELECT coalesce(jsonb_agg(c.code ORDER BY c.code), '[]')
                    FROM orderly.coupon_rules cr JOIN orderly.coupons c ON c.id = cr.coupon_id WHERE cr.rule_id = r.id))
    FROM orderly.pricing_rules r WHERE r.id = $1
$$;

-- PRICE SET product=CODE [segment=standard] [sku=CODE] price=N      a segment price
-- PRICE SET product=CODE [segment=]         min_qty=N percent=P     a tier band (segment omitted:
--                                                                  the bands for every segment)
-- remove=true deletes the price or band instead.
CREATE OR REPLACE FUNCTION api.price_set(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u         orderly.users := orderly.begin_command('PRICE SET', price_set.actor, price_set.args);
    v_replay  json := orderly.replay(u, price_set.args);
    p         orderly.products;
    v_segment text := orderly.arg_segment(price_set.args, 'segment');
    v_sku     text := orderly.arg_code(price_set.args, 'sku');
    v_price   numeric := orderly.check_price(orderly.arg_numeric(price_set.args, 'price'), 'price');
    v_min     integer := orderly.arg_int(price_set.args, 'min_qty');
    v_percent numeric := orderly.arg_numeric(price_set.args, 'percent');
    v_remove  boolean := coalesce(orderly.arg_bool(price_set.args, 'remove'), false);
    v_sku_id  bigint;
    v_before  jsonb;
    v_after   jsonb;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    p := orderly.product_for_update(orderly.arg_code(price_set.args, 'product', true));
    IF v_min IS NULL AND v_percent IS NULL THEN
        -- A segment price.
        IF v_price IS NULL AND NOT v_remove THEN
            RAISE EXCEPTION 'price is required (or min_qty and percent for a tier band)' USING ERRCODE = 'OL400';
        END IF;
        v_segment := coalesce(v_segment, 'standard');
        IF v_sku IS NOT NULL THEN
            SELECT s.id INTO v_sku_id FROM orderly.skus s WHERE s.code = v_sku AND s.product_id = p.id;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'unknown SKU "%" of %', v_sku, p.code USING ERRCODE = 'OL404';
            END IF;
        END IF;
        SELECT to_jsonb(x) - 'updated_at' INTO v_before FROM orderly.segment_prices x
        WHERE x.segment = v_segment AND x.product_id = p.id AND x.sku_id IS NOT DISTINCT FROM v_sku_id;
        IF v_remove THEN
            DELETE FROM orderly.segment_prices x
            WHERE x.segment = v_segment AND x.product_id = p.id AND x.sku_id IS NOT DISTINCT FROM v_sku_id;
        ELSE
            INSERT INTO orderly.segment_prices (segment, product_id, sku_id, unit_price)
            VALUES (v_segment, p.id, v_sku_id, v_price)
            ON CONFLICT ON CONSTRAINT segment_prices_key DO UPDATE SET unit_price = excluded.unit_price, updated_at = now()
            RETURNING to_jsonb(segment_prices) - 'updated_at' INTO v_after;
        END IF;
        v_after := CASE WHEN v_after IS NULL THEN NULL ELSE v_after || jsonb_build_object('product', p.code, 'sku', v_sku) END;
        PERFORM orderly.audit(u.id, CASE WHEN v_remove THEN 'price.remove' ELSE 'price.set' END, 'segment_price',
                              concat_ws('/', v_segment, p.code, v_sku), v_before, v_after);
        RETURN NEXT orderly.remember(u, args, jsonb_build_object(
            'product', p.code, 'segment', v_segment, 'sku', v_sku,
            'price', CASE WHEN v_remove THEN NULL ELSE v_price END, 'removed', v_remove)::json);
        RETURN;
    END IF;

    -- A tier band.
    IF v_price IS NOT NULL OR v_sku IS NOT NULL THEN
        RAISE EXCEPTION 'a tier band takes min_qty and percent, not price or sku' USING ERRCODE = 'OL400';
    END IF;
    IF v_min IS NULL OR v_min NOT BETWEEN 2 AND 100000 THEN
        RAISE EXCEPTION 'min_qty must be between 2 and 100000' USING ERRCODE = 'OL400';
    END IF;
    IF NOT v_remove AND (v_percent IS NULL OR v_percent <= 0 OR v_percent > 100 OR v_percent <> round(v_percent, 2)) THEN
        RAISE EXCEPTION 'percent must be above 0 and at most 100, with at most 2 decimals' USING ERRCODE = 'OL400';
    END IF;
    SELECT to_jsonb(x) - 'updated_at' INTO v_before FROM orderly.price_tiers x
    WHERE x.product_id = p.id AND x.segment IS NOT DISTINCT FROM v_segment AND x.min_qty = v_min;
    IF v_remove THEN
        DELETE FROM orderly.price_tiers x
        WHERE x.product_id = p.id AND x.segment IS NOT DISTINCT FROM v_segment AND x.min_qty = v_min;
    ELSE
        INSERT INTO orderly.price_tiers (product_id, segment, min_qty, percent_off)
        VALUES (p.id, v_segment, v_min, v_percent)
        ON CONFLICT ON CONSTRAINT price_tiers_key DO UPDATE SET percent_off = excluded.percent_off, updated_at = now()
        RETURNING to_jsonb(price_tiers) - 'updated_at' INTO v_after;
    END IF;
    PERFORM orderly.audit(u.id, CASE WHEN v_remove THEN 'price_tier.remove' ELSE 'price_tier.set' END, 'price_tier',
                          concat_ws('/', coalesce(v_segment, '*'), p.code, v_min), v_before, v_after);
    RETURN NEXT orderly.remember(u, args, jsonb_build_object(
        'product', p.code, 'segment', v_segment, 'min_qty', v_min,
        'percent', CASE WHEN v_remove THEN NULL ELSE v_percent END, 'removed', v_remove)::json);
END
$$;

SELECT orderly.register_command('PRICE SET', 'api.price_set', 'pricing.manage',
    arguments  => 'product:code! segment:code sku:code price:number min_qty:integer percent:number remove:boolean',
    usage      => 'PRICE SET product= [segment=standard] [sku=] price=N | PRICE SET product= [segment=] min_qty=N percent=P [remove=true]',
    summary    => 'Set a segment price for a product or SKU, or a graduated quantity band (percent off from min_qty).',
    changes    => true);

-- Checks a rule's figures and window as a whole (for create and update alike).
CREATE OR REPLACE FUNCTION orderly.check_rule(r orderly.pricing_rules) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF r.kind NOT IN ('percent', 'fixed', 'buy_x_get_y') OR r.kind IS NULL THEN
        RAISE EXCEPTION 'kind must be percent, fixed or buy_x_get_y' USING ERRCODE = 'OL400';
    END IF;
    IF r.kind = 'percent' AND (r.value IS NULL OR r.value <= 0 OR r.value > 100) THEN
        RAISE EXCEPTION 'a percent rule needs a value above 0 and at most 100' USING ERRCODE = 'OL400';
    END IF;
    IF r.kind = 'fixed' AND (r.value IS NULL OR r.value <= 0) THEN
        RAISE EXCEPTION 'a fixed rule needs a positive value (amount off per unit)' USING ERRCODE = 'OL400';
    END IF;
    IF r.kind IN ('percent', 'fixed') AND (r.buy_qty IS NOT NULL OR r.free_qty IS NOT NULL) THEN
        RAISE EXCEPTION 'buy and get are only for buy_x_get_y rules' USING ERRCODE = 'OL400';
    END IF;
    IF r.kind = 'buy_x_get_y' AND (r.value IS NOT NULL OR r.buy_qty IS NULL OR r.free_qty IS NULL
                                   OR r.buy_qty NOT BETWEEN 1 AND 10000 OR r.free_qty NOT BETWEEN 1 AND 10000) THEN
        RAISE EXCEPTION 'a buy_x_get_y rule needs buy and get (1 to 10000) and no value' USING ERRCODE = 'OL400';
    END IF;
    IF r.starts_at >= r.ends_at THEN
        RAISE EXCEPTION 'starts must be before ends' USING ERRCODE = 'OL400';
    END IF;
    IF r.priority NOT BETWEEN 0 AND 1000000 THEN
        RAISE EXCEPTION 'priority must be between 0 and 1000000' USING ERRCODE = 'OL400';
    END IF;
END
$$;

-- RULE CREATE name="..." kind=percent|fixed|buy_x_get_y [value=N] [buy=X get=Y] [product=CODE]
--   [category=CODE] [segment=name] [starts=date] [ends=date] [priority=100] [exclusive=false]
CREATE OR REPLACE FUNCTION api.rule_create(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.begin_command('RULE CREATE', rule_create.actor, rule_create.args);
    v_replay json := orderly.replay(u, rule_create.args);
    r        orderly.pricing_rules;
    v_prod   text := orderly.arg_code(rule_create.args, 'product');
    v_cat    text := orderly.arg_code(rule_create.args, 'category');
    v_cur    text := orderly.check_currency(orderly.arg_text(rule_create.args, 'currency'));
    v_doc    jsonb;
    v_pcur   text;   -- the product's currency, for a rule of one product
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    r.name := orderly.check_catalog_name(orderly.arg_text(rule_create.args, 'name', true), 'name');
    r.kind := lower(btrim(orderly.arg_text(rule_create.args, 'kind', true)));
    r.value := orderly.check_price(orderly.arg_numeric(rule_create.args, 'value'), 'value');
    r.buy_qty := orderly.arg_int(rule_create.args, 'buy');
    r.free_qty := orderly.arg_int(rule_create.args, 'get');
    r.segment := orderly.arg_segment(rule_create.args, 'segment');
    r.starts_at := orderly.arg_time(rule_create.args, 'starts');
    r.ends_at := orderly.arg_time(rule_create.args, 'ends');
    r.priority := coalesce(orderly.arg_int(rule_create.args, 'priority'), 100);
    r.exclusive := coalesce(orderly.arg_bool(rule_create.args, 'exclusive'), false);
    PERFORM orderly.check_rule(r);
    IF v_prod IS NOT NULL THEN
        SELECT x.id, x.currency INTO r.product_id, v_pcur FROM orderly.products x WHERE x.code = v_prod FOR KEY SHARE;
        IF r.product_id IS NULL THEN
            RAISE EXCEPTION 'unknown product "%"', v_prod USING ERRCODE = 'OL404';
        END IF;
        IF v_cur <> v_pcur THEN
            RAISE EXCEPTION 'product % is priced in %: a rule for it is in % (or names no currency)', v_prod, v_pcur, v_pcur
                USING ERRCODE = 'OL400';
        END IF;
    END IF;
    -- A fixed amount is in a currency: the product's, else the one given, else EUR (as a product
    -- created without one). Another kind applies to every currency unless one is given.
    r.currency := CASE WHEN r.kind = 'fixed' THEN coalesce(v_cur, v_pcur, 'EUR') ELSE v_cur END;
    IF v_cat IS NOT NULL THEN
        r.category_id := (orderly.category_by_code(v_cat)).id;
    END IF;
    INSERT INTO orderly.pricing_rules (name, kind, value, buy_qty, free_qty, product_id, category_id, segment,
                                       starts_at, ends_at, priority, exclusive, currency)
    VALUES (r.name, r.kind, r.value, r.buy_qty, r.free_qty, r.product_id, r.category_id, r.segment,
            r.starts_at, r.ends_at, r.priority, r.exclusive, r.currency)
    RETURNING id INTO r.id;
    v_doc := orderly.rule_doc(r.id);
    PERFORM orderly.audit(u.id, 'rule.create', 'pricing_rule', r.id::text, NULL, v_doc);
    RETURN NEXT orderly.remember(u, args, v_doc::json);
END
$$;

SELECT orderly.register_command('RULE CREATE', 'api.rule_create', 'pricing.manage',
    arguments  => 'name:text! kind:text! value:number buy:integer get:integer product:code category:code segment:code currency:code starts:timestamp ends:timestamp priority:integer exclusive:boolean',
    usage      => 'RULE CREATE name= kind=percent|fixed|buy_x_get_y [value=] [buy= get=] [product=] [category=] [segment=] [currency=] [starts=] [ends=] [priority=100] [exclusive=false]',
    summary    => 'Create a discount rule; lower priority applies first, an exclusive rule only alone; a fixed rule''s amount is in its currency (the product''s, else EUR) and applies to products priced in it.',
    changes    => true);

-- RULE UPDATE id [name=] [value=] [buy=] [get=] [starts=] [ends=] [priority=] [exclusive=] [active=]
-- A blank starts/ends ("") removes that bound. Scope and kind are fixed: create a new rule instead.
CREATE OR REPLACE FUNCTION api.rule_update(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.begin_command('RULE UPDATE', rule_update.actor, rule_update.args);
    v_replay json := orderly.replay(u, rule_update.args);
    v_id     bigint := orderly.arg_bigint(rule_update.args, 'id', true);
    r        orderly.pricing_rules;
    v_before jsonb;
    v_after  jsonb;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    SELECT * INTO r FROM orderly.pricing_rules x WHERE x.id = v_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown rule %', v_id USING ERRCODE = 'OL404';
    END IF;
    v_before := orderly.rule_doc(r.id);
    IF rule_update.args ? 'name' THEN
        r.name := orderly.check_catalog_name(orderly.arg_text(rule_update.args, 'name', true), 'name');
    END IF;
    IF rule_update.args ? 'value' THEN
        r.value := orderly.check_price(orderly.arg_numeric(rule_update.args, 'value', true), 'value');
    END IF;
    IF rule_update.args ? 'buy' THEN
        r.buy_qty := orderly.arg_int(rule_update.args, 'buy', true);
    END IF;
    IF rule_update.args ? 'get' THEN
        r.free_qty := orderly.arg_int(rule_update.args, 'get', true);
    END IF;
    IF rule_update.args ? 'starts' THEN
        r.starts_at := orderly.arg_time(rule_update.args, 'starts');
    END IF;
    IF rule_update.args ? 'ends' THEN
        r.ends_at := orderly.arg_time(rule_update.args, 'ends');
    END IF;
    r.priority := coalesce(orderly.arg_int(rule_update.args, 'priority'), r.priority);
    r.exclusive := coalesce(orderly.arg_bool(rule_update.args, 'exclusive'), r.exclusive);
    r.active := coalesce(orderly.arg_bool(rule_update.args, 'active'), r.active);
    PERFORM orderly.check_rule(r);
    UPDATE orderly.pricing_rules x
    SET name = r.name, value = r.value, buy_qty = r.buy_qty, free_qty = r.free_qty, starts_at = r.starts_at,
        ends_at = r.ends_at, priority = r.priority, exclusive = r.exclusive, active = r.active, updated_at = now()
    WHERE x.id = r.id;
    v_after := orderly.rule_doc(r.id);
    PERFORM orderly.audit(u.id, 'rule.update', 'pricing_rule', r.id::text, v_before, v_after);
    RETURN NEXT orderly.remember(u, args, v_after::json);
END
$$;

SELECT orderly.register_command('RULE UPDATE', 'api.rule_update', 'pricing.manage',
    arguments  => 'id:id! name:text value:number buy:integer get:integer starts:timestamp ends:timestamp priority:integer exclusive:boolean active:boolean',
    positional => '{id}',
    usage      => 'RULE UPDATE id [name=] [value=] [buy=] [get=] [starts=] [ends=] [priority=] [exclusive=] [active=]',
    summary    => 'Change a rule''s figures, window or priority; active=false switches it off.',
    changes    => true);

-- COUPON CREATE code=SPRING10 rules=[id, ...] (or rule=id) [starts=] [ends=] [max_uses=N]
--   [max_uses_per_customer=N]. Its rules then apply only to orders carrying one of their coupons.
CREATE OR REPLACE FUNCTION api.coupon_create(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.begin_command('COUPON CREATE', coupon_create.actor, coupon_create.args);
    v_replay json := orderly.replay(u, coupon_create.args);
    v_code   text := btrim(orderly.arg_text(coupon_create.args, 'code', true));
    v_rules  jsonb := coalesce(orderly.arg_value(coupon_create.args, 'rules'),
                               CASE WHEN orderly.arg_value(coupon_create.args, 'rule') IS NOT NULL
                                    THEN jsonb_build_array(orderly.arg_value(coupon_create.args, 'rule')) END);
    v_starts timestamptz := orderly.arg_time(coupon_create.args, 'starts');
    v_ends   timestamptz := orderly.arg_time(coupon_create.args, 'ends');
    v_max    integer := orderly.arg_int(coupon_create.args, 'max_uses');
    v_maxc   integer := orderly.arg_int(coupon_create.args, 'max_uses_per_customer');
    c        orderly.coupons;
    e        jsonb;
    v_rule   bigint;
    v_doc    jsonb;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    IF v_code !~ '^[A-Za-z0-9][A-Za-z0-9_-]{2,31}$' THEN
        RAISE EXCEPTION 'invalid coupon code: use 3 to 32 letters, digits, "_" or "-"' USING ERRCODE = 'OL400';
    END IF;
    IF v_rules IS NULL OR jsonb_typeof(v_rules) <> 'array' OR jsonb_array_length(v_rules) NOT BETWEEN 1 AND 20 THEN
        RAISE EXCEPTION 'rules must list 1 to 20 rule ids' USING ERRCODE = 'OL400';
    END IF;
    IF v_max < 1 OR v_maxc < 1 THEN
        RAISE EXCEPTION 'max_uses and max_uses_per_customer must be at least 1' USING ERRCODE = 'OL400';
    END IF;
    IF v_starts >= v_ends THEN
        RAISE EXCEPTION 'starts must be before ends' USING ERRCODE = 'OL400';
    END IF;
    IF EXISTS (SELECT 1 FROM orderly.coupons x WHERE lower(x.code) = lower(v_code)) THEN
        RAISE EXCEPTION 'coupon % already exists', v_code USING ERRCODE = 'OL409';
    END IF;
    BEGIN
        INSERT INTO orderly.coupons (code, starts_at, ends_at, max_uses, max_uses_per_customer)
        VALUES (v_code, v_starts, v_ends, v_max, v_maxc)
        RETURNING * INTO c;
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'coupon % already exists', v_code USING ERRCODE = 'OL409';
    END;
    FOR e IN SELECT x FROM jsonb_array_elements(v_rules) x LOOP
        v_rule := orderly.arg_bigint(jsonb_build_object('rule', e), 'rule', true);
        IF NOT EXISTS (SELECT 1 FROM orderly.pricing_rules r WHERE r.id = v_rule FOR KEY SHARE) THEN
            RAISE EXCEPTION 'unknown rule %', v_rule USING ERRCODE = 'OL404';
        END IF;
        INSERT INTO orderly.coupon_rules (coupon_id, rule_id) VALUES (c.id, v_rule)
        ON CONFLICT ON CONSTRAINT coupon_rules_pkey DO NOTHING;
    END LOOP;
    v_doc := jsonb_build_object('code', c.code, 'rules', (SELECT jsonb_agg(cr.rule_id ORDER BY cr.rule_id) FROM orderly.coupon_rules cr WHERE cr.coupon_id = c.id),
                                'starts_at', orderly.json_time(c.starts_at), 'ends_at', orderly.json_time(c.ends_at),
                                'max_uses', c.max_uses, 'max_uses_per_customer', c.max_uses_per_customer, 'used', c.used_count);
    PERFORM orderly.audit(u.id, 'coupon.create', 'coupon', c.code, NULL, v_doc);
    RETURN NEXT orderly.remember(u, args, v_doc::json);
END
$$;

SELECT orderly.register_command('COUPON CREATE', 'api.coupon_create', 'pricing.manage',
    arguments  => 'code:code! rules:array rule:id starts:timestamp ends:timestamp max_uses:integer max_uses_per_customer:integer',
    usage      => 'COUPON CREATE code= rules=[id,...] [starts=] [ends=] [max_uses=] [max_uses_per_customer=]',
    summary    => 'Create a coupon; its rules then apply only to orders that carry it.',
    changes    => true);

-- TAX SET country=DE [region=BY] rate=19 name="VAT"   (rate is a percentage; remove=true deletes)
CREATE OR REPLACE FUNCTION api.tax_set(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u         orderly.users := orderly.begin_command('TAX SET', tax_set.actor, tax_set.args);
    v_replay  json := orderly.replay(u, tax_set.args);
    v_country text := upper(btrim(orderly.arg_text(tax_set.args, 'country', true)));
    v_region  text := nullif(btrim(orderly.arg_text(tax_set.args, 'region')), '');
    v_rate    numeric := orderly.arg_numeric(tax_set.args, 'rate');
    v_name    text := nullif(btrim(orderly.arg_text(tax_set.args, 'name')), '');
    v_remove  boolean := coalesce(orderly.arg_bool(tax_set.args, 'remove'), false);
    v_before  jsonb;
    v_after   jsonb;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    IF v_country !~ '^[A-Z]{2}$' THEN
        RAISE EXCEPTION 'country must be a 2-letter code like DE' USING ERRCODE = 'OL400';
    END IF;
    IF v_region IS NOT NULL AND (length(v_region) > 64 OR v_region ~ '[[:cntrl:]]') THEN
        RAISE EXCEPTION 'region must be at most 64 characters' USING ERRCODE = 'OL400';
    END IF;
    IF NOT v_remove AND (v_rate IS NULL OR v_rate < 0 OR v_rate > 100 OR v_rate <> round(v_rate, 4)) THEN
        RAISE EXCEPTION 'rate must be a percentage from 0 to 100 (at most 4 decimals)' USING ERRCODE = 'OL400';
    END IF;
    IF v_name IS NOT NULL AND (length(v_name) > 100 OR v_name ~ '[[:cntrl:]]') THEN
        RAISE EXCEPTION 'name must be at most 100 characters' USING ERRCODE = 'OL400';
    END IF;
    SELECT to_jsonb(t) - 'updated_at' INTO v_before FROM orderly.tax_rates t
    WHERE t.country = v_country AND lower(t.region) IS NOT DISTINCT FROM lower(v_region)
    FOR UPDATE;
    IF v_remove THEN
        DELETE FROM orderly.tax_rates t WHERE t.id = (v_before ->> 'id')::bigint;
    ELSIF v_before IS NOT NULL THEN
        UPDATE orderly.tax_rates t SET rate = v_rate, name = coalesce(v_name, t.name), updated_at = now()
        WHERE t.id = (v_before ->> 'id')::bigint
        RETURNING to_jsonb(t) - 'updated_at' INTO v_after;
    ELSE
        BEGIN
            INSERT INTO orderly.tax_rates (country, region, rate, name)
            VALUES (v_country, v_region, v_rate, coalesce(v_name, 'Tax ' || concat_ws('-', v_country, v_region)))
            RETURNING to_jsonb(tax_rates) - 'updated_at' INTO v_after;
        EXCEPTION WHEN unique_violation THEN
            RAISE EXCEPTION 'a tax rate for % was set at the same moment; try again', v_country USING ERRCODE = 'OL409';
        END;
    END IF;
    PERFORM orderly.audit(u.id, CASE WHEN v_remove THEN 'tax.remove' ELSE 'tax.set' END, 'tax_rate',
                          concat_ws('-', v_country, v_region), v_before, v_after);
    RETURN NEXT orderly.remember(u, args, jsonb_build_object(
        'country', v_country, 'region', v_region, 'rate', CASE WHEN v_remove THEN NULL ELSE trim_scale(v_rate) END,
        'name', v_after ->> 'name', 'removed', v_remove)::json);
END
$$;

SELECT orderly.register_command('TAX SET', 'api.tax_set', 'pricing.manage',
    arguments  => 'country:code! region:text rate:number name:text remove:boolean',
    usage      => 'TAX SET country=DE [region=] rate=19 [name=] [remove=true]',
    summary    => 'Set the tax percentage of a country or one of its regions (the region wins).',
    changes    => true);
