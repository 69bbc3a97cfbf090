-- Orderly: catalog helpers and api functions — browsing (CATALOG, PRODUCT SHOW, under
-- catalog.read; PRODUCT PRICE is the pricing engine's, R__120_pricing.sql) and editing (under
-- catalog.manage; STOCK SET/ADJUST are in R__115_stock.sql). Every change is audited in its own
-- transaction; validation comes first so that a refused call changes nothing.
-- Codes are matched case-insensitively: catalog codes are stored upper-case, option codes
-- lower-case (see V006__catalog.sql).

-- Helpers ----------------------------------------------------------------------------------------

-- The category and all its parents (for rules on a category, which cover sub-categories).
-- The depth bound only guards against a corrupt tree; the api cannot create a cycle.
CREATE OR REPLACE FUNCTION orderly.category_ancestors(category_id bigint) RETURNS bigint[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH RECURSIVE up (id, parent_id, depth) AS (
        SELECT c.id, c.parent_id, 1 FROM orderly.categories c WHERE c.id = $1
        UNION ALL
        SELECT c.id, c.parent_id, up.depth + 1 FROM orderly.categories c JOIN up ON c.id = up.parent_id WHERE up.depth < 50
    )
    SELECT coalesce(array_agg(up.id ORDER BY up.depth), '{}') FROM up
$$;

CREATE OR REPLACE FUNCTION orderly.category_descendants(category_id bigint) RETURNS bigint[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH RECURSIVE down (id, depth) AS (
        SELECT c.id, 1 FROM orderly.categories c WHERE c.id = $1
        UNION ALL
        SELECT c.id, down.depth + 1 FROM orderly.categories c JOIN down ON c.parent_id = down.id WHERE down.depth < 50
    )
    SELECT coalesce(array_agg(down.id), '{}') FROM down
$$;

-- A catalog code argument (category, product, SKU), upper-cased and checked.
CREATE OR REPLACE FUNCTION orderly.arg_code(args jsonb, key text, required boolean DEFAULT false) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v text := upper(btrim(orderly.arg_text(args, key, required)));
BEGIN
    IF v = '' THEN
        v := NULL;
    END IF;
    IF v IS NOT NULL AND v !~ '^[A-Z0-9][A-Z0-9_.-]{0,47}$' THEN
        RAISE EXCEPTION 'invalid %: use 1 to 48 letters, digits, "_", "." or "-"', key USING ERRCODE = 'OL400';
    END IF;
    RETURN v;
END
$$;

-- An option group or value code, lower-cased and checked.
CREATE OR REPLACE FUNCTION orderly.check_option_code(code text, what text) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v text := lower(btrim(code));
BEGIN
    IF v IS NULL OR v !~ '^[a-z0-9][a-z0-9_-]{0,31}$' OR (what = 'option' AND v !~ '^[a-z]') THEN
        RAISE EXCEPTION 'invalid % code "%": use 1 to 32 lowercase letters, digits, "_" or "-"',
            what, orderly.for_message(code) USING ERRCODE = 'OL400';
    END IF;
    RETURN v;
END
$$;

CREATE OR REPLACE FUNCTION orderly.check_catalog_name(name text, what text) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF name IS NULL OR length(btrim(name)) NOT BETWEEN 1 AND 200 OR name ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION '% must be 1 to 200 characters on one line', what USING ERRCODE = 'OL400';
    END IF;
    RETURN btrim(name);
END
$$;

CREATE OR REPLACE FUNCTION orderly.check_price(value numeric, what text, allow_negative boolean DEFAULT false) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF value IS NULL THEN
        RETURN NULL;
    END IF;
    IF value <> round(value, 2) THEN
        RAISE EXCEPTION '% must have at most 2 decimals', what USING ERRCODE = 'OL400';
    END IF;
    IF (value < 0 AND NOT allow_negative) OR abs(value) > 999999999999.99 THEN
        RAISE EXCEPTION '% must be between % and 999999999999.99', what, CASE WHEN allow_negative THEN '-999999999999.99' ELSE '0' END
            USING ERRCODE = 'OL400';
    END IF;
    RETURN value;
END
$$;

CREATE OR REPLACE FUNCTION orderly.category_by_code(code text) RETURNS orderly.categories
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c orderly.categories;
BEGIN
    SELECT * INTO c FROM orderly.categories x WHERE x.code = upper(btrim(category_by_code.code));
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown category "%"', orderly.for_message(code) USING ERRCODE = 'OL404';
    END IF;
    RETURN c;
END
$$;

-- Locked: edits of one product serialize, and its before/after snapshots are exact.
CREATE OR REPLACE FUNCTION orderly.product_for_update(code text) RETURNS orderly.products
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p orderly.products;
BEGIN
    SELECT * INTO p FROM orderly.products x WHERE x.code = upper(btrim(product_for_update.code)) FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown product "%"', orderly.for_message(code) USING ERRCODE = 'OL404';
    END IF;
    RETURN p;
END
$$;

CREATE OR REPLACE FUNCTION orderly.sku_for_update(code text) RETURNS orderly.skus
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s orderly.skus;
BEGIN
    SELECT * INTO s FROM orderly.skus x WHERE x.code = upper(btrim(sku_for_update.code)) FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown SKU "%"', orderly.for_message(code) USING ERRCODE = 'OL404';
    END IF;
    RETURN s;
END
$$;

CREATE OR REPLACE FUNCTION orderly.sku_doc(s orderly.skus) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object('sku', ($1).code, 'sku_id', ($1).id, 'options', ($1).options, 'active', ($1).active,
                              'on_hand', ($1).stock_on_hand, 'reserved', ($1).stock_reserved,
                              'available', ($1).stock_on_hand - ($1).stock_reserved)
$$;

-- The CATALOG row of a product.
CREATE OR REPLACE FUNCTION orderly.product_summary(p orderly.products) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object('code', ($1).code, 'name', ($1).name, 'kind', ($1).kind,
                              'category', (SELECT c.code FROM orderly.categories c WHERE c.id = ($1).category_id),
                              'base_price', ($1).base_price, 'currency', ($1).currency, 'active', ($1).active,
                              'available', CASE WHEN ($1).kind = 'goods' THEN
                                  (SELECT coalesce(sum(s.stock_on_hand - s.stock_reserved), 0) FROM orderly.skus s
                                   WHERE s.product_id = ($1).id AND s.active) END)
$$;

-- PRODUCT SHOW's document, also the audit snapshot of a product.
CREATE OR REPLACE FUNCTION orderly.product_doc(product_id bigint) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT orderly.product_summary(p) || jsonb_build_object(
        'id', p.id,
        'description', p.description,
        'category', (SELECT jsonb_build_object('code', c.code, 'name', c.name,
                                               'path', (SELECT jsonb_agg(a.code ORDER BY u.n DESC)
                                                        FROM unnest(orderly.category_ancestors(c.id)) WITH ORDINALITY AS u(id, n)
                                                        JOIN orderly.categories a ON a.id = u.id))
                     FROM orderly.categories c WHERE c.id = p.category_id),
        'formula', p.formula,
        'params', p.formula_params,
        'options', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                        'group', g.code, 'name', g.name, 'variant', g.variant, 'required', g.required, 'multiple', g.multiple,
                        'position', g.position,
                        'values', (SELECT coalesce(jsonb_agg(jsonb_build_object('value', v.code, 'name', v.name,
                                                                                'price_delta', v.price_delta, 'active', v.active)
                                                             ORDER BY v.position, v.code), '[]')
                                   FROM orderly.option_values v WHERE v.group_id = g.id))
                        ORDER BY g.position, g.code), '[]')
                    FROM orderly.option_groups g WHERE g.product_id = p.id),
        'skus', (SELECT coalesce(jsonb_agg(orderly.sku_doc(s) ORDER BY s.code), '[]')
                 FROM orderly.skus s WHERE s.product_id = p.id),
        'components', CASE WHEN p.kind = 'bundle' THEN
            (SELECT coalesce(jsonb_agg(jsonb_build_object('sku', s.code, 'sku_id', s.id, 'qty', bi.qty,
                                                          'product', (SELECT x.code FROM orderly.products x WHERE x.id = s.product_id))
                                       ORDER BY s.code), '[]')
             FROM orderly.bundle_items bi JOIN orderly.skus s ON s.id = bi.sku_id
             WHERE bi.bundle_product_id = p.id) END,
        'created_at', orderly.json_time(p.created_at),
        'updated_at', orderly.json_time(p.updated_at))
    FROM orderly.products p
    WHERE p.id = $1
$$;

-- Browsing ---------------------------------------------------------------------------------------

-- CATALOG [category=CODE] [q=text] [limit=50] [after=CODE]: one row per active product, by code;
-- a category includes its sub-categories; q matches code or name (substring, any case).
CREATE OR REPLACE FUNCTION api.catalog(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u       orderly.users := orderly.begin_command('CATALOG', catalog.actor, catalog.args);
    v_cat   text := orderly.arg_text(catalog.args, 'category');
    v_q     text := lower(btrim(orderly.arg_text(catalog.args, 'q')));
    v_limit integer := coalesce(orderly.arg_int(catalog.args, 'limit'), 50);
    v_after text := upper(btrim(orderly.arg_text(catalog.args, 'after')));
    v_cats  bigint[];
BEGIN
    IF v_limit NOT BETWEEN 1 AND 500 THEN
        RAISE EXCEPTION 'limit must be between 1 and 500' USING ERRCODE = 'OL400';
    END IF;
    IF length(v_q) > 100 THEN
        RAISE EXCEPTION 'q must be at most 100 characters' USING ERRCODE = 'OL400';
    END IF;
    IF nullif(btrim(v_cat), '') IS NOT NULL THEN
        v_cats := orderly.category_descendants((orderly.category_by_code(v_cat)).id);
    END IF;
    RETURN QUERY
    SELECT orderly.product_summary(p)::json
    FROM orderly.products p
    WHERE p.active
      AND (v_cats IS NULL OR p.category_id = ANY (v_cats))
      -- strpos, not LIKE: the client's text is never a pattern.
      AND (coalesce(v_q, '') = '' OR strpos(lower(p.code), v_q) > 0 OR strpos(lower(p.name), v_q) > 0)
      AND (coalesce(v_after, '') = '' OR p.code > v_after)
    ORDER BY p.code
    LIMIT v_limit;
END
$$;

SELECT orderly.register_command('CATALOG', 'api.catalog', 'catalog.read',
    arguments  => 'category:code q:text limit:integer after:code',
    usage      => 'CATALOG [category=CODE] [q=text] [limit=50] [after=CODE]',
    summary    => 'Active products by code; a category includes its sub-categories; q matches code or name.');

-- PRODUCT SHOW code: the whole product, inactive ones included (an order may still show them);
-- a customer's login sees an inactive product only when one of its orders has it (taken off sale,
-- or not on sale yet, it is not the customer's to find: the same answer as no such product), and
-- of its SKUs what is available, not what is on hand and reserved (R__045: other customers'
-- pending orders, live).
CREATE OR REPLACE FUNCTION api.product_show(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u      orderly.users := orderly.begin_command('PRODUCT SHOW', product_show.actor, product_show.args);
    v_code text := orderly.arg_code(product_show.args, 'code', true);
    v_id   bigint;
BEGIN
    SELECT p.id INTO v_id FROM orderly.products p
    WHERE p.code = v_code
      AND (p.active OR orderly.own_customer(u) IS NULL
           OR EXISTS (SELECT 1 FROM orderly.order_lines l WHERE l.customer_id = orderly.own_customer(u) AND l.product_id = p.id));
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown product "%"', v_code USING ERRCODE = 'OL404';
    END IF;
    RETURN NEXT orderly.visible_doc('product', orderly.product_doc(v_id)::json, orderly.own_customer(u));
END
$$;

SELECT orderly.register_command('PRODUCT SHOW', 'api.product_show', 'catalog.read',
    arguments  => 'code:code!',
    positional => '{code}',
    usage      => 'PRODUCT SHOW code',
    summary    => 'A product with its category, options and price deltas, SKUs with stock, bundle components.');

-- Editing (catalog.manage) ------------------------------------------------------------------------

-- CATEGORY CREATE code=PHONES name="Phones" [parent=CODE]
CREATE OR REPLACE FUNCTION api.category_create(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.begin_command('CATEGORY CREATE', category_create.actor, category_create.args);
    v_replay json := orderly.replay(u, category_create.args);
    v_code   text := orderly.arg_code(category_create.args, 'code', true);
    v_name   text := orderly.check_catalog_name(orderly.arg_text(category_create.args, 'name', true), 'name');
    v_parent text := orderly.arg_code(category_create.args, 'parent');
    v_pid    bigint;
    c        orderly.categories;
    v_doc    jsonb;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    IF v_parent IS NOT NULL THEN
        -- KEY SHARE: the parent cannot vanish before the insert commits.
        SELECT x.id INTO v_pid FROM orderly.categories x WHERE x.code = v_parent FOR KEY SHARE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'unknown category "%"', v_parent USING ERRCODE = 'OL404';
        END IF;
    END IF;
    BEGIN
        INSERT INTO orderly.categories (parent_id, code, name) VALUES (v_pid, v_code, v_name) RETURNING * INTO c;
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'category % already exists', v_code USING ERRCODE = 'OL409';
    END;
    v_doc := jsonb_build_object('code', c.code, 'name', c.name, 'parent', v_parent, 'id', c.id);
    PERFORM orderly.audit(u.id, 'category.create', 'category', c.code, NULL, v_doc);
    RETURN NEXT orderly.remember(u, args, v_doc::json);
END
$$;

SELECT orderly.register_command('CATEGORY CREATE', 'api.category_create', 'catalog.manage',
    arguments  => 'code:code! name:text! parent:code',
    usage      => 'CATEGORY CREATE code= name= [parent=CODE]',
    summary    => 'Create a category, optionally under a parent.',
    changes    => true);

-- PRODUCT CREATE code=PHN-X1 name="Phone X1" kind=goods|service|custom [category=CODE]
-- [base_price=0] [currency=EUR] [description=...] [formula="..." params={...}] [sku=CODE]
-- A goods product gets its default SKU (code: sku=, else the product code) at once.
CREATE OR REPLACE FUNCTION api.product_create(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u          orderly.users := orderly.begin_command('PRODUCT CREATE', product_create.actor, product_create.args);
    v_replay   json := orderly.replay(u, product_create.args);
    v_code     text := orderly.arg_code(product_create.args, 'code', true);
    v_name     text := orderly.check_catalog_name(orderly.arg_text(product_create.args, 'name', true), 'name');
    v_kind     text := lower(btrim(orderly.arg_text(product_create.args, 'kind', true)));
    v_price    numeric := coalesce(orderly.check_price(orderly.arg_numeric(product_create.args, 'base_price'), 'base_price'), 0);
    v_currency text := orderly.check_currency(coalesce(orderly.arg_text(product_create.args, 'currency'), 'EUR'));
    v_desc     text := coalesce(orderly.arg_text(product_create.args, 'description'), '');
    v_formula  text := nullif(btrim(orderly.arg_text(product_create.args, 'formula')), '');
    v_params   jsonb := orderly.arg_value(product_create.args, 'params');
    v_sku      text := coalesce(orderly.arg_code(product_create.args, 'sku'), v_code);
    v_cat      text := orderly.arg_code(product_create.args, 'category');
    v_cat_id   bigint;
    p          orderly.products;
    v_doc      jsonb;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    IF v_kind NOT IN ('goods', 'service', 'custom') THEN
        RAISE EXCEPTION 'kind must be goods, service or custom (bundles: BUNDLE CREATE)' USING ERRCODE = 'OL400';
    END IF;
    IF length(v_desc) > 2000 THEN
        RAISE EXCEPTION 'description must be at most 2000 characters' USING ERRCODE = 'OL400';
    END IF;
    IF (v_formula IS NOT NULL OR v_params IS NOT NULL) AND v_kind <> 'custom' THEN
        RAISE EXCEPTION 'only custom products have a formula' USING ERRCODE = 'OL400';
    END IF;
    IF v_formula IS NOT NULL OR v_params IS NOT NULL THEN
        IF v_formula IS NULL THEN
            RAISE EXCEPTION 'formula is required with params' USING ERRCODE = 'OL400';
        END IF;
        v_params := orderly.formula_check(v_formula, coalesce(v_params, '{}'));
    END IF;
    IF v_cat IS NOT NULL THEN
        v_cat_id := (orderly.category_by_code(v_cat)).id;
    END IF;
    IF EXISTS (SELECT 1 FROM orderly.products x WHERE x.code = v_code) THEN
        RAISE EXCEPTION 'product % already exists', v_code USING ERRCODE = 'OL409';
    END IF;
    IF v_kind = 'goods' AND EXISTS (SELECT 1 FROM orderly.skus x WHERE x.code = v_sku) THEN
        RAISE EXCEPTION 'SKU % already exists', v_sku USING ERRCODE = 'OL409';
    END IF;

    BEGIN
        INSERT INTO orderly.products (code, name, category_id, kind, base_price, currency, description, formula, formula_params)
        VALUES (v_code, v_name, v_cat_id, v_kind, v_price, v_currency, v_desc, v_formula, v_params)
        RETURNING * INTO p;
        IF v_kind = 'goods' THEN
            INSERT INTO orderly.skus (product_id, code) VALUES (p.id, v_sku);
        END IF;
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'product % or SKU % already exists', v_code, v_sku USING ERRCODE = 'OL409';
    END;
    v_doc := orderly.product_doc(p.id);
    PERFORM orderly.audit(u.id, 'product.create', 'product', p.code, NULL, v_doc);
    RETURN NEXT orderly.remember(u, args, v_doc::json);
END
$$;

SELECT orderly.register_command('PRODUCT CREATE', 'api.product_create', 'catalog.manage',
    arguments  => 'code:code! name:text! kind:text! category:code base_price:number currency:code description:text formula:text params:object sku:code',
    usage      => 'PRODUCT CREATE code= name= kind=goods|service|custom [category=] [base_price=] [currency=EUR] [description=] [formula= params={...}] [sku=]',
    summary    => 'Create a product; goods get a default SKU, custom products may have a price formula.',
    changes    => true);

-- PRODUCT UPDATE code [name=] [category=] [base_price=] [description=] [active=] [formula= params=]
CREATE OR REPLACE FUNCTION api.product_update(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.begin_command('PRODUCT UPDATE', product_update.actor, product_update.args);
    v_replay json := orderly.replay(u, product_update.args);
    p        orderly.products;
    v_name   text := orderly.arg_text(product_update.args, 'name');
    v_price  numeric := orderly.check_price(orderly.arg_numeric(product_update.args, 'base_price'), 'base_price');
    v_desc   text := orderly.arg_text(product_update.args, 'description');
    v_active boolean := orderly.arg_bool(product_update.args, 'active');
    v_cat    text := orderly.arg_code(product_update.args, 'category');
    v_formula text := nullif(btrim(orderly.arg_text(product_update.args, 'formula')), '');
    v_params jsonb := orderly.arg_value(product_update.args, 'params');
    v_before jsonb;
    v_after  jsonb;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    p := orderly.product_for_update(orderly.arg_code(product_update.args, 'code', true));
    v_before := orderly.product_doc(p.id);
    IF v_name IS NOT NULL THEN
        p.name := orderly.check_catalog_name(v_name, 'name');
    END IF;
    IF v_price IS NOT NULL THEN
        p.base_price := v_price;
    END IF;
    IF v_desc IS NOT NULL THEN
        IF length(v_desc) > 2000 THEN
            RAISE EXCEPTION 'description must be at most 2000 characters' USING ERRCODE = 'OL400';
        END IF;
        p.description := v_desc;
    END IF;
    IF v_active IS NOT NULL THEN
        p.active := v_active;
    END IF;
    IF v_cat IS NOT NULL THEN
        p.category_id := (orderly.category_by_code(v_cat)).id;
    END IF;
    IF v_formula IS NOT NULL OR v_params IS NOT NULL THEN
        IF p.kind <> 'custom' THEN
            RAISE EXCEPTION 'only custom products have a formula' USING ERRCODE = 'OL400';
        END IF;
        -- Checked as a whole: a new formula against the new (or kept) declarations.
        p.formula_params := orderly.formula_check(coalesce(v_formula, p.formula), coalesce(v_params, p.formula_params, '{}'));
        p.formula := coalesce(v_formula, p.formula);
    END IF;

    UPDATE orderly.products x
    SET name = p.name, base_price = p.base_price, description = p.description, active = p.active,
        category_id = p.category_id, formula = p.formula, formula_params = p.formula_params, updated_at = now()
    WHERE x.id = p.id;
    v_after := orderly.product_doc(p.id);
    PERFORM orderly.audit(u.id, 'product.update', 'product', p.code, v_before, v_after);
    RETURN NEXT orderly.remember(u, args, v_after::json);
END
$$;

SELECT orderly.register_command('PRODUCT UPDATE', 'api.product_update', 'catalog.manage',
    arguments  => 'code:code! name:text category:code base_price:number description:text active:boolean formula:text params:object',
    positional => '{code}',
    usage      => 'PRODUCT UPDATE code [name=] [category=] [base_price=] [description=] [active=] [formula=] [params={...}]',
    summary    => 'Change the fields given; active=false takes a product off sale.',
    changes    => true);

-- OPTION ADD product=CODE group=storage [name="Storage"] [variant=true] [required=] [multiple=]
--   [position=] values=[{"value":"128","name":"128 GB","price_delta":0}, ...]
-- Creates the group, or adds new values to an existing one (its flags are then left alone).
-- Adding a variant group to a goods product retires its default SKU (options {}), which no
-- longer names a complete choice; refused while that SKU holds stock.
CREATE OR REPLACE FUNCTION api.option_add(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u          orderly.users := orderly.begin_command('OPTION ADD', option_add.actor, option_add.args);
    v_replay   json := orderly.replay(u, option_add.args);
    p          orderly.products;
    v_code     text := orderly.check_option_code(orderly.arg_text(option_add.args, 'group', true), 'option');
    v_name     text := orderly.arg_text(option_add.args, 'name');
    v_variant  boolean := coalesce(orderly.arg_bool(option_add.args, 'variant'), false);
    v_required boolean := coalesce(orderly.arg_bool(option_add.args, 'required'), false);
    v_multiple boolean := coalesce(orderly.arg_bool(option_add.args, 'multiple'), false);
    v_position integer := coalesce(orderly.arg_int(option_add.args, 'position'), 0);
    v_values   jsonb := orderly.arg_value(option_add.args, 'values', true);
    v_before   jsonb;
    v_after    jsonb;
    g          orderly.option_groups;
    e          jsonb;
    i          integer;
    v_vcode    text;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    p := orderly.product_for_update(orderly.arg_code(option_add.args, 'product', true));
    v_before := orderly.product_doc(p.id);
    IF p.kind = 'bundle' THEN
        RAISE EXCEPTION 'bundles have no options' USING ERRCODE = 'OL400';
    END IF;
    IF jsonb_typeof(v_values) <> 'array' OR jsonb_array_length(v_values) NOT BETWEEN 1 AND 100 THEN
        RAISE EXCEPTION 'values must be a list of 1 to 100 objects like {"value":"black","name":"Black","price_delta":0}'
            USING ERRCODE = 'OL400';
    END IF;
    SELECT * INTO g FROM orderly.option_groups x WHERE x.product_id = p.id AND x.code = v_code;
    IF NOT FOUND THEN
        IF v_variant AND p.kind <> 'goods' THEN
            RAISE EXCEPTION 'only goods have variant options (they pick the SKU)' USING ERRCODE = 'OL400';
        END IF;
        IF v_variant AND v_multiple THEN
            RAISE EXCEPTION 'a variant option takes one value: variant and multiple exclude each other' USING ERRCODE = 'OL400';
        END IF;
        IF v_variant AND EXISTS (SELECT 1 FROM orderly.skus s WHERE s.product_id = p.id AND s.options = '{}'
                                 AND s.active AND s.stock_on_hand > 0) THEN
            RAISE EXCEPTION 'the default SKU of % holds stock: set it to 0 before adding a variant option', p.code
                USING ERRCODE = 'OL409';
        END IF;
        INSERT INTO orderly.option_groups (product_id, code, name, variant, required, multiple, position)
        VALUES (p.id, v_code, orderly.check_catalog_name(coalesce(v_name, initcap(replace(v_code, '_', ' '))), 'name'),
                v_variant, v_required, v_multiple, v_position)
        RETURNING * INTO g;
        IF v_variant THEN
            UPDATE orderly.skus s SET active = false, updated_at = now()
            WHERE s.product_id = p.id AND s.options = '{}' AND s.active;
        END IF;
    END IF;

    FOR e, i IN SELECT x.value, x.n::integer FROM jsonb_array_elements(v_values) WITH ORDINALITY AS x(value, n) LOOP
        IF jsonb_typeof(e) <> 'object' THEN
            RAISE EXCEPTION 'value %: must be an object like {"value":"black","name":"Black"}', i USING ERRCODE = 'OL400';
        END IF;
        v_vcode := orderly.check_option_code(orderly.arg_text(e, 'value', true), 'value');
        IF EXISTS (SELECT 1 FROM orderly.option_values x WHERE x.group_id = g.id AND x.code = v_vcode) THEN
            RAISE EXCEPTION 'option % already has the value %', g.code, v_vcode USING ERRCODE = 'OL409';
        END IF;
        INSERT INTO orderly.option_values (group_id, code, name, price_delta, position)
        VALUES (g.id, v_vcode,
                orderly.check_catalog_name(coalesce(orderly.arg_text(e, 'name'), v_vcode), 'value name'),
                coalesce(orderly.check_price(orderly.arg_numeric(e, 'price_delta'), 'price_delta', true), 0),
                coalesce(orderly.arg_int(e, 'position'), i));
    END LOOP;

    UPDATE orderly.products x SET updated_at = now() WHERE x.id = p.id;
    v_after := orderly.product_doc(p.id);
    PERFORM orderly.audit(u.id, 'product.option_add', 'product', p.code, v_before, v_after);
    RETURN NEXT orderly.remember(u, args, v_after::json);
END
$$;

SELECT orderly.register_command('OPTION ADD', 'api.option_add', 'catalog.manage',
    arguments  => 'product:code! group:code! name:text variant:boolean required:boolean multiple:boolean position:integer values:array!',
    usage      => 'OPTION ADD product= group= [name=] [variant=] [required=] [multiple=] [position=] values=[{"value":..,"name":..,"price_delta":..}]',
    summary    => 'Add an option group with its values, or new values to an existing group.',
    changes    => true);

-- SKU CREATE product=CODE code=PHN-X1-128-BLK options={"colour":"black","storage":"128"} [stock=0]
-- options must name one value of every variant group, and no other group.
CREATE OR REPLACE FUNCTION api.sku_create(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u         orderly.users := orderly.begin_command('SKU CREATE', sku_create.actor, sku_create.args);
    v_replay  json := orderly.replay(u, sku_create.args);
    p         orderly.products;
    v_code    text := orderly.arg_code(sku_create.args, 'code', true);
    v_given   jsonb := coalesce(orderly.arg_value(sku_create.args, 'options'), '{}');
    v_stock   integer := coalesce(orderly.arg_int(sku_create.args, 'stock'), 0);
    v_options jsonb := '{}';
    g         orderly.option_groups;
    v         text;
    k         text;
    s         orderly.skus;
    v_doc     jsonb;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    p := orderly.product_for_update(orderly.arg_code(sku_create.args, 'product', true));
    IF p.kind <> 'goods' THEN
        RAISE EXCEPTION 'only goods have SKUs (% is %)', p.code, p.kind USING ERRCODE = 'OL400';
    END IF;
    IF jsonb_typeof(v_given) <> 'object' THEN
        RAISE EXCEPTION 'options must be an object like {"colour": "black"}' USING ERRCODE = 'OL400';
    END IF;
    IF v_stock NOT BETWEEN 0 AND 100000000 THEN
        RAISE EXCEPTION 'stock must be between 0 and 100000000' USING ERRCODE = 'OL400';
    END IF;
    FOR k IN SELECT jsonb_object_keys(v_given) LOOP
        IF NOT EXISTS (SELECT 1 FROM orderly.option_groups x WHERE x.product_id = p.id AND x.code = lower(k) AND x.variant) THEN
            RAISE EXCEPTION '"%" is not a variant option of %', orderly.for_message(k), p.code USING ERRCODE = 'OL400';
        END IF;
    END LOOP;
    FOR g IN SELECT * FROM orderly.option_groups x WHERE x.product_id = p.id AND x.variant ORDER BY x.code LOOP
        SELECT lower(btrim(e.value #>> '{}')) INTO v FROM jsonb_each(v_given) e
        WHERE lower(e.key) = g.code AND jsonb_typeof(e.value) IN ('string', 'number');
        IF v IS NULL THEN
            RAISE EXCEPTION 'option % is required', g.code USING ERRCODE = 'OL400';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM orderly.option_values x WHERE x.group_id = g.id AND x.code = v) THEN
            RAISE EXCEPTION 'unknown value "%" for option %', orderly.for_message(v), g.code USING ERRCODE = 'OL400';
        END IF;
        v_options := v_options || jsonb_build_object(g.code, v);
    END LOOP;
    IF EXISTS (SELECT 1 FROM orderly.skus x WHERE x.code = v_code) THEN
        RAISE EXCEPTION 'SKU % already exists', v_code USING ERRCODE = 'OL409';
    END IF;
    IF EXISTS (SELECT 1 FROM orderly.skus x WHERE x.product_id = p.id AND x.options = v_options) THEN
        RAISE EXCEPTION '% already has a SKU for these options', p.code USING ERRCODE = 'OL409';
    END IF;
    BEGIN
        INSERT INTO orderly.skus (product_id, code, options, stock_on_hand)
        VALUES (p.id, v_code, v_options, v_stock)
        RETURNING * INTO s;
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'SKU % already exists', v_code USING ERRCODE = 'OL409';
    END;
    v_doc := orderly.sku_doc(s) || jsonb_build_object('product', p.code);
    PERFORM orderly.audit(u.id, 'sku.create', 'sku', s.code, NULL, v_doc);
    RETURN NEXT orderly.remember(u, args, v_doc::json);
END
$$;

SELECT orderly.register_command('SKU CREATE', 'api.sku_create', 'catalog.manage',
    arguments  => 'product:code! code:code! options:object stock:integer',
    usage      => 'SKU CREATE product= code= options={...} [stock=0]',
    summary    => 'Add a SKU for one value of every variant option.',
    changes    => true);

-- BUNDLE CREATE code=SET-X1 name="X1 starter set" base_price=899 [category=] [currency=EUR]
--   [description=] items=[{"sku":"PHN-X1-128-BLK","qty":1},{"sku":"ACC-CASE","qty":1}]
-- Components are goods SKUs in the bundle's currency; the bundle is priced at its own price.
CREATE OR REPLACE FUNCTION api.bundle_create(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u          orderly.users := orderly.begin_command('BUNDLE CREATE', bundle_create.actor, bundle_create.args);
    v_replay   json := orderly.replay(u, bundle_create.args);
    v_code     text := orderly.arg_code(bundle_create.args, 'code', true);
    v_name     text := orderly.check_catalog_name(orderly.arg_text(bundle_create.args, 'name', true), 'name');
    v_price    numeric := orderly.check_price(orderly.arg_numeric(bundle_create.args, 'base_price', true), 'base_price');
    v_currency text := orderly.check_currency(coalesce(orderly.arg_text(bundle_create.args, 'currency'), 'EUR'));
    v_desc     text := coalesce(orderly.arg_text(bundle_create.args, 'description'), '');
    v_cat      text := orderly.arg_code(bundle_create.args, 'category');
    v_items    jsonb := orderly.arg_value(bundle_create.args, 'items', true);
    v_cat_id   bigint;
    p          orderly.products;
    e          jsonb;
    i          integer;
    v_sku      text;
    v_qty      integer;
    s          orderly.skus;
    v_item     orderly.products;   -- the product of item i's SKU
    v_doc      jsonb;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    IF length(v_desc) > 2000 THEN
        RAISE EXCEPTION 'description must be at most 2000 characters' USING ERRCODE = 'OL400';
    END IF;
    IF jsonb_typeof(v_items) <> 'array' OR jsonb_array_length(v_items) NOT BETWEEN 1 AND 50 THEN
        RAISE EXCEPTION 'items must be a list of 1 to 50 objects like {"sku":"PHN-X1-128-BLK","qty":1}' USING ERRCODE = 'OL400';
    END IF;
    IF v_cat IS NOT NULL THEN
        v_cat_id := (orderly.category_by_code(v_cat)).id;
    END IF;
    IF EXISTS (SELECT 1 FROM orderly.products x WHERE x.code = v_code) THEN
        RAISE EXCEPTION 'product % already exists', v_code USING ERRCODE = 'OL409';
    END IF;
    BEGIN
        INSERT INTO orderly.products (code, name, category_id, kind, base_price, currency, description)
        VALUES (v_code, v_name, v_cat_id, 'bundle', v_price, v_currency, v_desc)
        RETURNING * INTO p;
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'product % already exists', v_code USING ERRCODE = 'OL409';
    END;
    FOR e, i IN SELECT x.value, x.n::integer FROM jsonb_array_elements(v_items) WITH ORDINALITY AS x(value, n) LOOP
        IF jsonb_typeof(e) <> 'object' THEN
            RAISE EXCEPTION 'item %: must be an object like {"sku":"PHN-X1-128-BLK","qty":1}', i USING ERRCODE = 'OL400';
        END IF;
        BEGIN
            v_sku := orderly.arg_code(e, 'sku', true);
            v_qty := coalesce(orderly.arg_int(e, 'qty'), 1);
        EXCEPTION WHEN SQLSTATE 'OL400' THEN
            RAISE EXCEPTION 'item %: sku and qty (1 to 1000) are required', i USING ERRCODE = 'OL400';
        END;
        IF v_qty NOT BETWEEN 1 AND 1000 THEN
            RAISE EXCEPTION 'item %: qty must be between 1 and 1000', i USING ERRCODE = 'OL400';
        END IF;
        SELECT * INTO s FROM orderly.skus x WHERE x.code = v_sku FOR KEY SHARE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'item %: unknown SKU "%"', i, v_sku USING ERRCODE = 'OL404';
        END IF;
        SELECT * INTO v_item FROM orderly.products x WHERE x.id = s.product_id;
        IF NOT s.active OR NOT v_item.active THEN
            RAISE EXCEPTION 'item %: SKU % is not available', i, v_sku USING ERRCODE = 'OL409';
        END IF;
        IF v_item.currency <> v_currency THEN
            RAISE EXCEPTION 'item %: SKU % is sold in another currency', i, v_sku USING ERRCODE = 'OL400';
        END IF;
        IF EXISTS (SELECT 1 FROM orderly.bundle_items b WHERE b.bundle_product_id = p.id AND b.sku_id = s.id) THEN
            RAISE EXCEPTION 'item %: SKU % is listed twice', i, v_sku USING ERRCODE = 'OL400';
        END IF;
        INSERT INTO orderly.bundle_items (bundle_product_id, sku_id, qty) VALUES (p.id, s.id, v_qty);
    END LOOP;
    v_doc := orderly.product_doc(p.id);
    PERFORM orderly.audit(u.id, 'bundle.create', 'product', p.code, NULL, v_doc);
    RETURN NEXT orderly.remember(u, args, v_doc::json);
END
$$;

SELECT orderly.register_command('BUNDLE CREATE', 'api.bundle_create', 'catalog.manage',
    arguments  => 'code:code! name:text! base_price:number! items:array! category:code currency:code description:text',
    usage      => 'BUNDLE CREATE code= name= base_price= items=[{"sku":..,"qty":..}] [category=] [currency=EUR] [description=]',
    summary    => 'Create a bundle: its own price, fixed component SKUs.',
    changes    => true);
