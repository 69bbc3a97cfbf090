-- Orderly: an order line's pricing is stored once per distinct pricing (issue 16, item 5).
--
-- Each line kept the pricing engine's whole answer as jsonb (~1 100 bytes, never compressed: a
-- row under 2 kB is not toasted, whatever toast_tuple_target says). Most of it was either a copy
-- of the line's own columns (qty, prices, tax) or the same for every line of the same SKU, price
-- list and tax: at 300 000 bench orders, 94 000 lines held 206 different pricings once the
-- ship-to place was taken out. Now:
--   - orderly.line_pricings holds each distinct pricing once, keyed by the SHA-256 of its body
--     (content-addressed: writing one is an INSERT … ON CONFLICT DO NOTHING, and the key is
--     known before the insert, so a line never has to read an id back);
--   - a line keeps that key (pricing) and the place its tax was taken for (tax_place: the
--     address it shipped to then; addresses can be edited later);
--   - orderly.line_priced (R__112_line_pricings.sql) puts the engine's answer back together.
-- (The functions of this file have no SET search_path: every name in them is pg_catalog's.)
-- Rows of line_pricings are never updated or deleted (a pricing that no line uses any more
-- costs one row), so lines need no foreign key to them: a foreign key would take a share lock
-- on the popular rows with every line written, and those locks would make every order of the
-- same pricing wait on each other (MultiXacts, see issue 16 item 3).

CREATE TABLE orderly.line_pricings (
    digest bytea PRIMARY KEY,
    -- The pricing engine's line without the line's own figures and without the tax step's place;
    -- see orderly.pricing_body.
    body   jsonb NOT NULL
);

COMMENT ON TABLE orderly.line_pricings IS
    'Distinct pricings of order lines (product, SKU, options, the explanation), keyed by SHA-256 of the body; written once, never changed';

ALTER TABLE orderly.order_lines
    ADD COLUMN pricing bytea,
    ADD COLUMN tax_place jsonb;

COMMENT ON COLUMN orderly.order_lines.pricing IS 'The line''s pricing: orderly.line_pricings.digest';
COMMENT ON COLUMN orderly.order_lines.tax_place IS
    'Where the line''s tax was taken for when it was priced: {"country","region","address_id"}, or null (no address)';

-- What is stored, for the lines already there and every line to come (orderly.set_order_lines,
-- R__140_orders.sql): these define the stored form, so they change only with a migration.
-- The part of an engine line that lines priced the same way share: without the line's own
-- figures (its columns) and with the tax step's place left null (tax_place has it).
CREATE FUNCTION orderly.pricing_body(priced jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE
AS $$
    SELECT ($1 - ARRAY['line', 'qty', 'list_price', 'gross', 'discount', 'net', 'tax_rate', 'tax', 'override',
                       'product_id', 'sku_id'])
           || jsonb_build_object('explanation', (
                  SELECT coalesce(jsonb_agg(CASE WHEN s ->> 'step' = 'tax' AND s ? 'place'
                                                 THEN jsonb_set(s, '{place}', 'null') ELSE s END ORDER BY n), '[]')
                  FROM jsonb_array_elements(coalesce($1 -> 'explanation', '[]')) WITH ORDINALITY AS t(s, n)))
$$;

-- The place of the line's tax step (null: no address, or no tax step).
CREATE FUNCTION orderly.pricing_place(priced jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE
AS $$
    SELECT (SELECT s -> 'place' FROM jsonb_array_elements(coalesce($1 -> 'explanation', '[]')) s
            WHERE s ->> 'step' = 'tax' LIMIT 1)
$$;

-- A body's key: SHA-256 of its text (jsonb's text is canonical: keys sorted, one spelling per
-- number), so equal bodies share one row.
CREATE FUNCTION orderly.pricing_digest(body jsonb) RETURNS bytea
LANGUAGE sql IMMUTABLE
AS $$
    SELECT sha256(convert_to($1::text, 'UTF8'))
$$;

INSERT INTO orderly.line_pricings (digest, body)
SELECT DISTINCT ON (d) d, b
FROM (SELECT orderly.pricing_body(l.priced) AS b FROM orderly.order_lines l) x,
     LATERAL orderly.pricing_digest(x.b) d
ORDER BY d;

UPDATE orderly.order_lines l
SET pricing = orderly.pricing_digest(orderly.pricing_body(l.priced)),
    tax_place = orderly.pricing_place(l.priced);

-- Two work-queue views read the old column; R__195_work_queues.sql makes them again.
DROP VIEW IF EXISTS orderly.pick_list CASCADE;
DROP VIEW IF EXISTS orderly.production_queue CASCADE;

ALTER TABLE orderly.order_lines
    DROP COLUMN priced,
    ALTER COLUMN pricing SET NOT NULL;
