-- AUDIT LIST (R__042_audit_list.sql): the audit log for audit.read over the protocol, newest
-- first, with its filters and paging; refused without the permission.
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT plan(17);

DO $$
BEGIN
    PERFORM admin.create_user('audrey', 'audrey-secret-1', ARRAY['auditor']);
    PERFORM admin.create_user('rita', 'rita-secret-1', ARRAY['sales_rep']);
    PERFORM admin.create_user('buyer', 'buyer-secret-1', ARRAY['customer']);
END
$$;
CREATE TEMP TABLE ids (name text PRIMARY KEY, id bigint);
INSERT INTO ids VALUES ('acme', test.customer('rita', 'Acme', '+4930100100'));
SELECT test.call('customer_update', 'rita', jsonb_build_object('id', test.id('acme'), 'company', 'Acme GmbH')) IS NOT NULL;
CREATE FUNCTION pg_temp.audit(args jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT test.rows('audit_list', 'audrey', args) $$;

SELECT is((SELECT array_agg(r ->> 'action') FROM jsonb_array_elements(pg_temp.audit(jsonb_build_object('entity', 'customer', 'id', test.id('acme')::text))) r),
          ARRAY['customer.update', 'address.default', 'customer.create'], 'one customer''s changes, newest first');
SELECT is((SELECT r - 'id' - 'at' - 'before' - 'after' FROM jsonb_array_elements(pg_temp.audit(jsonb_build_object('entity', 'customer', 'id', test.id('acme')::text, 'limit', 1))) r),
          jsonb_build_object('actor', 'rita', 'actor_kind', 'user', 'action', 'customer.update', 'entity', 'customer', 'entity_id', test.id('acme')::text),
          'each row says who, what and on which entity');
SELECT is((SELECT r -> 'after' ->> 'company' FROM jsonb_array_elements(pg_temp.audit(jsonb_build_object('entity', 'customer', 'limit', 1))) r),
          'Acme GmbH', 'with the before and after documents');
SELECT is((SELECT array_agg(DISTINCT r ->> 'actor') FROM jsonb_array_elements(pg_temp.audit('{"actor":"RITA"}')) r), ARRAY['rita'],
          'actor=: a user by name, as AUTH takes it');
SELECT is((SELECT count(*)::integer FROM jsonb_array_elements(pg_temp.audit(jsonb_build_object('actor', 'db:' || current_user))) r
           WHERE r ->> 'actor_kind' <> 'admin_sql' OR r ->> 'actor' <> 'db:' || current_user), 0,
          'or db: and an admin''s database login: only its admin_sql rows, shown so');
SELECT ok((SELECT count(*) FROM jsonb_array_elements(pg_temp.audit(jsonb_build_object('actor', 'db:' || current_user))) r) >= 3,
          'the users the admin created are there');
-- A user named system, from before the name was reserved (admin.create_user refuses it now).
INSERT INTO orderly.users (username, display_name, password_hash) VALUES ('system', 'system', orderly.hash_password('system-secret-1'));
SELECT orderly.audit(NULL, 'approval.remind', 'order', '1', NULL, '{}', actor_kind => 'system');
SELECT is((SELECT string_agg(DISTINCT r ->> 'actor_kind', ',') FROM jsonb_array_elements(pg_temp.audit('{"actor":"system"}')) r), 'system',
          'actor=system is Orderly itself, even with a user named system');
SELECT throws_ok($$ SELECT pg_temp.audit('{"actor":"nobody"}') $$, 'OL404', NULL, 'an unknown user is said to be unknown, with the other forms');
SELECT is((SELECT array_agg(DISTINCT r ->> 'action') FROM jsonb_array_elements(pg_temp.audit('{"action":"customer."}')) r),
          ARRAY['customer.create', 'customer.update'], 'action= ending in "." takes every action it begins');
SELECT is((SELECT array_agg(r ->> 'action') FROM jsonb_array_elements(pg_temp.audit('{"action":"customer.update"}')) r),
          ARRAY['customer.update'], 'or one action');
SELECT is((SELECT (pg_temp.audit(jsonb_build_object('before', (SELECT max(id) FROM orderly.audit_log))) -> 0 ->> 'id')::bigint),
          (SELECT max(id) FROM orderly.audit_log WHERE id < (SELECT max(id) FROM orderly.audit_log)), 'before= pages back');
SELECT is(jsonb_array_length(pg_temp.audit(jsonb_build_object('from', to_char(now() AT TIME ZONE 'UTC' + interval '1 day', 'YYYY-MM-DD')))), 0,
          'from=: days (UTC)');
SELECT throws_ok($$ SELECT pg_temp.audit('{"id":"1"}') $$, 'OL400', 'id= names a row of an entity: give entity= too (entity=order id=42)',
                 'id= without entity= is refused, not taken for any entity''s row');
SELECT throws_like($$ SELECT pg_temp.audit('{"entity":"custmer"}') $$, 'nothing of entity "custmer" is in the audit log; its entities: %customer%',
                   'a misspelt entity is refused with the entities the log has, not answered with nothing');
SELECT is(jsonb_array_length(pg_temp.audit('{"entity":"", "limit": 1}')), 1, 'an empty entity= is no filter');
SELECT throws_ok($$ SELECT test.rows('audit_list', 'rita', '{}') $$, 'OL403', NULL, 'a sales rep may not read the audit log');
SELECT throws_ok($$ SELECT test.rows('audit_list', 'buyer', '{}') $$, 'OL403', NULL, 'nor a customer''s login');

SELECT * FROM finish();
ROLLBACK;
