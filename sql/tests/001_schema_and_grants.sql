-- Schemas, ownership, privileges of the group roles, seeds, append-only audit log.
BEGIN;
SELECT plan(73);

-- Structure ------------------------------------------------------------------------------------

SELECT has_schema(s) FROM unnest(ARRAY['orderly', 'api', 'analytics', 'admin']) AS s;
SELECT has_extension('pgcrypto');

SELECT tables_are('orderly',
    ARRAY['users', 'roles', 'permissions', 'role_permissions', 'user_roles', 'auth_failures', 'audit_log',
          'notifications', 'notification_reads',
          -- V004/V005 (customers): countries, customers, addresses
          'countries', 'customers', 'addresses',
          -- V006 (catalog) and V007 (pricing)
          'categories', 'products', 'option_groups', 'option_values', 'skus', 'bundle_items',
          'segment_prices', 'price_tiers', 'pricing_rules', 'coupons', 'coupon_rules', 'coupon_redemptions', 'tax_rates',
          -- V008 (orders)
          'order_statuses', 'order_status_transitions', 'orders', 'order_lines', 'order_notes',
          'order_status_history', 'stock_reservations', 'idempotency_keys',
          -- V009 (approvals)
          'approval_rules', 'approval_rule_steps', 'approval_limits', 'approval_settings', 'approval_delegations',
          'order_approvals',
          -- V012 (command registry)
          'commands', 'command_arguments',
          -- V017 (fulfilment)
          'payments', 'production_lines', 'production_issues', 'carriers', 'shipments', 'shipment_lines',
          -- V018 (tracking, risk, customer e-mail)
          'secret_key', 'shipping_settings', 'transit_defaults', 'tracking_events', 'risk_reasons', 'risk_reason_texts', 'customer_wording', 'stage_slas',
          'delay_warnings', 'message_templates', 'outbox',
          -- V019 (cancellation)
          'cancellation_policies', 'order_cancellations', 'order_charges', 'currencies', 'exchange_rates',
          -- V020 (amendments)
          'amendment_constraints', 'order_changes', 'order_versions',
          -- V021 (analytics)
          'analytics_settings', 'analytics_state', 'sales_day_lines', 'sales_day_orders', 'customer_stats',
          'stage_month_stats', 'rfm_segments', 'delivery_month_stats', 'reports', 'rfm_thresholds', 'rfm_cells',
          -- V025 (line pricings)
          'line_pricings']);

SELECT is((SELECT count(*)::int FROM pg_roles
           WHERE rolname IN ('orderly_owner', 'orderly_app', 'orderly_bi', 'orderly_admin') AND NOT rolcanlogin),
          4, 'the four group roles exist and cannot log in');

SELECT is_empty($$
    SELECT nspname FROM pg_namespace
    WHERE nspname IN ('orderly', 'api', 'analytics', 'admin') AND nspowner <> 'orderly_owner'::regrole
$$, 'orderly_owner owns the schemas');

SELECT is_empty($$
    SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname IN ('orderly', 'api', 'analytics', 'admin') AND c.relowner <> 'orderly_owner'::regrole
$$, 'orderly_owner owns every table, view, index and sequence');

SELECT is_empty($$
    SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname IN ('orderly', 'api', 'analytics', 'admin') AND p.proowner <> 'orderly_owner'::regrole
      AND p.oid NOT IN ('admin.create_bi_login(text, text, interval)'::regprocedure,
                        'admin.set_bi_login_password(text, text)'::regprocedure, 'admin.drop_bi_login(text)'::regprocedure)
$$, 'orderly_owner owns every function (but the BI login functions: orderly_login_maker)');
SELECT is_empty($$
    SELECT p.oid::regprocedure FROM pg_proc p WHERE p.proowner = 'orderly_login_maker'::regrole
      AND p.oid NOT IN ('admin.create_bi_login(text, text, interval)'::regprocedure,
                        'admin.set_bi_login_password(text, text)'::regprocedure, 'admin.drop_bi_login(text)'::regprocedure)
$$, 'orderly_login_maker (CREATEROLE) owns the three BI login functions and no other function');
SELECT is_empty($$
    SELECT c.oid::regclass FROM pg_class c WHERE c.relowner = 'orderly_login_maker'::regrole
$$, 'and no relation');
SELECT is((SELECT array_agg(b.rolname ORDER BY b.rolname) FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid
           WHERE m.member = 'orderly_login_maker'::regrole), ARRAY['orderly_bi']::name[],
          'it may grant only orderly_bi');

SELECT has_index('orderly', 'users', 'users_username_lower_key', 'lower(username)'::name,
                 'usernames are unique case-insensitively');
SELECT index_is_unique('orderly', 'users', 'users_username_lower_key');
SELECT has_index('orderly', 'auth_failures', 'auth_failures_username_at_idx', ARRAY['lower(username)', 'at']);
SELECT has_index('orderly', 'auth_failures', 'auth_failures_client_addr_at_idx', ARRAY['client_addr', 'at']);

-- Functions: SECURITY DEFINER, fixed search_path, no PUBLIC execute --------------------------------

SELECT is_empty($$
    SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname IN ('api', 'admin')
      AND NOT (p.prosecdef AND 'search_path=pg_catalog, orderly, pg_temp' = ANY (p.proconfig))
      -- Owned by orderly_login_maker, which may not use schema orderly's names unqualified.
      AND NOT (p.oid IN ('admin.create_bi_login(text, text, interval)'::regprocedure,
                         'admin.set_bi_login_password(text, text)'::regprocedure, 'admin.drop_bi_login(text)'::regprocedure)
               AND p.prosecdef AND 'search_path=pg_catalog, pg_temp' = ANY (p.proconfig))
$$, 'every api and admin function is SECURITY DEFINER with the fixed search_path');

SELECT is_empty($$
    SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname IN ('orderly', 'api', 'analytics', 'admin')
      AND (p.proacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee = 0))
$$, 'PUBLIC cannot execute any Orderly function');

SELECT is_empty($$
    SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname IN ('orderly', 'api', 'analytics', 'admin')
      AND EXISTS (SELECT 1 FROM aclexplode(c.relacl) a WHERE a.grantee = 0)
$$, 'PUBLIC has no privilege on any Orderly relation');

-- orderly_app: api only ------------------------------------------------------------------------

SELECT ok(has_schema_privilege('orderly_app', 'api', 'USAGE'), 'orderly_app may use schema api');
SELECT ok(NOT has_schema_privilege('orderly_app', 'orderly', 'USAGE'), 'orderly_app may not use schema orderly');
SELECT ok(NOT has_schema_privilege('orderly_app', 'admin', 'USAGE'), 'orderly_app may not use schema admin');

SELECT is_empty($$
    SELECT c.oid::regclass, priv
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
         unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) AS priv
    WHERE n.nspname = 'orderly' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
      AND has_table_privilege('orderly_app', c.oid, priv)
$$, 'orderly_app has no privilege on any orderly table');

SELECT is_empty($$
    SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'orderly' AND c.relkind = 'S'
      AND (has_sequence_privilege('orderly_app', c.oid, 'USAGE') OR has_sequence_privilege('orderly_app', c.oid, 'SELECT'))
$$, 'orderly_app has no privilege on any orderly sequence');

SELECT is_empty($$
    SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = 'api' AND NOT has_function_privilege('orderly_app', p.oid, 'EXECUTE')
      AND p.oid <> 'api.notify(bigint, text, text, jsonb, bigint, text)'::regprocedure  -- for other functions only
$$, 'orderly_app may execute every api function but api.notify');
-- The R files grant nothing: V001's default privileges give every api function to orderly_app,
-- and api.notify's own REVOKE is the one exception.
SELECT is(ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname = 'api' AND NOT has_function_privilege('orderly_app', p.oid, 'EXECUTE')
                ORDER BY 1),
          ARRAY['api.notify(bigint,text,text,jsonb,bigint,text)'],
          'api.notify is the one api function orderly_app may not execute');

SELECT is_empty($$
    SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname IN ('orderly', 'admin') AND has_function_privilege('orderly_app', p.oid, 'EXECUTE')
$$, 'orderly_app may not execute orderly or admin functions');

SELECT ok(has_function_privilege('orderly_app', 'api.authenticate(text, text, text, jsonb)', 'EXECUTE'),
          'orderly_app may execute api.authenticate');

-- The same, for real.
SET LOCAL ROLE orderly_app;
SELECT throws_ok(format('SELECT * FROM orderly.%I', t), '42501', NULL, format('orderly_app cannot SELECT orderly.%s', t))
FROM unnest(ARRAY['users', 'roles', 'permissions', 'role_permissions', 'user_roles', 'auth_failures', 'audit_log']) AS t;
SELECT throws_ok($$INSERT INTO orderly.audit_log (action, entity) VALUES ('x', 'y')$$, '42501', NULL,
                 'orderly_app cannot write the audit log');
SELECT throws_ok($$SELECT * FROM admin.users$$, '42501', NULL, 'orderly_app cannot read admin views');
SELECT throws_ok($$SELECT api.authenticate('nobody-here', 'whatever1', '127.0.0.1')$$, 'OL401', NULL,
                 'orderly_app reaches api.authenticate (and gets its OL401, not 42501)');
RESET ROLE;

-- orderly_bi: analytics only --------------------------------------------------------------------

SELECT ok(has_schema_privilege('orderly_bi', 'analytics', 'USAGE'), 'orderly_bi may use schema analytics');
SELECT ok(NOT has_schema_privilege('orderly_bi', 'orderly', 'USAGE'), 'orderly_bi may not use schema orderly');
SELECT is_empty($$
    SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname IN ('api', 'admin', 'orderly') AND has_function_privilege('orderly_bi', p.oid, 'EXECUTE')
$$, 'orderly_bi may not execute any api, admin or orderly function');
SELECT is_empty($$
    SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname IN ('orderly', 'admin') AND has_table_privilege('orderly_bi', c.oid, 'SELECT')
$$, 'orderly_bi may not read orderly tables or admin views');
SELECT is_empty($$
    SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'analytics' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
      AND NOT has_table_privilege('orderly_bi', c.oid, 'SELECT')
$$, 'orderly_bi may read every analytics view');

SET LOCAL ROLE orderly_bi;
SELECT throws_ok($$SELECT * FROM api.whoami(1, '{}')$$, '42501', NULL, 'orderly_bi cannot execute api.whoami');
SELECT throws_ok($$SELECT api.authenticate('a', 'b', 'c')$$, '42501', NULL, 'orderly_bi cannot execute api.authenticate');
RESET ROLE;

-- orderly_admin: admin only ---------------------------------------------------------------------

SELECT ok(has_schema_privilege('orderly_admin', 'admin', 'USAGE'), 'orderly_admin may use schema admin');
SELECT is_empty($$
    SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = 'admin' AND NOT has_function_privilege('orderly_admin', p.oid, 'EXECUTE')
$$, 'orderly_admin may execute every admin function');
SELECT is_empty($$
    SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'admin' AND c.relkind = 'v' AND NOT has_table_privilege('orderly_admin', c.oid, 'SELECT')
$$, 'orderly_admin may read every admin view');
SELECT is_empty($$
    SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname IN ('api', 'orderly') AND has_function_privilege('orderly_admin', p.oid, 'EXECUTE')
$$, 'orderly_admin may not execute api or orderly functions');

-- Default privileges protect functions added by later migrations.
SET LOCAL ROLE orderly_owner;
CREATE FUNCTION api.zz_default_privs_probe() RETURNS int LANGUAGE sql AS 'SELECT 1';
CREATE FUNCTION orderly.zz_default_privs_probe() RETURNS int LANGUAGE sql AS 'SELECT 1';
RESET ROLE;
SELECT ok(has_function_privilege('orderly_app', 'api.zz_default_privs_probe()', 'EXECUTE')
          AND NOT has_function_privilege('orderly_bi', 'api.zz_default_privs_probe()', 'EXECUTE'),
          'a new api function is executable by orderly_app only');
SELECT ok(NOT has_function_privilege('orderly_app', 'orderly.zz_default_privs_probe()', 'EXECUTE')
          AND NOT has_function_privilege('orderly_bi', 'orderly.zz_default_privs_probe()', 'EXECUTE'),
          'a new orderly function is executable by nobody');

-- Password hashes never leave the orderly schema ------------------------------------------------

SELECT is_empty($$
    SELECT c.oid::regclass, a.attname FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname IN ('api', 'admin', 'analytics') AND a.attnum > 0 AND a.attname ~* 'password|hash'
$$, 'no admin or analytics view has a password or hash column');

-- Seeds ----------------------------------------------------------------------------------------

SELECT set_eq($$SELECT name FROM orderly.roles$$,
    ARRAY['admin', 'sales_rep', 'sales_supervisor', 'sales_manager', 'finance_manager', 'production_manager',
          'general_manager', 'warehouse', 'logistics', 'customer_service', 'auditor', 'customer', 'carrier'],
    'the twelve business roles and the carriers'' integration role are seeded');
SELECT is_empty($$SELECT name FROM orderly.roles WHERE btrim(description) = ''$$, 'every seeded role has a description');

SELECT set_eq($$SELECT code FROM orderly.permissions$$,
    ARRAY['order.create', 'order.read', 'order.read_all', 'order.submit', 'order.approve', 'order.cancel',
          'customer.read', 'customer.manage', 'catalog.manage', 'pricing.manage', 'price.override',
          'report.read', 'notify.send', 'inbox.read', 'stats.read', 'audit.read', 'user.manage', 'catalog.read',
          'payment.record', 'production.manage', 'shipment.manage', 'order.hold', 'tracking.post', 'risk.read',
          'cancel.decide', 'order.amend'],
    'the permission catalog is seeded');

SELECT set_eq($$SELECT permission FROM admin.role_permissions WHERE role = 'admin'$$,
    ARRAY['stats.read', 'notify.send', 'audit.read', 'user.manage', 'inbox.read',
          'catalog.read', 'catalog.manage', 'pricing.manage'], 'admin permissions');
SELECT set_eq($$SELECT permission FROM admin.role_permissions WHERE role = 'auditor'$$,
    ARRAY['audit.read', 'inbox.read', 'report.read', 'customer.read', 'catalog.read', 'order.read', 'order.read_all', 'risk.read'],
    'auditor permissions');
SELECT is_empty($$
    SELECT r.name FROM orderly.roles r
    WHERE r.name <> 'carrier'
      AND NOT EXISTS (SELECT 1 FROM orderly.role_permissions rp WHERE rp.role_id = r.id AND rp.permission = 'inbox.read')
$$, 'every role but a carrier''s system may read its inbox');

-- The audit log is append-only, even for its owner -----------------------------------------------

SELECT is_empty($$
    SELECT a.grantee::regrole, a.privilege_type
    FROM pg_class c, aclexplode(c.relacl) a
    WHERE c.oid = 'orderly.audit_log'::regclass AND a.grantee <> c.relowner
$$, 'nobody but the owner holds any privilege on the audit log');

SELECT ok(orderly.audit(NULL, 'test.probe', 'test', '1', NULL, '{"x": 1}', actor_kind => 'system') > 0, 'audit() appends a row');

-- Every row names its actor (V016): a user, or explicitly the system or an admin in SQL.
DO $$ BEGIN PERFORM orderly.audit(42, 'test.probe', 'test', '2', NULL, NULL); END $$;
SELECT is((SELECT row(a.actor_kind, a.actor_user_id, a.actor_db_role)::text FROM test.last_audit() a),
          row('user', 42, session_user)::text, 'a user''s row: actor_kind user, and the database login');
SELECT throws_ok($$SELECT orderly.audit(NULL, 'test.probe', 'test', '3', NULL, NULL)$$, '23514', NULL,
                 'a row with no actor is refused (a user command that lost its user fails)');
SELECT throws_ok($$SELECT orderly.audit(42, 'test.probe', 'test', '4', NULL, NULL, actor_kind => 'system')$$, '23514', NULL,
                 'the system is no user');
SELECT throws_ok($$SELECT orderly.audit(NULL, 'test.probe', 'test', '5', NULL, NULL, actor_kind => 'somebody')$$, '23514', NULL,
                 'and there are three kinds of actor only');

SET LOCAL ROLE orderly_owner;
SELECT throws_ok($$UPDATE orderly.audit_log SET action = 'tampered'$$, '42501', 'the audit log is append-only',
                 'the owner cannot UPDATE the audit log');
SELECT throws_ok($$DELETE FROM orderly.audit_log$$, '42501', 'the audit log is append-only',
                 'the owner cannot DELETE from the audit log');
SELECT throws_ok($$TRUNCATE orderly.audit_log$$, '42501', 'the audit log is append-only',
                 'the owner cannot TRUNCATE the audit log');
SELECT throws_ok($$INSERT INTO orderly.audit_log (action, entity) VALUES ('test.probe', 'test')$$, '23514', NULL,
                 'nor write a row without an actor');
RESET ROLE;

-- Schema public is nobody's workshop (V013__extensions_out_of_public.sql) -----------------------

SELECT ok(NOT has_schema_privilege('orderly_app', 'public', 'CREATE'), 'nobody may create objects in schema public');
SELECT is_empty($$
    SELECT p.oid::regprocedure::text
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace,
         unnest(p.proconfig) AS c
    WHERE n.nspname IN ('orderly', 'api', 'admin', 'analytics')
      AND c LIKE 'search_path=%' AND c ~ '(^|[=, ])"?public"?($|,)'
$$, 'no Orderly function has public on its search_path');
SELECT is_empty($$
    SELECT p.oid::regprocedure::text
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname IN ('orderly', 'api', 'admin') AND p.prosecdef
      AND NOT EXISTS (SELECT FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%')
$$, 'every SECURITY DEFINER function fixes its search_path');
SELECT is((SELECT n.nspname::text FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
           WHERE e.extname = 'pgcrypto'), 'orderly_ext', 'pgcrypto lives in orderly_ext');

SELECT * FROM finish();
ROLLBACK;
