-- Baseline of the mix's ORDER LIST limit=20.
SELECT * FROM api.order_list(:actor::bigint, jsonb_build_object('limit', 20));
