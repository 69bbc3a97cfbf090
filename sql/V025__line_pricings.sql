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
-- Rows of line_pricings are never updated or deleted (a pricing that no line uses any more
-- costs one row), so lines need no foreign key to them: a foreign key would take a share lock
-- on the popular rows with every line written, and those locks would make every order of the
-- same pricing pile up into MultiXacts (see orderly.finish_submit, R__170).

-- Every running orderlyd must be stopped for this upgrade; should one still write lines, it waits
-- here instead of leaving a line without its pricing.
LOCK TABLE orderly.order_lines IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE orderly.line_pricings (
    digest bytea PRIMARY KEY,
    -- The pricing engine's line without the line's own figures and without the tax step's place;
    -- see orderly.pricing_parts.
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
-- R__140_orders.sql): this defines the stored form, so it changes only with a migration.
-- An engine line split for storage:
--   body:   what lines priced the same way share: the line without its own figures (they are
--           its columns) and with the tax step's place left null;
--   digest: the body's key, SHA-256 of its text (jsonb's text is canonical: keys sorted, one
--           spelling per number), so equal bodies share one row;
--   place:  the tax step's place (null: no address).
-- plpgsql: its plan is kept for the session; called once per line written.
CREATE FUNCTION orderly.pricing_parts(priced jsonb, OUT body jsonb, OUT digest bytea, OUT place jsonb)
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    steps jsonb;
BEGIN
    SELECT coalesce(jsonb_agg(CASE WHEN t.s ->> 'step' = 'tax' AND t.s ? 'place'
                                   THEN jsonb_set(t.s, '{place}', 'null') ELSE t.s END ORDER BY t.n), '[]'),
           (array_agg(t.s -> 'place' ORDER BY t.n) FILTER (WHERE t.s ->> 'step' = 'tax'))[1]
    INTO steps, place
    FROM jsonb_array_elements(coalesce(priced -> 'explanation', '[]')) WITH ORDINALITY AS t(s, n);
    body := (priced - ARRAY['line', 'qty', 'list_price', 'gross', 'discount', 'net', 'tax_rate', 'tax', 'override',
                            'product_id', 'sku_id'])
            || jsonb_build_object('explanation', steps);
    digest := sha256(convert_to(body::text, 'UTF8'));
END
$$;

INSERT INTO orderly.line_pricings (digest, body)
SELECT DISTINCT ON (p.digest) p.digest, p.body
FROM orderly.order_lines l, LATERAL orderly.pricing_parts(l.priced) p
ORDER BY p.digest;

UPDATE orderly.order_lines l
SET (pricing, tax_place) = (SELECT p.digest, p.place FROM orderly.pricing_parts(l.priced) p);

-- Two work-queue views read the old column; R__195_work_queues.sql makes them again.
DROP VIEW IF EXISTS orderly.pick_list CASCADE;
DROP VIEW IF EXISTS orderly.production_queue CASCADE;

-- A dropped column's values stay in every row until the row is written again, and the lines of
-- finished orders never are: the same statement rewrites the table (a change of type with an
-- expression always does), so the space the old column took is given back now.
ALTER TABLE orderly.order_lines
    DROP COLUMN priced,
    ALTER COLUMN pricing SET NOT NULL,
    ALTER COLUMN pricing TYPE bytea USING pricing || ''::bytea;
