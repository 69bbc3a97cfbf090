-- The write floor (bench/floor-write.sql) of the five lines create5.sql orders.
-- -D actor=… -D minc=… -D maxc=… -D skus='{…}' (five SKU ids).
\set customer random(:minc, :maxc)
\set key random(1, 1000000000000)
SELECT bench.floor_order(:actor::bigint, :customer::bigint, :skus::bigint[], '{1,2,1,3,1}'::integer[],
                         'floor-' || :client_id::text || '-' || :key::text);
