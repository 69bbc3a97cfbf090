-- Baseline of `orderly-bench show`: api.order_show of a random order the actor created.
-- -D actor=<sales_rep id> -D mino=… -D maxo=… (the seeded orders).
\set id random(:mino, :maxo)
SELECT * FROM api.order_show(:actor::bigint, jsonb_build_object('id', :id::bigint));
