-- Orderly: how an order line's pricing is stored and read back (issue 16, item 5;
-- V025__line_pricings.sql has the tables and why).
--
-- The pricing engine (R__120_pricing.sql) answers each line as one jsonb: product, SKU, options,
-- figures and the explanation. A stored line splits it three ways:
--   - its own figures are the line's columns (qty, list_price, gross, discount, net, tax_rate,
--     tax, is_override, product_id, sku_id, line_no);
--   - where its tax was taken for is tax_place (the explanation's tax step names it);
--   - the rest, the same for every line priced the same way, is one row of line_pricings,
--     found by the SHA-256 of its body (order_lines.pricing).
-- orderly.line_priced puts the engine's answer back together exactly (pgTAP 120 checks it for
-- every kind of line); the documents read the parts they show directly.
-- Before the stock, the orders and the queues that read lines.

-- orderly.pricing_body (what lines priced the same way share), orderly.pricing_place (the tax
-- step's place) and orderly.pricing_digest (a body's key) are V025's: they define what is
-- stored, so they change only with a migration.

-- Stores the bodies of the engine's lines (a jsonb array) that are not stored yet. In digest
-- order: two orders storing the same two new bodies wait for each other in the same order, so
-- they cannot deadlock. A body another transaction is storing makes this one wait for it to end.
CREATE OR REPLACE FUNCTION orderly.store_line_pricings(lines jsonb) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO orderly.line_pricings AS x (digest, body)
    SELECT DISTINCT ON (d) d, b
    FROM (SELECT orderly.pricing_body(l) AS b FROM jsonb_array_elements(lines) l) t,
         LATERAL orderly.pricing_digest(t.b) d
    ORDER BY d
    ON CONFLICT (digest) DO NOTHING;
END
$$;

-- The body of a stored pricing. plpgsql: its plan is kept for the session (a sql function that
-- reads a table is planned at every call).
CREATE OR REPLACE FUNCTION orderly.line_pricing(digest bytea) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v jsonb;
BEGIN
    SELECT p.body INTO v FROM orderly.line_pricings p WHERE p.digest = line_pricing.digest;
    RETURN v;
END
$$;

-- A stored line's explanation as the engine gave it: the body's steps with the tax step's place.
-- No SET search_path, so that it is inlined.
CREATE OR REPLACE FUNCTION orderly.line_explanation(steps jsonb, tax_place jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE
AS $$
    SELECT CASE WHEN $1 @> '[{"step":"tax"}]'
                THEN (SELECT jsonb_agg(CASE WHEN s ->> 'step' = 'tax' AND s ? 'place'
                                            THEN jsonb_set(s, '{place}', coalesce($2, 'null')) ELSE s END ORDER BY n)
                      FROM jsonb_array_elements($1) WITH ORDINALITY AS t(s, n))
                ELSE $1 END
$$;

-- A stored line as the pricing engine answered it (orderly.price_order's lines[]).
CREATE OR REPLACE FUNCTION orderly.line_priced(l orderly.order_lines) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    b jsonb := orderly.line_pricing(l.pricing);
BEGIN
    RETURN b || jsonb_build_object(
        'line', l.line_no, 'qty', l.qty, 'list_price', l.list_price, 'gross', l.gross, 'discount', l.discount,
        'net', l.net, 'tax_rate', trim_scale(l.tax_rate), 'tax', l.tax, 'override', l.is_override,
        'product_id', l.product_id, 'sku_id', l.sku_id,
        'explanation', orderly.line_explanation(b -> 'explanation', l.tax_place));
END
$$;
