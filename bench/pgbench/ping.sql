-- Baseline of `orderly-bench ping`: one round trip to PostgreSQL.
SELECT 1;
