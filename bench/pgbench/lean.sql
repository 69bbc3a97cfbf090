-- The lean reference write (bench/lean-write.sql) of the five lines create5.sql orders.
-- -D actor=… -D minc=… -D maxc=… -D skus='{…}' (five SKU ids).
\set customer random(:minc, :maxc)
SELECT bench.lean_order(:actor::bigint, :customer::bigint, :skus::bigint[], '{1,2,1,3,1}'::integer[]);
