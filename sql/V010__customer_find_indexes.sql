-- Orderly: indexes for CUSTOMER FIND that return matches in result order (see api.customer_find).
-- Names in bytewise order (COLLATE "C", so LIKE 'q%' is a range scan): tiers "name starts with q"
-- and the walk over frequent terms. Phones bytewise: exact number, and a fragment typed with its
-- "+" (a prefix), which the trigram index answers slowly because every number shares "+49".
CREATE INDEX customers_name_c_idx  ON orderly.customers ((lower(name) COLLATE "C"), id);
CREATE INDEX customers_phone_c_idx ON orderly.customers ((phone COLLATE "C"));
