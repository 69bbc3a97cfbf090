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

-- orderly.pricing_parts (an engine line split into its shared body, the body's key and its tax
-- place) is V025's: it defines what is stored, so it changes only with a migration.

-- Splits the engine's lines (a jsonb array; each split once) and stores the bodies not stored
-- yet; returns each line with its key and tax place, for the caller to write the line. The
-- bodies are inserted in key order: two orders storing the same two new bodies wait for each
-- other in the same order, so they cannot deadlock (a body another transaction is storing makes
-- this one wait for that transaction to end).
DROP FUNCTION IF EXISTS orderly.store_line_pricings(jsonb);
CREATE OR REPLACE FUNCTION orderly.store_line_pricings(lines jsonb)
RETURNS TABLE (priced jsonb, pricing bytea, tax_place jsonb)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    WITH split AS MATERIALIZED (
        SELECT t.l, p.body, p.digest, p.place
        FROM jsonb_array_elements(lines) AS t(l), LATERAL orderly.pricing_parts(t.l) p),
    stored AS (
        INSERT INTO orderly.line_pricings (digest, body)
        SELECT DISTINCT ON (x.digest) x.digest, x.body FROM split x ORDER BY x.digest
        ON CONFLICT ON CONSTRAINT line_pricings_pkey DO NOTHING)
    SELECT x.l, x.digest, x.place FROM split x;
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
-- plpgsql: its plan is kept for the session (a sql function with a sub-select is planned at every
-- call).
CREATE OR REPLACE FUNCTION orderly.line_explanation(steps jsonb, tax_place jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT steps @> '[{"step": "tax"}]' THEN
        RETURN steps;
    END IF;
    RETURN (SELECT jsonb_agg(CASE WHEN t.s ->> 'step' = 'tax' AND t.s ? 'place'
                                  THEN jsonb_set(t.s, '{place}', coalesce(tax_place, 'null')) ELSE t.s END ORDER BY t.n)
            FROM jsonb_array_elements(steps) WITH ORDINALITY AS t(s, n));
END
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

-- What one unit of a line takes from stock: its SKU (one), or a bundle's components (from its
-- stored pricing, each with its qty); nothing for a line that is neither (a service, a custom
-- product: made to order). The one place the stock needs (R__115), the pick list (R__195),
-- shipping (R__190) and cancelling (R__198) read it from. No SET search_path (every name is
-- qualified), so that it is inlined into the caller's query.
CREATE OR REPLACE FUNCTION orderly.line_units(l orderly.order_lines)
RETURNS TABLE (sku_id bigint, per integer)
LANGUAGE sql STABLE
AS $$
    SELECT ($1).sku_id, 1 WHERE ($1).sku_id IS NOT NULL
    UNION ALL
    SELECT (c ->> 'sku_id')::bigint, (c ->> 'qty')::integer
    FROM orderly.line_pricings p,
         jsonb_array_elements(CASE WHEN jsonb_typeof(p.body -> 'components') = 'array' THEN p.body -> 'components' END) c
    WHERE ($1).sku_id IS NULL AND p.digest = ($1).pricing
$$;
