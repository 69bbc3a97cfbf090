-- Baseline of the mix's ORDER QUOTE: 3-10 lines priced for a random customer, nothing saved.
\set customer random(:minc, :maxc)
\set nlines random(3, 10)
SELECT * FROM api.order_quote(:actor::bigint, jsonb_build_object(
    'customer', :customer::bigint,
    'lines', (SELECT jsonb_agg(i.item || jsonb_build_object('qty', 1 + floor(random() * 5)::integer))
              FROM (SELECT item FROM jsonb_array_elements(:items::jsonb) item ORDER BY random() LIMIT :nlines::integer) i)));
