-- Orderly: trigram indexes for substring search (customer names, e-mails, phones). An extension
-- is created by the migrating login, not by orderly_owner; pg_trgm is a trusted extension, so a
-- login that may create objects in this database is enough.
-- orderly:run-as-login

CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;
