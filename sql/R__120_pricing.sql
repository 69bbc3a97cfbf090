-- Orderly: the pricing engine (one function prices a whole order: quotes, drafts and submits
-- all call orderly.price_order), its answer as clients read it (orderly.priced_doc and
-- orderly.explanation_doc, which the order documents use too), PRODUCT PRICE (the engine on one
-- line), and coupon redeem/release. Formulas are evaluated by R__105_formula.sql; the rows read
-- here are written by R__125_pricing_admin.sql.
--
-- HOW A LINE IS PRICED (evaluation order; every step is one entry of the line's "explanation"):
--   1. Base unit price, the most specific of:
--        a formula (custom products that have one; R__105_formula.sql, never run as SQL),
--        the customer segment's price for the SKU (it replaces the base price AND the deltas of
--          the SKU's variant options: it is the price of that SKU),
--        the segment's price for the product,
--        the product's base_price.
--      A line without a customer is priced for segment 'standard'.
--   2. + each chosen option's price_delta (variant ones skipped under a SKU price).
--      = list_price (unit), rounded half-up to cents; a negative unit price is refused.
--      gross = list_price * qty.
--   3. Quantity tiers, GRADUATED PER BAND: each unit gets the percent_off of the band it falls
--      in (bands of the customer's segment if it has any, else the bands for all segments;
--      units below the lowest band pay the list price). Example with bands 10+ 5 % and 50+ 10 %:
--      qty 60 = units 1-9 at list, 10-49 at -5 %, 50-60 at -10 %. One amount per band, rounded.
--   4. Discount rules: the active rules in their date window (starts_at <= at < ends_at) whose
--      scope matches (product, category incl. sub-categories, segment), plus the rules of the
--      order's coupon, sorted by priority (lower first) then id. Walking that list:
--        - an exclusive rule applies only if no rule has applied to this line yet, and then it
--          is the only one (the walk stops); if another rule applied first it is skipped;
--        - stackable rules apply one after another on the running amount, so percentages
--          compound (10 % then 5 % of 100.00 = 85.50);
--        - percent: running * value %; fixed: value per unit, at most the running amount;
--          buy_x_get_y: free = floor(qty / (x + y)) * y units at the running average unit price
--          (a rule that frees no unit does not count as applied);
--        - tiers (step 3) are part of the price list, not rules: they never block an exclusive rule.
--   5. A manual unit_price (needs can_override and a reason) replaces steps 3-4: net = unit_price
--      * qty, discount = gross - net; the line is flagged "override": true.
--   6. Tax on the line's net, by the ship-to address (ship_to, else the customer's default
--      address): the tax rate of its country and region if there is one, else of its country;
--      no address or no rate: tax 0, and the explanation says why. Rounded per line.
-- ROUNDING: half-up (numeric round) to cents, at: the unit list price, each tier band amount,
-- each rule amount, the override net, each line's tax. Totals are sums of rounded line figures:
-- subtotal = sum(gross), discount_total = sum(discount), tax_total = sum(tax),
-- total = subtotal - discount_total + tax_total.
-- price_order never consumes a coupon (coupon_redeem does, at submit); it only refuses one that
-- is unknown (OL404), inactive, outside its window or used up (OL409).
-- Errors: OL400 invalid input, OL404 unknown product/SKU/customer/address/coupon, OL409 an
-- inactive product or SKU (exists, cannot be sold now), OL403 a manual price without the right.
-- Errors about one line start with "line N: ".

-- Pricing helpers ---------------------------------------------------------------------------------

-- No SET search_path (round is pg_catalog's), so that it is inlined into its callers.
CREATE OR REPLACE FUNCTION orderly.money(value numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT round($1, 2)   -- numeric round: half away from zero, i.e. half-up for amounts >= 0
$$;

-- The tax of a place: the region's row if there is one, else the country's; NULL if neither.
-- plpgsql: its plan is kept for the session (a sql function is planned at every call).
CREATE OR REPLACE FUNCTION orderly.tax_rate_for(country text, region text) RETURNS orderly.tax_rates
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r orderly.tax_rates;
BEGIN
    SELECT t.* INTO r FROM orderly.tax_rates t
    WHERE t.country = upper(tax_rate_for.country) AND (t.region IS NULL OR lower(t.region) = lower(tax_rate_for.region))
    ORDER BY t.region IS NULL
    LIMIT 1;
    RETURN r;
END
$$;

-- The tax step of every line of one order, from where it ships to (place: {"country", "region",
-- "address_id"} or NULL).
CREATE OR REPLACE FUNCTION orderly.tax_context(place jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t orderly.tax_rates;
BEGIN
    IF place IS NULL THEN
        RETURN jsonb_build_object('rate', 0, 'name', NULL, 'place', NULL,
                                  'text', 'no ship-to address: no tax');
    END IF;
    t := orderly.tax_rate_for(place ->> 'country', place ->> 'region');
    IF t.id IS NULL THEN
        RETURN jsonb_build_object('rate', 0, 'name', NULL, 'place', place,
                                  'text', format('no tax rate for %s: no tax',
                                                 concat_ws('/', place ->> 'country', place ->> 'region')));
    END IF;
    RETURN jsonb_build_object('rate', trim_scale(t.rate), 'name', t.name, 'tax_rate_id', t.id, 'place', place,
                              'text', format('%s %s %%', t.name, trim_scale(t.rate)));
END
$$;

-- A coupon as price_order sees it: it must exist, be active, be inside its window at "at" and
-- have uses left (in total and, with a customer, for that customer).
CREATE OR REPLACE FUNCTION orderly.coupon_usable(code text, customer_id bigint, at timestamptz) RETURNS orderly.coupons
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c orderly.coupons;
BEGIN
    SELECT * INTO c FROM orderly.coupons x WHERE lower(x.code) = lower(btrim(coupon_usable.code));
    PERFORM orderly.coupon_check(c, coupon_usable.code, coupon_usable.customer_id, coupon_usable.at);
    RETURN c;
END
$$;

CREATE OR REPLACE FUNCTION orderly.coupon_check(c orderly.coupons, code text, customer_id bigint, at timestamptz) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_name text := orderly.for_message(btrim(coupon_check.code));
BEGIN
    IF c.id IS NULL THEN
        RAISE EXCEPTION 'unknown coupon "%"', v_name USING ERRCODE = 'OL404';
    END IF;
    IF NOT c.active THEN
        RAISE EXCEPTION 'coupon "%" is no longer valid', v_name USING ERRCODE = 'OL409';
    END IF;
    IF c.starts_at > coupon_check.at THEN
        RAISE EXCEPTION 'coupon "%" is not valid yet', v_name USING ERRCODE = 'OL409';
    END IF;
    IF c.ends_at <= coupon_check.at THEN
        RAISE EXCEPTION 'coupon "%" has expired', v_name USING ERRCODE = 'OL409';
    END IF;
    IF c.used_count >= c.max_uses THEN
        RAISE EXCEPTION 'coupon "%" has been used up', v_name USING ERRCODE = 'OL409';
    END IF;
    IF coupon_check.customer_id IS NOT NULL AND c.max_uses_per_customer IS NOT NULL
       AND (SELECT count(*) FROM orderly.coupon_redemptions r
            WHERE r.coupon_id = c.id AND r.customer_id = coupon_check.customer_id AND r.released_at IS NULL)
           >= c.max_uses_per_customer THEN
        RAISE EXCEPTION 'coupon "%" has been used up for this customer', v_name USING ERRCODE = 'OL409';
    END IF;
END
$$;

-- The explanation's steps, built in one place for both ways of pricing lines (price_line, one
-- line at a time, and price_lines_set, a whole order at once). No SET search_path (every name is
-- qualified or pg_catalog's) and STABLE like format(), so that they are inlined into their
-- callers (an IMMUTABLE one that calls format() is not).

-- Step 1: the base unit price and where it came from (source: segment_sku_price, segment_price or
-- base_price; a formula's step is price_line's own).
CREATE OR REPLACE FUNCTION orderly.base_step(source text, segment text, sku_code text, amount numeric) RETURNS jsonb
LANGUAGE sql STABLE
AS $$
    SELECT jsonb_build_object('step', 'base', 'amount', $4)
        || CASE $1
               WHEN 'segment_sku_price' THEN jsonb_build_object('source', $1, 'segment', $2,
                   'text', format('%s price for SKU %s: %s (variant options included)', $2, $3, $4))
               WHEN 'segment_price' THEN jsonb_build_object('source', $1, 'segment', $2, 'text', format('%s price list: %s', $2, $4))
               ELSE jsonb_build_object('source', 'base_price', 'text', format('base price: %s', $4)) END
$$;

-- Step 2, one chosen option value.
CREATE OR REPLACE FUNCTION orderly.option_step(g orderly.option_groups, ov orderly.option_values) RETURNS jsonb
LANGUAGE sql STABLE
AS $$
    SELECT jsonb_build_object('step', 'option', 'group', ($1).code, 'value', ($2).code, 'name', ($2).name,
                              'variant', ($1).variant, 'delta', ($2).price_delta,
                              'text', format('%s %s: %s', ($1).name, ($2).name,
                                             CASE WHEN ($2).price_delta >= 0 THEN '+' ELSE '' END || ($2).price_delta))
$$;

-- A variant option's step under the SKU's own segment price, which includes its delta.
CREATE OR REPLACE FUNCTION orderly.included_in_sku_price(step jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE
AS $$
    SELECT $1 || jsonb_build_object('delta', 0, 'text', ($1 ->> 'text') || ' (included in the SKU price)')
$$;

-- The unit list price times the quantity.
CREATE OR REPLACE FUNCTION orderly.list_step(unit numeric, qty integer) RETURNS jsonb
LANGUAGE sql STABLE
AS $$
    SELECT jsonb_build_object('step', 'list_price', 'unit', $1, 'qty', $2, 'amount', $1 * $2,
                              'text', format('list price %s x %s = %s', $1, $2, $1 * $2))
$$;

-- Step 5: a manual unit price (rounded) instead of tiers and rules.
CREATE OR REPLACE FUNCTION orderly.override_step(unit numeric, qty integer, gross numeric, reason text) RETURNS jsonb
LANGUAGE sql STABLE
AS $$
    SELECT jsonb_build_object('step', 'override', 'unit_price', $1, 'reason', $4, 'amount', $1 * $2 - $3,
                              'text', format('manual price %s per unit (tiers and discounts not applied): %s', $1, $4))
$$;

-- Step 6 (tax: from tax_context).
CREATE OR REPLACE FUNCTION orderly.tax_step(tax jsonb, amount numeric) RETURNS jsonb
LANGUAGE sql STABLE
AS $$
    SELECT jsonb_build_object('step', 'tax', 'rate', ($1 ->> 'rate')::numeric, 'name', $1 -> 'name', 'amount', $2, 'text', $1 ->> 'text')
        || CASE WHEN $1 ? 'place' THEN jsonb_build_object('place', $1 -> 'place') ELSE '{}' END
$$;

-- A bundle's components as a priced line lists them.
CREATE OR REPLACE FUNCTION orderly.bundle_components(bundle_product_id bigint) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(jsonb_agg(jsonb_build_object('sku', x.code, 'sku_id', x.id, 'qty', bi.qty) ORDER BY x.code), '[]')
    FROM orderly.bundle_items bi JOIN orderly.skus x ON x.id = bi.sku_id
    WHERE bi.bundle_product_id = $1
$$;

-- A priced line, without its number (the caller puts it first). plpgsql: its arguments are
-- expressions, which SQL function inlining would evaluate once per use. Its one expression has
-- no sub-SELECT (the components are a function's): with one, PostgreSQL planned it again at
-- every call (a plan for the given product, without the bundle's query, always looked cheaper
-- than a plan for any product), five times per five-line order.
CREATE OR REPLACE FUNCTION orderly.priced_line(p orderly.products, sku_code text, sku_id bigint, qty integer, options jsonb,
                                               params jsonb, list_price numeric, steps jsonb, net numeric, tax jsonb,
                                               tax_amount numeric, override boolean) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN jsonb_build_object(
        'product', p.code, 'product_id', p.id, 'name', p.name, 'kind', p.kind, 'currency', p.currency,
        'sku', sku_code, 'sku_id', sku_id, 'qty', qty,
        'options', options, 'params', params,
        'list_price', list_price, 'explanation', steps,
        'gross', list_price * qty, 'discount', list_price * qty - net, 'net', net,
        'tax_rate', (tax ->> 'rate')::numeric, 'tax', tax_amount,
        'override', override,
        'components', CASE WHEN p.kind = 'bundle' THEN orderly.bundle_components(p.id) END);
END
$$;

-- Which product/SKU a line means. Returns {"product": products row, "sku": skus row or null}.
-- sold: the line is one a submitted order has already (see price_lines): its product and SKU are
-- priced even if they are no longer sold.
DROP FUNCTION IF EXISTS orderly.line_item(jsonb);
CREATE OR REPLACE FUNCTION orderly.line_item(line jsonb, sold boolean DEFAULT false) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_sku_code  text := upper(btrim(orderly.arg_text(line, 'sku')));
    v_prod_code text := upper(btrim(orderly.arg_text(line, 'product')));
    v_part      text;
    s           orderly.skus;
    p           orderly.products;
BEGIN
    IF coalesce(v_sku_code, '') = '' AND coalesce(v_prod_code, '') = '' THEN
        RAISE EXCEPTION 'sku or product is required' USING ERRCODE = 'OL400';
    END IF;
    IF coalesce(v_sku_code, '') <> '' THEN
        SELECT * INTO s FROM orderly.skus x WHERE x.code = v_sku_code;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'unknown SKU "%"', orderly.for_message(v_sku_code) USING ERRCODE = 'OL404';
        END IF;
        SELECT * INTO p FROM orderly.products x WHERE x.id = s.product_id;
        IF coalesce(v_prod_code, '') <> '' AND v_prod_code <> p.code THEN
            RAISE EXCEPTION 'SKU % belongs to product %, not %', s.code, p.code, orderly.for_message(v_prod_code)
                USING ERRCODE = 'OL400';
        END IF;
    ELSE
        SELECT * INTO p FROM orderly.products x WHERE x.code = v_prod_code;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'unknown product "%"', orderly.for_message(v_prod_code) USING ERRCODE = 'OL404';
        END IF;
    END IF;
    IF NOT p.active AND NOT sold THEN
        RAISE EXCEPTION 'product % is not available', p.code USING ERRCODE = 'OL409';
    END IF;
    IF s.id IS NOT NULL AND NOT s.active AND NOT sold THEN
        RAISE EXCEPTION 'SKU % is not available', s.code USING ERRCODE = 'OL409';
    END IF;
    -- A bundle ships its parts: one taken off sale (its SKU or its product) stops the bundle's
    -- sales too, as BUNDLE CREATE refuses it.
    IF p.kind = 'bundle' AND NOT sold THEN
        SELECT k.code INTO v_part FROM orderly.bundle_items bi JOIN orderly.skus k ON k.id = bi.sku_id
        JOIN orderly.products kp ON kp.id = k.product_id
        WHERE bi.bundle_product_id = p.id AND NOT (k.active AND kp.active) ORDER BY k.code LIMIT 1;
        IF v_part IS NOT NULL THEN
            RAISE EXCEPTION 'bundle %: its part % is not available', p.code, v_part USING ERRCODE = 'OL409';
        END IF;
    END IF;
    RETURN jsonb_build_object('product', to_jsonb(p), 'sku', CASE WHEN s.id IS NULL THEN NULL ELSE to_jsonb(s) END);
END
$$;

-- The line's options against the product's groups. sku_options (the SKU's variant choice, or
-- NULL) fills in the variant groups. Returns {"chosen": {group: value | [values]},
-- "variant": {group: value}, "steps": [option steps], "delta": sum, "variant_delta": sum}.
-- sold: as for line_item, values no longer offered are priced too.
DROP FUNCTION IF EXISTS orderly.line_options(orderly.products, jsonb, jsonb);
CREATE OR REPLACE FUNCTION orderly.line_options(p orderly.products, given jsonb, sku_options jsonb, sold boolean DEFAULT false) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    g         orderly.option_groups;
    ov        orderly.option_values;
    k         text;
    v         jsonb;
    v_codes   text[];
    c         text;
    v_chosen  jsonb := '{}';
    v_variant jsonb := '{}';
    v_steps   jsonb := '[]';
    v_delta   numeric := 0;
    v_vdelta  numeric := 0;
BEGIN
    given := coalesce(given, '{}');
    IF jsonb_typeof(given) <> 'object' THEN
        RAISE EXCEPTION 'options must be an object like {"colour": "black"}' USING ERRCODE = 'OL400';
    END IF;
    FOR k IN SELECT jsonb_object_keys(given) LOOP
        IF NOT EXISTS (SELECT 1 FROM orderly.option_groups x WHERE x.product_id = p.id AND x.code = lower(k)) THEN
            RAISE EXCEPTION 'unknown option "%" for %', orderly.for_message(k), p.code USING ERRCODE = 'OL400';
        END IF;
    END LOOP;

    FOR g IN SELECT * FROM orderly.option_groups x WHERE x.product_id = p.id ORDER BY x.position, x.code LOOP
        -- Keys are matched case-insensitively; the first spelling found wins.
        SELECT e.value INTO v FROM jsonb_each(given) e WHERE lower(e.key) = g.code LIMIT 1;
        IF NOT FOUND OR jsonb_typeof(v) = 'null' THEN
            v := NULL;
        END IF;
        IF g.variant AND sku_options IS NOT NULL THEN
            IF v IS NOT NULL AND (jsonb_typeof(v) NOT IN ('string', 'number') OR lower(btrim(v #>> '{}')) <> sku_options ->> g.code) THEN
                RAISE EXCEPTION 'option % does not match the SKU (it is %)', g.code, sku_options ->> g.code USING ERRCODE = 'OL400';
            END IF;
            v := sku_options -> g.code;
        END IF;
        IF v IS NULL THEN
            IF g.required OR (g.variant AND p.kind = 'goods') THEN
                RAISE EXCEPTION 'option % is required', g.code USING ERRCODE = 'OL400';
            END IF;
            CONTINUE;
        END IF;
        IF jsonb_typeof(v) = 'array' AND g.multiple THEN
            IF jsonb_array_length(v) > 50 OR EXISTS (SELECT 1 FROM jsonb_array_elements(v) e WHERE jsonb_typeof(e) NOT IN ('string', 'number')) THEN
                RAISE EXCEPTION 'option % must be a list of values', g.code USING ERRCODE = 'OL400';
            END IF;
            -- An empty list is none chosen (an accessory taken off a line), not NULL.
            SELECT coalesce(array_agg(lower(btrim(e #>> '{}')) ORDER BY n), '{}') INTO v_codes FROM jsonb_array_elements(v) WITH ORDINALITY AS a(e, n);
        ELSIF jsonb_typeof(v) IN ('string', 'number') THEN
            v_codes := ARRAY[lower(btrim(v #>> '{}'))];
        ELSE
            RAISE EXCEPTION 'option % takes one value', g.code USING ERRCODE = 'OL400';
        END IF;
        IF (SELECT count(DISTINCT x) FROM unnest(v_codes) x) <> cardinality(v_codes) THEN
            RAISE EXCEPTION 'option % lists a value twice', g.code USING ERRCODE = 'OL400';
        END IF;
        IF cardinality(v_codes) = 0 THEN
            IF g.required THEN
                RAISE EXCEPTION 'option % is required', g.code USING ERRCODE = 'OL400';
            END IF;
            CONTINUE;
        END IF;
        FOREACH c IN ARRAY v_codes LOOP
            SELECT * INTO ov FROM orderly.option_values x WHERE x.group_id = g.id AND x.code = c;
            IF NOT FOUND THEN
                -- The values there are, so that "black" is answered with blk.
                RAISE EXCEPTION 'unknown value "%" for option % (values: %)', orderly.for_message(c), g.code,
                    coalesce((SELECT string_agg(x.code, ', ' ORDER BY x.position, x.code) FROM orderly.option_values x
                              WHERE x.group_id = g.id AND x.active), 'none') USING ERRCODE = 'OL400';
            -- Taken off sale, as a product or SKU is: a conflict, not a mistake (a change waiting
            -- for approval is declined by it, R__199).
            ELSIF NOT ov.active AND NOT sold THEN
                RAISE EXCEPTION 'value "%" of option % is not available', orderly.for_message(c), g.code USING ERRCODE = 'OL409';
            END IF;
            v_delta := v_delta + ov.price_delta;
            IF g.variant THEN
                v_vdelta := v_vdelta + ov.price_delta;
            END IF;
            v_steps := v_steps || orderly.option_step(g, ov);
        END LOOP;
        v_chosen := v_chosen || jsonb_build_object(g.code, CASE WHEN g.multiple THEN to_jsonb(v_codes) ELSE to_jsonb(v_codes[1]) END);
        IF g.variant THEN
            v_variant := v_variant || jsonb_build_object(g.code, v_codes[1]);
        END IF;
    END LOOP;
    RETURN jsonb_build_object('chosen', v_chosen, 'variant', v_variant, 'steps', v_steps,
                              'delta', v_delta, 'variant_delta', v_vdelta);
END
$$;

-- The rules that may touch a line, in evaluation order (see the top of this file). No SET
-- search_path (every name is qualified): the query is then inlined into the caller's, whose plan
-- is kept, instead of being planned at every line.
CREATE OR REPLACE FUNCTION orderly.applicable_rules(p orderly.products, segment text, coupon_id bigint, at timestamptz)
RETURNS SETOF orderly.pricing_rules
LANGUAGE sql STABLE
AS $$
    SELECT r.* FROM orderly.pricing_rules r
    WHERE r.active
      AND (r.starts_at IS NULL OR r.starts_at <= $4)
      AND (r.ends_at IS NULL OR r.ends_at > $4)
      AND (r.product_id IS NULL OR r.product_id = ($1).id)
      AND (r.segment IS NULL OR r.segment = $2)
      AND (r.currency IS NULL OR r.currency = ($1).currency)
      AND (r.category_id IS NULL OR r.category_id = ANY (orderly.category_ancestors(($1).category_id)))
      AND (NOT EXISTS (SELECT 1 FROM orderly.coupon_rules cr WHERE cr.rule_id = r.id)
           OR EXISTS (SELECT 1 FROM orderly.coupon_rules cr WHERE cr.rule_id = r.id AND cr.coupon_id = $3))
    ORDER BY r.priority, r.id
$$;

-- Steps 3 and 4 for one line: tiers then rules. Returns {"steps": [...], "net": n}.
CREATE OR REPLACE FUNCTION orderly.line_discounts(p orderly.products, segment text, qty integer, list_price numeric,
                                                  coupon orderly.coupons, at timestamptz) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_running numeric := list_price * qty;
    v_steps   jsonb := '[]';
    v_applied boolean := false;
    v_amount  numeric;
    v_units   integer;
    v_free    integer;
    v_coupon  boolean;
    b         record;
    r         orderly.pricing_rules;
BEGIN
    -- 3. Graduated tiers: the bands of the segment if it has any, else the general ones.
    FOR b IN
        WITH bands AS (
            SELECT t.min_qty, t.percent_off, t.segment FROM orderly.price_tiers t
            WHERE t.product_id = p.id
              AND t.segment IS NOT DISTINCT FROM (
                  CASE WHEN EXISTS (SELECT 1 FROM orderly.price_tiers s WHERE s.product_id = p.id AND s.segment = line_discounts.segment)
                       THEN line_discounts.segment END))
        SELECT bands.*, lead(bands.min_qty) OVER (ORDER BY bands.min_qty) - 1 AS to_qty FROM bands ORDER BY bands.min_qty
    LOOP
        v_units := least(coalesce(b.to_qty, qty), qty) - b.min_qty + 1;
        CONTINUE WHEN v_units <= 0;
        v_amount := orderly.money(list_price * v_units * b.percent_off / 100);
        v_running := v_running - v_amount;
        v_steps := v_steps || jsonb_build_object(
            'step', 'tier', 'segment', b.segment, 'from_qty', b.min_qty, 'to_qty', b.to_qty, 'units', v_units,
            'percent', b.percent_off, 'amount', -v_amount,
            'text', format('units %s-%s: %s %% off (%s units)', b.min_qty, coalesce(b.to_qty::text, ''), b.percent_off, v_units));
    END LOOP;

    -- 4. Rules in priority order; exclusive ones only alone.
    FOR r IN SELECT * FROM orderly.applicable_rules(p, segment, coupon.id, at) LOOP
        v_coupon := coupon.id IS NOT NULL AND EXISTS (SELECT 1 FROM orderly.coupon_rules cr WHERE cr.rule_id = r.id AND cr.coupon_id = coupon.id);
        IF r.exclusive AND v_applied THEN
            v_steps := v_steps || jsonb_build_object('step', 'rule_skipped', 'rule_id', r.id, 'name', r.name, 'kind', r.kind,
                                                     'exclusive', true, 'amount', 0,
                                                     'text', format('%s: not combined (exclusive, another discount applied first)', r.name));
            CONTINUE;
        END IF;
        IF r.kind = 'percent' THEN
            v_amount := orderly.money(v_running * r.value / 100);
        ELSIF r.kind = 'fixed' THEN
            v_amount := least(orderly.money(r.value * qty), v_running);
        ELSE
            v_free := (qty / (r.buy_qty + r.free_qty)) * r.free_qty;
            CONTINUE WHEN v_free = 0;
            v_amount := orderly.money(v_running * v_free / qty);
        END IF;
        v_running := v_running - v_amount;
        v_applied := true;
        v_steps := v_steps || (jsonb_build_object(
            'step', 'rule', 'rule_id', r.id, 'name', r.name, 'kind', r.kind, 'exclusive', r.exclusive,
            'priority', r.priority, 'amount', -v_amount,
            'text', CASE r.kind WHEN 'percent' THEN format('%s: %s %% off', r.name, r.value)
                                WHEN 'fixed' THEN format('%s: %s off per unit', r.name, r.value)
                                ELSE format('%s: buy %s get %s free (%s free units)', r.name, r.buy_qty, r.free_qty, v_free) END)
            || CASE r.kind WHEN 'buy_x_get_y' THEN jsonb_build_object('buy', r.buy_qty, 'get', r.free_qty, 'free_units', v_free)
                           ELSE jsonb_build_object('value', r.value) END
            || CASE WHEN v_coupon THEN jsonb_build_object('coupon', coupon.code) ELSE '{}' END);
        EXIT WHEN r.exclusive;
    END LOOP;
    RETURN jsonb_build_object('steps', v_steps, 'net', v_running);
END
$$;

-- One line, without its number (the caller prefixes errors with it). tax: from tax_context.
-- sold: see price_lines.
DROP FUNCTION IF EXISTS orderly.price_line(jsonb, text, orderly.coupons, jsonb, timestamptz, boolean);
CREATE OR REPLACE FUNCTION orderly.price_line(line jsonb, segment text, coupon orderly.coupons, tax jsonb,
                                              at timestamptz, can_override boolean, sold boolean DEFAULT false) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_item      jsonb;
    p           orderly.products;
    s           orderly.skus;
    v_qty       integer;
    v_opts      jsonb;
    v_params    jsonb := '{}';
    v_base      numeric;
    v_source    jsonb;
    v_list      numeric;
    v_gross     numeric;
    v_net       numeric;
    v_steps     jsonb := '[]';
    v_disc      jsonb;
    v_override  numeric := orderly.arg_numeric(line, 'unit_price');
    v_reason    text := btrim(orderly.arg_text(line, 'reason'));
    v_given     jsonb := orderly.arg_value(line, 'params');   -- the line's params, as given
    v_sku_price orderly.segment_prices;
    v_tax       numeric;
    k           text;
BEGIN
    IF jsonb_typeof(line) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'each line must be an object' USING ERRCODE = 'OL400';
    END IF;
    FOR k IN SELECT jsonb_object_keys(line) LOOP
        IF k NOT IN ('line', 'sku', 'product', 'qty', 'options', 'params', 'unit_price', 'reason') THEN
            RAISE EXCEPTION 'unknown key "%" (use sku, product, qty, options, params, unit_price, reason)',
                orderly.for_message(k) USING ERRCODE = 'OL400';
        END IF;
    END LOOP;

    v_item := orderly.line_item(line, sold);
    p := jsonb_populate_record(NULL::orderly.products, v_item -> 'product');
    IF jsonb_typeof(v_item -> 'sku') = 'object' THEN
        s := jsonb_populate_record(NULL::orderly.skus, v_item -> 'sku');
    END IF;

    v_qty := orderly.arg_int(line, 'qty', true);
    IF v_qty NOT BETWEEN 1 AND 100000 THEN
        RAISE EXCEPTION 'qty must be between 1 and 100000' USING ERRCODE = 'OL400';
    END IF;

    IF p.kind <> 'goods' AND s.id IS NOT NULL THEN
        RAISE EXCEPTION '% has no SKUs', p.code USING ERRCODE = 'OL400';
    END IF;
    v_opts := orderly.line_options(p, orderly.arg_value(line, 'options'), CASE WHEN s.id IS NOT NULL THEN s.options END, sold);

    -- Goods ship a SKU: the one named, else the one the variant options pick.
    IF p.kind = 'goods' AND s.id IS NULL THEN
        SELECT * INTO s FROM orderly.skus x WHERE x.product_id = p.id AND x.options = v_opts -> 'variant';
        IF NOT FOUND THEN
            RAISE EXCEPTION 'no SKU of % for %', p.code,
                coalesce(nullif((SELECT string_agg(e.key || '=' || (e.value #>> '{}'), ', ' ORDER BY e.key)
                                 FROM jsonb_each(v_opts -> 'variant') e), ''), 'these options') USING ERRCODE = 'OL404';
        ELSIF NOT s.active AND NOT sold THEN
            RAISE EXCEPTION 'SKU % is not available', s.code USING ERRCODE = 'OL409';
        END IF;
    END IF;

    IF p.formula IS NOT NULL THEN
        v_params := orderly.formula_param_values(p.formula_params, v_given);
    ELSIF v_given IS NOT NULL AND v_given <> '{}' THEN
        RAISE EXCEPTION 'params are only for products priced by formula' USING ERRCODE = 'OL400';
    END IF;

    -- 1. Base unit price.
    IF s.id IS NOT NULL THEN
        SELECT * INTO v_sku_price FROM orderly.segment_prices x
        WHERE x.segment = price_line.segment AND x.product_id = p.id AND x.sku_id = s.id;
    END IF;
    IF p.formula IS NOT NULL THEN
        v_base := orderly.money(orderly.formula_eval(p.formula, v_params));
        IF v_base < 0 THEN
            RAISE EXCEPTION 'the price formula gives a negative price' USING ERRCODE = 'OL400';
        END IF;
        v_source := jsonb_build_object('source', 'formula', 'formula', p.formula, 'params', v_params,
                                       'text', format('formula %s = %s', p.formula, v_base));
        v_steps := v_steps || (jsonb_build_object('step', 'base', 'amount', v_base) || v_source);
    ELSIF v_sku_price.id IS NOT NULL THEN
        v_base := v_sku_price.unit_price;
        v_steps := v_steps || orderly.base_step('segment_sku_price', segment, s.code, v_base);
    ELSE
        SELECT x.unit_price INTO v_base FROM orderly.segment_prices x
        WHERE x.segment = price_line.segment AND x.product_id = p.id AND x.sku_id IS NULL;
        IF FOUND THEN
            v_steps := v_steps || orderly.base_step('segment_price', segment, NULL, v_base);
        ELSE
            v_base := p.base_price;
            v_steps := v_steps || orderly.base_step('base_price', segment, NULL, v_base);
        END IF;
    END IF;

    -- 2. Option deltas, then the unit list price.
    v_steps := v_steps || (SELECT coalesce(jsonb_agg(CASE WHEN v_sku_price.id IS NOT NULL AND (e ->> 'variant')::boolean
                                                          THEN orderly.included_in_sku_price(e) ELSE e END), '[]')
                           FROM jsonb_array_elements(v_opts -> 'steps') e);
    v_list := orderly.money(v_base + (v_opts ->> 'delta')::numeric
                            - CASE WHEN v_sku_price.id IS NOT NULL THEN (v_opts ->> 'variant_delta')::numeric ELSE 0 END);
    IF v_list < 0 THEN
        RAISE EXCEPTION 'the options make the unit price negative' USING ERRCODE = 'OL400';
    END IF;
    IF v_list * v_qty > 999999999999.99 THEN
        RAISE EXCEPTION 'the line amount is too large' USING ERRCODE = 'OL400';
    END IF;
    v_gross := v_list * v_qty;
    v_steps := v_steps || orderly.list_step(v_list, v_qty);

    IF v_override IS NOT NULL THEN
        -- 5. Manual price: instead of tiers and rules.
        IF NOT coalesce(can_override, false) THEN
            RAISE EXCEPTION 'permission denied: price.override' USING ERRCODE = 'OL403';
        END IF;
        IF coalesce(v_reason, '') = '' THEN
            RAISE EXCEPTION 'a manual unit_price needs a reason' USING ERRCODE = 'OL400';
        END IF;
        IF length(v_reason) > 500 OR v_reason ~ '[[:cntrl:]]' THEN
            RAISE EXCEPTION 'reason must be at most 500 characters on one line' USING ERRCODE = 'OL400';
        END IF;
        IF v_override < 0 OR v_override > 999999999999.99 THEN
            RAISE EXCEPTION 'unit_price must be between 0 and 999999999999.99' USING ERRCODE = 'OL400';
        END IF;
        v_override := orderly.money(v_override);
        v_net := v_override * v_qty;
        IF v_net > 999999999999.99 THEN
            RAISE EXCEPTION 'the line amount is too large' USING ERRCODE = 'OL400';
        END IF;
        v_steps := v_steps || orderly.override_step(v_override, v_qty, v_gross, v_reason);
    ELSE
        v_disc := orderly.line_discounts(p, segment, v_qty, v_list, coupon, at);
        v_steps := v_steps || (v_disc -> 'steps');
        v_net := (v_disc ->> 'net')::numeric;
    END IF;

    -- 6. Tax.
    v_tax := orderly.money(v_net * (tax ->> 'rate')::numeric / 100);
    v_steps := v_steps || orderly.tax_step(tax, v_tax);

    RETURN orderly.priced_line(p, s.code, s.id, v_qty, v_opts -> 'chosen', v_params, v_list, v_steps, v_net, tax, v_tax,
                               v_override IS NOT NULL);
END
$$;

-- Whether a line's options (NULL: none given) are of the plain kind price_lines_set takes: each key
-- a group of the product in lowercase, each value a lowercase code (a list of them only for a
-- group of several, without repeats, at most 50), a variant group's value the SKU's own. Anything
-- else, right or wrong, is for price_line (line_options), which knows every spelling and error.
CREATE OR REPLACE FUNCTION orderly.plain_options(p orderly.products, s orderly.skus, options jsonb) RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- plpgsql: planned once a session, and at once when there are no options.
    IF options IS NULL THEN
        RETURN true;
    END IF;
    RETURN jsonb_typeof(options) = 'object'
        AND NOT EXISTS (
            SELECT 1 FROM jsonb_each(options) e
            LEFT JOIN orderly.option_groups g ON g.product_id = p.id AND g.code = e.key
            WHERE g.id IS NULL
               OR CASE WHEN jsonb_typeof(e.value) = 'string'
                       THEN e.value #>> '{}' <> lower(btrim(e.value #>> '{}'))
                            OR (g.variant AND s.id IS NOT NULL AND e.value #>> '{}' IS DISTINCT FROM s.options ->> g.code)
                       WHEN jsonb_typeof(e.value) = 'array'
                       THEN NOT g.multiple OR (g.variant AND s.id IS NOT NULL) OR jsonb_array_length(e.value) NOT BETWEEN 1 AND 50
                            OR EXISTS (SELECT 1 FROM jsonb_array_elements(e.value) v
                                       WHERE jsonb_typeof(v) <> 'string' OR v #>> '{}' <> lower(btrim(v #>> '{}')))
                            OR (SELECT count(DISTINCT v) FROM jsonb_array_elements(e.value) v) <> jsonb_array_length(e.value)
                       ELSE true END);
END
$$;

-- A group's chosen codes on a line with plain options, in order (k): a variant group's the SKU's,
-- another's those given; none when there is none.
CREATE OR REPLACE FUNCTION orderly.option_codes(g orderly.option_groups, s orderly.skus, options jsonb)
RETURNS TABLE (code text, k bigint)
LANGUAGE sql STABLE
AS $$
    SELECT lower(btrim(($2).options ->> ($1).code)), 1::bigint
    WHERE ($1).variant AND ($2).id IS NOT NULL AND ($2).options ? ($1).code
    UNION ALL
    SELECT v.value #>> '{}', v.k
    FROM jsonb_array_elements(CASE jsonb_typeof($3 -> ($1).code) WHEN 'array' THEN $3 -> ($1).code
                                                                 WHEN 'string' THEN jsonb_build_array($3 -> ($1).code) END)
         WITH ORDINALITY AS v(value, k)
    WHERE NOT (($1).variant AND ($2).id IS NOT NULL)
$$;

-- The set-based way (issue 16): every line of an order in a few statements — what the lines are,
-- their base, option and list prices in one; their tiers and rules (line_discounts) and tax and
-- documents in one more — instead of a price_line call per line, each with its own lookups. It
-- takes the lines orders are mostly made of: a SKU, or a product that is not goods (a service, a
-- bundle), or goods named by product and the variant options of one of its SKUs, with qty, its
-- line number, plain options (plain_options) and a manual price, nothing else. It returns NULL as
-- soon as one line is anything more (other spellings of options, a formula's params) or anything
-- wrong; price_lines then prices the order line by line, which also says precisely what is
-- wrong. Both ways build their steps and lines with the same functions above, and give the same
-- answer byte for byte (pgTAP 120 compares them; Tests/Golden/pricing-corpus.txt).
DROP FUNCTION IF EXISTS orderly.price_lines_set(text, jsonb, orderly.coupons, jsonb, timestamptz);
DROP FUNCTION IF EXISTS orderly.price_lines_set(text, jsonb, orderly.coupons, jsonb, timestamptz, boolean);
CREATE OR REPLACE FUNCTION orderly.price_lines_set(segment text, lines jsonb, coupon orderly.coupons, tax jsonb, at timestamptz,
                                                   can_override boolean DEFAULT false, sold_lines integer[] DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_count integer := jsonb_array_length(lines);
    v_taken integer;
    v_out   jsonb;
BEGIN
    WITH raw AS (
        -- Every value read through a CASE that checks its form first: a cast that fails would be
        -- an error, and a WHERE does not say in which order it tests its conditions.
        SELECT e.n, e.v,
               CASE WHEN e.v ? 'line'
                    THEN CASE WHEN jsonb_typeof(e.v -> 'line') = 'number' AND e.v ->> 'line' ~ '^[1-9][0-9]{0,5}$'
                              THEN (e.v ->> 'line')::integer END
                    ELSE e.n::integer END AS line,
               CASE WHEN jsonb_typeof(e.v -> 'qty') = 'number' AND e.v ->> 'qty' ~ '^[1-9][0-9]{0,5}$'
                    THEN (e.v ->> 'qty')::integer END AS qty,
               CASE WHEN jsonb_typeof(e.v -> 'unit_price') = 'number' THEN (e.v ->> 'unit_price')::numeric END AS unit_price,
               CASE WHEN jsonb_typeof(e.v -> 'reason') = 'string' THEN btrim(e.v ->> 'reason') END AS reason,
               -- Only the keys this way takes, each of the type it takes.
               CASE WHEN jsonb_typeof(e.v) = 'object'
                    THEN NOT EXISTS (SELECT 1 FROM jsonb_object_keys(e.v) k
                                     WHERE k NOT IN ('line', 'sku', 'product', 'qty', 'options', 'unit_price', 'reason'))
                         AND (NOT e.v ? 'sku' OR jsonb_typeof(e.v -> 'sku') = 'string')
                         AND (NOT e.v ? 'product' OR jsonb_typeof(e.v -> 'product') = 'string')
                         AND (e.v ? 'unit_price') = (e.v ? 'reason')
                    ELSE false END AS plain
        FROM jsonb_array_elements(lines) WITH ORDINALITY AS e(v, n)),
    given AS (
        -- Only what this way takes: an object of line, sku and/or product, qty, options, and a
        -- manual price (a number in range, by one who may, with a reason on one line).
        SELECT r.n, r.line, r.qty, r.v -> 'options' AS options, orderly.money(r.unit_price) AS unit, r.reason,
               nullif(upper(btrim(r.v ->> 'sku')), '') AS sku_code,
               nullif(upper(btrim(r.v ->> 'product')), '') AS product_code
        FROM raw r
        WHERE r.plain AND r.line <= 100000 AND r.qty <= 100000
          AND (NOT r.v ? 'unit_price'
               OR (price_lines_set.can_override AND r.unit_price BETWEEN 0 AND 999999999999.99
                   AND r.reason <> '' AND length(r.reason) <= 500 AND r.reason !~ '[[:cntrl:]]'))),
    items AS (
        -- What each line is: an active SKU (of the product named, if one is; for goods named by
        -- product, the SKU its variant options pick), or an active product that is not goods; no
        -- formula.
        SELECT g.n, g.line, g.qty, g.options, g.unit, g.reason, g.sku_code, g.product_code, p, k.s
        FROM given g
        LEFT JOIN orderly.skus named ON named.code = g.sku_code
        JOIN orderly.products p ON p.id = CASE WHEN g.sku_code IS NOT NULL THEN named.product_id
                                               ELSE (SELECT x.id FROM orderly.products x WHERE x.code = g.product_code) END
        LEFT JOIN LATERAL (
            SELECT x AS pick FROM orderly.skus x
            WHERE g.sku_code IS NULL AND p.kind = 'goods' AND x.product_id = p.id
              AND x.options = (SELECT coalesce(jsonb_object_agg(og.code, g.options -> og.code), '{}') FROM orderly.option_groups og
                               WHERE og.product_id = p.id AND og.variant AND jsonb_typeof(g.options -> og.code) = 'string')) v ON true
        CROSS JOIN LATERAL (SELECT coalesce(named.*, v.pick) AS s) k
        WHERE (p.active OR g.line = ANY (price_lines_set.sold_lines)) AND p.formula IS NULL
          AND (k.s IS NULL OR (k.s).active OR g.line = ANY (price_lines_set.sold_lines))
          -- A bundle whose part is off sale: line by line, which says so.
          AND (p.kind <> 'bundle' OR g.line = ANY (price_lines_set.sold_lines)
               OR NOT EXISTS (SELECT 1 FROM orderly.bundle_items bi JOIN orderly.skus bk ON bk.id = bi.sku_id
                              JOIN orderly.products bp ON bp.id = bk.product_id
                              WHERE bi.bundle_product_id = p.id AND NOT (bk.active AND bp.active)))
          AND (g.sku_code IS NOT NULL OR g.product_code IS NOT NULL)
          AND (g.sku_code IS NULL OR g.product_code IS NULL OR g.product_code = p.code)
          AND CASE WHEN p.kind = 'goods' THEN (k.s).id IS NOT NULL ELSE g.sku_code IS NULL END
          AND orderly.plain_options(p, k.s, g.options)),
    priced AS (
        -- Steps 1 and 2: the base price (a SKU's segment price, the product's, its base price)
        -- and the variant options its SKU fixes; the unit list price.
        SELECT i.*, b.source, b.base, o.steps AS option_steps, o.chosen, o.missing,
               orderly.money(b.base + o.delta - CASE WHEN b.source = 'segment_sku_price' THEN o.vdelta ELSE 0 END) AS list
        FROM items i
        CROSS JOIN LATERAL (
            SELECT CASE WHEN sp.id IS NOT NULL THEN 'segment_sku_price' WHEN pp.id IS NOT NULL THEN 'segment_price'
                        ELSE 'base_price' END AS source,
                   coalesce(sp.unit_price, pp.unit_price, (i.p).base_price) AS base
            FROM (SELECT 1) one
            LEFT JOIN orderly.segment_prices sp ON (i.s).id IS NOT NULL AND sp.segment = price_lines_set.segment
                                                AND sp.product_id = (i.p).id AND sp.sku_id = (i.s).id
            LEFT JOIN orderly.segment_prices pp ON sp.id IS NULL AND pp.segment = price_lines_set.segment
                                                AND pp.product_id = (i.p).id AND pp.sku_id IS NULL) b
        CROSS JOIN LATERAL (
            -- Each group's values: a variant group's the SKU's, another's those given (in order).
            SELECT coalesce(jsonb_agg(CASE WHEN b.source = 'segment_sku_price' AND og.variant
                                           THEN orderly.included_in_sku_price(orderly.option_step(og, ov))
                                           ELSE orderly.option_step(og, ov) END ORDER BY og.position, og.code, v.k)
                                FILTER (WHERE ov.id IS NOT NULL), '[]') AS steps,
                   -- One entry per group with values (a group of several values repeats its own).
                   coalesce(jsonb_object_agg(og.code, CASE WHEN og.multiple THEN to_jsonb(cs.codes) ELSE to_jsonb(cs.codes[1]) END)
                                FILTER (WHERE cs.codes IS NOT NULL), '{}') AS chosen,
                   coalesce(sum(ov.price_delta), 0) AS delta,
                   coalesce(sum(ov.price_delta) FILTER (WHERE og.variant), 0) AS vdelta,
                   -- A group left empty that must not be, or a value not (or no longer) offered.
                   count(*) FILTER (WHERE (v.code IS NULL AND (og.required OR (og.variant AND (i.p).kind = 'goods')))
                                       OR (v.code IS NOT NULL AND (ov.id IS NULL OR (NOT ov.active AND NOT i.line = ANY (price_lines_set.sold_lines))))) AS missing
            FROM orderly.option_groups og
            CROSS JOIN LATERAL (SELECT array_agg(c.code ORDER BY c.k) AS codes FROM orderly.option_codes(og, i.s, i.options) c) cs
            LEFT JOIN LATERAL unnest(cs.codes) WITH ORDINALITY AS v(code, k) ON true
            LEFT JOIN orderly.option_values ov ON ov.group_id = og.id AND ov.code = v.code
            WHERE og.product_id = (i.p).id) o)
    SELECT count(DISTINCT x.line) FILTER (WHERE x.missing = 0 AND x.list >= 0 AND x.list * x.qty <= 999999999999.99
                                             AND coalesce(x.unit * x.qty, 0) <= 999999999999.99),
           -- Steps 3 and 4 (line_discounts), 6, and the line.
           jsonb_agg(jsonb_build_object('line', x.line)
                     || orderly.priced_line(x.p, (x.s).code, (x.s).id, x.qty, x.chosen, '{}', x.list,
                                            jsonb_build_array(orderly.base_step(x.source, price_lines_set.segment, (x.s).code, x.base))
                                                || x.option_steps || orderly.list_step(x.list, x.qty)
                                                || CASE WHEN x.unit IS NULL THEN d.d -> 'steps'
                                                        ELSE jsonb_build_array(orderly.override_step(x.unit, x.qty, x.list * x.qty, x.reason)) END
                                                || orderly.tax_step(price_lines_set.tax, t.amount),
                                            d.net, price_lines_set.tax, t.amount, x.unit IS NOT NULL)
                     ORDER BY x.n)
    INTO v_taken, v_out
    FROM priced x
    -- Steps 3 and 4, or the manual price instead. OFFSET 0: evaluated once per line, not once per use.
    CROSS JOIN LATERAL (SELECT r.d, coalesce(x.unit * x.qty, (r.d ->> 'net')::numeric) AS net
                        FROM (SELECT CASE WHEN x.unit IS NULL
                                          THEN orderly.line_discounts(x.p, price_lines_set.segment, x.qty, x.list, price_lines_set.coupon,
                                                                      price_lines_set.at) END AS d
                              OFFSET 0) r) d
    CROSS JOIN LATERAL (SELECT orderly.money(d.net * (price_lines_set.tax ->> 'rate')::numeric / 100) AS amount) t;
    IF v_taken IS DISTINCT FROM v_count THEN
        RETURN NULL;
    END IF;
    RETURN v_out;
END
$$;

-- The order's currency so far (NULL before its first line) after a priced line: every line must be
-- priced in the same one.
CREATE OR REPLACE FUNCTION orderly.line_currency(currency text, line jsonb, line_no integer) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF currency IS NOT NULL AND currency <> line ->> 'currency' THEN
        RAISE EXCEPTION 'line %: priced in %, but the order is in %', line_no, line ->> 'currency', currency USING ERRCODE = 'OL400';
    END IF;
    RETURN line ->> 'currency';
END
$$;

-- Prices every line for a segment and a ship-to place (see tax_context); the shared core of
-- price_order and api.product_price.
-- coupon_redeemed: the coupon is the submitted order's own, redeemed at its submission: it is
-- applied as it was granted, not checked again (expired since, or used up by this very order, it
-- made every change of the order's lines impossible) — unless staff switched it off.
-- sold_lines: line numbers of a submitted order's lines priced again as they were sold (the same
-- item, options and parameters, no more units; orderly.set_order_lines picks them): their product,
-- SKU and option values are priced even if no longer sold, so that taking a product off sale
-- stops new sales of it, not changes of the orders that have it.
DROP FUNCTION IF EXISTS orderly.price_lines(bigint, text, jsonb, text, jsonb, timestamptz, boolean);
DROP FUNCTION IF EXISTS orderly.price_lines(bigint, text, jsonb, text, jsonb, timestamptz, boolean, boolean);
CREATE OR REPLACE FUNCTION orderly.price_lines(customer_id bigint, segment text, lines jsonb, coupon text,
                                               place jsonb, at timestamptz, can_override boolean,
                                               coupon_redeemed boolean DEFAULT false, sold_lines integer[] DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_at       timestamptz := coalesce(at, now());
    c          orderly.coupons;
    v_tax      jsonb := orderly.tax_context(place);
    v_out      jsonb;
    v_doc      jsonb;
    v_no       integer;
    v_seen     integer[] := '{}';
    v_currency text;
    v_state    text;
    v_msg      text;
    v_sums     record;
    e          jsonb;
    i          integer;
BEGIN
    IF jsonb_typeof(lines) IS DISTINCT FROM 'array' OR jsonb_array_length(lines) = 0 THEN
        RAISE EXCEPTION 'lines must be a non-empty array' USING ERRCODE = 'OL400';
    END IF;
    IF jsonb_array_length(lines) > 500 THEN
        RAISE EXCEPTION 'an order has at most 500 lines' USING ERRCODE = 'OL400';
    END IF;
    IF nullif(btrim(coupon), '') IS NOT NULL AND coupon_redeemed THEN
        -- Switched off by staff, it no longer discounts what is priced again or added.
        SELECT * INTO c FROM orderly.coupons x WHERE lower(x.code) = lower(btrim(coupon)) AND x.active;
    ELSIF nullif(btrim(coupon), '') IS NOT NULL THEN
        c := orderly.coupon_usable(coupon, customer_id, v_at);
    END IF;

    -- The whole order at once when it can be (price_lines_set), else line by line.
    v_out := orderly.price_lines_set(segment, lines, c, v_tax, v_at, can_override, sold_lines);
    IF v_out IS NOT NULL THEN
        -- Priced already; each line's currency must be the order's.
        FOR e IN SELECT x FROM jsonb_array_elements(v_out) x LOOP
            v_currency := orderly.line_currency(v_currency, e, (e ->> 'line')::integer);
        END LOOP;
    ELSE
        v_out := '[]';
        FOR e, i IN SELECT x.value, x.n::integer FROM jsonb_array_elements(lines) WITH ORDINALITY AS x(value, n) LOOP
            v_no := i;
            IF jsonb_typeof(e) = 'object' AND e ? 'line' THEN
                BEGIN
                    v_no := orderly.arg_int(e, 'line', true);
                EXCEPTION WHEN SQLSTATE 'OL400' THEN
                    v_no := NULL;
                END;
                IF v_no IS NULL OR v_no NOT BETWEEN 1 AND 100000 THEN
                    RAISE EXCEPTION 'line %: line must be a number from 1 to 100000', i USING ERRCODE = 'OL400';
                END IF;
            END IF;
            IF v_no = ANY (v_seen) THEN
                RAISE EXCEPTION 'line %: line number used twice', v_no USING ERRCODE = 'OL400';
            END IF;
            v_seen := v_seen || v_no;
            BEGIN
                v_doc := orderly.price_line(e, segment, c, v_tax, v_at, can_override, v_no = ANY (sold_lines));
            EXCEPTION WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_msg = MESSAGE_TEXT;
                IF v_state LIKE 'OL%' THEN
                    RAISE EXCEPTION 'line %: %', v_no, v_msg USING ERRCODE = v_state;
                END IF;
                RAISE;
            END;
            v_currency := orderly.line_currency(v_currency, v_doc, v_no);
            v_out := v_out || (jsonb_build_object('line', v_no) || v_doc);
        END LOOP;
    END IF;

    -- The totals, and the size check, in one pass over the priced lines.
    SELECT coalesce(sum((l ->> 'gross')::numeric), 0) AS subtotal,
           coalesce(sum((l ->> 'discount')::numeric), 0) AS discount_total,
           coalesce(sum((l ->> 'tax')::numeric), 0) AS tax_total,
           coalesce(sum((l ->> 'net')::numeric + (l ->> 'tax')::numeric), 0) AS total,
           coalesce(sum((l ->> 'gross')::numeric + (l ->> 'tax')::numeric + abs((l ->> 'discount')::numeric)), 0) AS size
    INTO v_sums
    FROM jsonb_array_elements(v_out) l;
    -- Each line is within numeric(14,2); their sum must be too, or the order could not be stored.
    IF v_sums.size > 999999999999.99 THEN
        RAISE EXCEPTION 'the order total is too large' USING ERRCODE = 'OL400';
    END IF;
    RETURN jsonb_build_object(
        'currency', v_currency,
        'customer', customer_id,
        'segment', segment,
        'coupon', CASE WHEN c.id IS NULL THEN NULL ELSE jsonb_build_object(
                      'code', c.code,
                      'applied', EXISTS (SELECT 1 FROM jsonb_array_elements(v_out) l, jsonb_array_elements(l -> 'explanation') s
                                         WHERE s ->> 'coupon' = c.code)) END,
        'ship_to', v_tax -> 'place',
        'tax', v_tax - 'place',
        'priced_at', orderly.json_time(v_at),
        'lines', v_out,
        'subtotal', v_sums.subtotal,
        'discount_total', v_sums.discount_total,
        'tax_total', v_sums.tax_total,
        'total', v_sums.total);
END
$$;

-- The place that decides tax: country and region of orderly.ship_to_address (NULL: no address).
CREATE OR REPLACE FUNCTION orderly.ship_to_place(customer_id bigint, ship_to bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a orderly.addresses := orderly.ship_to_address(customer_id, ship_to);
BEGIN
    RETURN orderly.address_place(a);
END
$$;

-- An address as a tax place (NULL: no address).
CREATE OR REPLACE FUNCTION orderly.address_place(a orderly.addresses) RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN ($1).id IS NOT NULL
                THEN jsonb_build_object('address_id', ($1).id, 'country', upper(($1).country), 'region', ($1).region) END
$$;

-- Where an order is taxed now: the address it ships to, even one removed since it was chosen
-- (orders keep their address: ADDRESS REMOVE); none, the customer's default. Pricing the order
-- again asks price_order, which takes no removed address: the order needs another one first.
CREATE OR REPLACE FUNCTION orderly.order_place(o orderly.orders) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN ($1).ship_to_id IS NULL THEN orderly.ship_to_place(($1).customer_id, NULL)
                ELSE (SELECT orderly.address_place(a) FROM orderly.addresses a WHERE a.id = ($1).ship_to_id) END
$$;

-- THE pricing function (contract): quote, draft and submit all call it. customer_id NULL prices
-- for segment 'standard' without tax (ship_to then must be NULL: an address belongs to a
-- customer). at NULL means now(). Never writes anything.
CREATE OR REPLACE FUNCTION orderly.price_order(customer_id bigint, lines jsonb, coupon text, ship_to bigint,
                                               at timestamptz, can_override boolean) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN orderly.price_order(customer_id, lines, coupon, ship_to, at, can_override, false);
END
$$;

-- The same for a submitted order's lines (an amendment): coupon_redeemed, its coupon is applied as
-- it was granted at submission; sold_lines, lines priced as they were sold (see price_lines).
DROP FUNCTION IF EXISTS orderly.price_order(bigint, jsonb, text, bigint, timestamptz, boolean, boolean);
CREATE OR REPLACE FUNCTION orderly.price_order(customer_id bigint, lines jsonb, coupon text, ship_to bigint,
                                               at timestamptz, can_override boolean, coupon_redeemed boolean,
                                               sold_lines integer[] DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_segment text := 'standard';
BEGIN
    IF customer_id IS NOT NULL THEN
        SELECT c.segment INTO v_segment FROM orderly.customers c WHERE c.id = price_order.customer_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'unknown customer %', customer_id USING ERRCODE = 'OL404';
        END IF;
    ELSIF ship_to IS NOT NULL THEN
        RAISE EXCEPTION 'ship_to needs a customer' USING ERRCODE = 'OL400';
    END IF;
    RETURN orderly.price_lines(customer_id, v_segment, lines, coupon,
                               CASE WHEN customer_id IS NOT NULL THEN orderly.ship_to_place(customer_id, ship_to) END,
                               at, can_override, coupon_redeemed, sold_lines);
END
$$;

-- The engine's answer as clients read it; PRODUCT PRICE --------------------------------------------

-- Each step as {"step" : …, "text" : …, "amount" : …, then its other keys}: what
-- orderly.json_extend(json_build_object(step, text, amount), rest::json) gives, written as text
-- and parsed once for the whole explanation (every ORDER SHOW renders every line's: issue 16 made
-- it a third cheaper; pgTAP 120 checks the text). plpgsql, so that it is planned once a session.
-- tax_place: a stored line's (order_lines.tax_place), put into its tax step, whose stored place
-- is null (R__112_line_pricings.sql), in the same pass; an engine answer's steps have their own.
DROP FUNCTION IF EXISTS orderly.explanation_doc(jsonb);
CREATE OR REPLACE FUNCTION orderly.explanation_doc(steps jsonb, tax_place jsonb DEFAULT NULL) RETURNS json
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN (SELECT coalesce('[' || string_agg(
                '{"step" : ' || coalesce((e.s -> 'step')::text, 'null') || ', "text" : ' || coalesce((e.s -> 'text')::text, 'null')
                || CASE WHEN e.s ? 'amount' THEN ', "amount" : ' || (e.s -> 'amount')::text ELSE '' END
                || CASE WHEN e.rest = '{}' THEN '}' ELSE ', ' || substr(e.rest::text, 2) END,
                ', ' ORDER BY e.n) || ']', '[]')::json
            FROM (SELECT x.s, x.n,
                         CASE WHEN tax_place IS NOT NULL AND x.s ->> 'step' = 'tax' AND x.s ? 'place'
                              THEN (x.s - 'step' - 'text' - 'amount') || jsonb_build_object('place', tax_place)
                              ELSE x.s - 'step' - 'text' - 'amount' END AS rest
                  FROM jsonb_array_elements(coalesce(steps, '[]')) WITH ORDINALITY AS x(s, n)) e);
END
$$;

-- The pricing engine's answer (jsonb) as clients read it: keys in a reading order (json keeps
-- it; jsonb would sort them by length). Every explanation step starts with step, text and
-- (where it has one) amount.
CREATE OR REPLACE FUNCTION orderly.priced_doc(p jsonb) RETURNS json
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- plpgsql, not sql: a sql function with SET is never inlined and was planned at every call.
    RETURN json_build_object(
        'currency', $1 -> 'currency',
        'customer', $1 -> 'customer',
        'segment', $1 -> 'segment',
        'coupon', $1 -> 'coupon',
        'ship_to', $1 -> 'ship_to',
        'tax', $1 -> 'tax',
        'lines', (SELECT coalesce(json_agg(json_build_object(
                      'line', l -> 'line', 'product', l -> 'product', 'sku', l -> 'sku', 'name', l -> 'name',
                      'kind', l -> 'kind', 'qty', l -> 'qty', 'options', l -> 'options', 'params', l -> 'params',
                      'list_price', l -> 'list_price', 'gross', l -> 'gross', 'discount', l -> 'discount',
                      'net', l -> 'net', 'tax_rate', l -> 'tax_rate', 'tax', l -> 'tax', 'override', l -> 'override',
                      'components', l -> 'components', 'explanation', orderly.explanation_doc(l -> 'explanation'))
                      ORDER BY n), '[]')
                  FROM jsonb_array_elements($1 -> 'lines') WITH ORDINALITY AS t(l, n)),
        'subtotal', $1 -> 'subtotal',
        'discount_total', $1 -> 'discount_total',
        'tax_total', $1 -> 'tax_total',
        'total', $1 -> 'total',
        'priced_at', $1 -> 'priced_at');
END
$$;

-- PRODUCT PRICE code [qty=1] [options={...}] [params={...}] [customer=id] [ship_to=id|CC|CC-REGION]
-- [coupon=CODE] [sku=CODE]: the pricing engine on one line (the order document of
-- orderly.price_order). Without a customer: segment 'standard', and tax only if ship_to names a
-- country ("DE") or a country and region ("US-CA"); with a customer, ship_to is one of its
-- address ids (default: its default address).
CREATE OR REPLACE FUNCTION api.product_price(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u          orderly.users := orderly.begin_command('PRODUCT PRICE', product_price.actor, product_price.args);
    v_code     text := orderly.arg_code(product_price.args, 'code');
    v_sku      text := orderly.arg_code(product_price.args, 'sku');
    v_customer bigint := orderly.arg_bigint(product_price.args, 'customer');
    v_ship     jsonb := orderly.arg_scalar(product_price.args, 'ship_to', false, 'an address id or a country code');
    v_coupon   text := orderly.arg_text(product_price.args, 'coupon');
    v_line     jsonb;
    v_segment  text := 'standard';
    v_place    jsonb;
BEGIN
    IF v_code IS NULL AND v_sku IS NULL THEN
        RAISE EXCEPTION 'code is required' USING ERRCODE = 'OL400';
    END IF;
    v_line := jsonb_strip_nulls(jsonb_build_object(
        'product', v_code, 'sku', v_sku,
        'qty', coalesce(orderly.arg_value(product_price.args, 'qty'), '1'),
        'options', orderly.arg_value(product_price.args, 'options'),
        'params', orderly.arg_value(product_price.args, 'params')));

    IF v_customer IS NOT NULL THEN
        SELECT c.segment INTO v_segment FROM orderly.customers c WHERE c.id = v_customer;
        -- A customer's login may price only for its own customer; others are "unknown" alike.
        IF NOT FOUND OR NOT orderly.customer_visible(u, v_customer) THEN
            RAISE EXCEPTION 'unknown customer %', v_customer USING ERRCODE = 'OL404';
        END IF;
    END IF;
    IF v_ship IS NOT NULL AND (jsonb_typeof(v_ship) = 'number' OR v_ship #>> '{}' ~ '^[0-9]+$') THEN
        IF v_customer IS NULL THEN
            RAISE EXCEPTION 'an address ship_to needs a customer' USING ERRCODE = 'OL400';
        END IF;
        v_place := orderly.ship_to_place(v_customer, orderly.arg_bigint(product_price.args, 'ship_to'));
    ELSIF v_ship IS NOT NULL THEN
        IF upper(btrim(v_ship #>> '{}')) !~ '^[A-Z]{2}(-[A-Z0-9][A-Z0-9 ._-]{0,30})?$' THEN
            RAISE EXCEPTION 'ship_to must be an address id or a country code like DE or US-CA' USING ERRCODE = 'OL400';
        END IF;
        -- A country ADDRESS ADD would take (a typo quoted no tax at all).
        v_place := jsonb_build_object('address_id', NULL, 'country', orderly.check_country(left(btrim(v_ship #>> '{}'), 2)),
                                      'region', nullif(substr(btrim(v_ship #>> '{}'), 4), ''));
    ELSIF v_customer IS NOT NULL THEN
        v_place := orderly.ship_to_place(v_customer, NULL);
    END IF;

    RETURN NEXT orderly.visible_doc('quote',
        orderly.priced_doc(orderly.price_lines(v_customer, v_segment, jsonb_build_array(v_line), v_coupon, v_place, now(), false)),
        orderly.own_customer(u));
END
$$;

SELECT orderly.register_command('PRODUCT PRICE', 'api.product_price', 'catalog.read',
    arguments  => 'code:code qty:integer options:object params:object customer:id ship_to:any coupon:code sku:code',
    positional => '{code}',
    usage      => 'PRODUCT PRICE code [qty=1] [options={...}] [params={...}] [customer=id] [ship_to=id|DE|US-CA] [coupon=CODE] [sku=CODE]',
    summary    => 'Price one line with the pricing engine, step by step: list price, tiers, discounts, coupon, tax.');

-- Coupons: redeem and release ----------------------------------------------------------------------

-- Called when an order is submitted (in its transaction, after price_order). The coupon row is
-- locked first, so concurrent redeemers of one coupon queue up and max_uses / per-customer
-- limits hold; the guarded UPDATE is the backstop. Redeeming the same coupon for the same order
-- again returns the existing redemption. Returns the redemption id. actor_id: the user who
-- submits (the audit row's actor).
DROP FUNCTION IF EXISTS orderly.coupon_redeem(text, bigint, bigint);
CREATE OR REPLACE FUNCTION orderly.coupon_redeem(coupon text, order_id bigint, customer_id bigint, actor_id bigint)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c        orderly.coupons;
    v_live   orderly.coupon_redemptions;
    v_id     bigint;
BEGIN
    IF order_id IS NULL THEN
        RAISE EXCEPTION 'order_id is required' USING ERRCODE = 'OL400';
    END IF;
    SELECT * INTO c FROM orderly.coupons x WHERE lower(x.code) = lower(btrim(coupon_redeem.coupon)) FOR UPDATE;
    IF c.id IS NULL THEN
        RAISE EXCEPTION 'unknown coupon "%"', orderly.for_message(btrim(coupon_redeem.coupon)) USING ERRCODE = 'OL404';
    END IF;
    SELECT * INTO v_live FROM orderly.coupon_redemptions r
    WHERE r.order_id = coupon_redeem.order_id AND r.released_at IS NULL;
    IF v_live.id IS NOT NULL AND v_live.coupon_id = c.id THEN
        RETURN v_live.id;
    ELSIF v_live.id IS NOT NULL THEN
        RAISE EXCEPTION 'order % already has another coupon', order_id USING ERRCODE = 'OL409';
    END IF;
    PERFORM orderly.coupon_check(c, coupon_redeem.coupon, coupon_redeem.customer_id, now());
    IF c.max_uses_per_customer IS NOT NULL AND customer_id IS NULL THEN
        RAISE EXCEPTION 'coupon "%" needs a customer', c.code USING ERRCODE = 'OL400';
    END IF;

    UPDATE orderly.coupons x SET used_count = x.used_count + 1
    WHERE x.id = c.id AND (x.max_uses IS NULL OR x.used_count < x.max_uses);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'coupon "%" has been used up', c.code USING ERRCODE = 'OL409';
    END IF;
    INSERT INTO orderly.coupon_redemptions (coupon_id, order_id, customer_id)
    VALUES (c.id, coupon_redeem.order_id, coupon_redeem.customer_id)
    RETURNING id INTO v_id;
    PERFORM orderly.audit(actor_id, 'coupon.redeem', 'coupon', c.code, jsonb_build_object('used_count', c.used_count),
                          jsonb_build_object('used_count', c.used_count + 1, 'order_id', order_id,
                                             'customer_id', customer_id, 'redemption_id', v_id));
    RETURN v_id;
END
$$;

-- When an order is cancelled or rejected: its coupon use no longer counts. Returns how many
-- redemptions were released (0 or 1); releasing twice is not an error. actor_id: the user who
-- rejects or cancels.
DROP FUNCTION IF EXISTS orderly.coupon_release(bigint);
CREATE OR REPLACE FUNCTION orderly.coupon_release(order_id bigint, actor_id bigint) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r orderly.coupon_redemptions;
    n integer := 0;
BEGIN
    FOR r IN
        UPDATE orderly.coupon_redemptions x SET released_at = now()
        WHERE x.order_id = coupon_release.order_id AND x.released_at IS NULL
        RETURNING x.*
    LOOP
        UPDATE orderly.coupons c SET used_count = c.used_count - 1 WHERE c.id = r.coupon_id;
        PERFORM orderly.audit(actor_id, 'coupon.release', 'coupon', (SELECT c.code FROM orderly.coupons c WHERE c.id = r.coupon_id),
                              NULL, jsonb_build_object('order_id', r.order_id, 'redemption_id', r.id));
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;
