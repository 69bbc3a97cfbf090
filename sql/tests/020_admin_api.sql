-- admin.* functions and views: happy paths, audit rows, validation errors that change nothing.
-- (NOTIFY is delivered only at commit, so it is not observable inside this rolled-back test.)
BEGIN;
SET LOCAL client_min_messages = warning;  -- no-op NOTICEs are expected
SELECT plan(123);

SELECT test.snapshot(ARRAY['orderly.users', 'orderly.user_roles', 'orderly.roles', 'orderly.permissions',
                           'orderly.role_permissions', 'orderly.audit_log']);

-- create_user ----------------------------------------------------------------------------------

SELECT ok(admin.create_user('Dana.Smith', 'dana-secret-1', ARRAY['sales_rep', 'auditor'], 'Dana Smith') > 0,
          'create_user returns the new id');
SELECT is((SELECT display_name FROM orderly.users WHERE username = 'Dana.Smith'), 'Dana Smith', 'display name stored');
SELECT is((SELECT roles FROM admin.users WHERE username = 'Dana.Smith'), ARRAY['auditor', 'sales_rep'],
          'roles granted, listed sorted');
SELECT ok((SELECT password_hash LIKE '$2a$10$%' FROM orderly.users WHERE username = 'Dana.Smith'),
          'password stored as a bcrypt cost-10 hash');
SELECT ok((SELECT password_hash NOT LIKE '%dana-secret-1%' FROM orderly.users WHERE username = 'Dana.Smith'),
          'plaintext password not stored');
SELECT ok((SELECT orderly.password_matches('dana-secret-1', password_hash) FROM orderly.users WHERE username = 'Dana.Smith'),
          'the hash verifies the password');
SELECT is((test.last_audit()).action, 'user.create', 'audit: action');
SELECT is((test.last_audit()).entity_id, test.uid('Dana.Smith')::text, 'audit: entity id');
SELECT is((test.last_audit()).actor_db_role, session_user::text, 'audit: the database login');
SELECT is(row((test.last_audit()).actor_kind, (test.last_audit()).actor_user_id)::text, row('admin_sql', NULL::bigint)::text,
          'audit: an admin in SQL, not a user');
SELECT is((SELECT row(actor_kind, actor_db_role)::text FROM admin.audit_log ORDER BY id DESC LIMIT 1),
          row('admin_sql', session_user)::text, 'admin.audit_log shows who acted');
SELECT is((test.last_audit()).after ->> 'username', 'Dana.Smith', 'audit: after has the username');
SELECT ok((test.last_audit()).after::text !~ '\$2a\$', 'audit: no password hash in after');
SELECT is((SELECT granted_by FROM orderly.user_roles WHERE user_id = test.uid('Dana.Smith') LIMIT 1),
          session_user::text, 'granted_by is the database login');

SELECT lives_ok($$SELECT admin.create_user('erin', 'erin-secret', NULL)$$, 'roles may be null');
SELECT is((SELECT display_name FROM orderly.users WHERE username = 'erin'), 'erin', 'display name defaults to the username');
SELECT is((SELECT roles FROM admin.users WHERE username = 'erin'), '{}'::text[], 'no roles');
SELECT lives_ok($$SELECT admin.create_user('frank', repeat('x', 72), '{}')$$, 'a 72-byte password is accepted');

SELECT test.snapshot();
SELECT throws_ok($$SELECT admin.create_user('DANA.SMITH', 'another-pass', '{}')$$, 'OL409',
                 'username "DANA.SMITH" is already taken', 'duplicate username, case-insensitively');
SELECT throws_ok($$SELECT admin.create_user('a', 'long-enough-1', '{}')$$, 'OL400', NULL, 'username too short');
SELECT throws_ok(format('SELECT admin.create_user(%L, %L, %L)', repeat('a', 65), 'long-enough-1', '{}'), 'OL400', NULL,
                 'username too long');
SELECT throws_ok($$SELECT admin.create_user('-bad', 'long-enough-1', '{}')$$, 'OL400', NULL,
                 'username must start with a letter or digit');
SELECT throws_ok($$SELECT admin.create_user('has space', 'long-enough-1', '{}')$$, 'OL400', NULL,
                 'username with a space');
SELECT throws_ok($$SELECT admin.create_user(NULL, 'long-enough-1', '{}')$$, 'OL400', NULL, 'null username');
SELECT throws_ok($$SELECT admin.create_user('gina', 'short', '{}')$$, 'OL400',
                 'password must be at least 8 characters', 'short password');
SELECT throws_ok($$SELECT admin.create_user('gina', '', '{}')$$, 'OL400', NULL, 'empty password');
SELECT throws_ok($$SELECT admin.create_user('gina', E'        \t', '{}')$$, 'OL400', 'password must not be only spaces', 'a password of spaces');
SELECT throws_ok($$SELECT admin.create_user('gina', repeat(E'\u3000', 8), '{}')$$, 'OL400', 'password must not be only spaces', 'nor of ideographic ones');
SELECT throws_ok($$SELECT admin.create_user('gina', NULL, '{}')$$, 'OL400', NULL, 'null password');
SELECT throws_ok(format('SELECT admin.create_user(%L, %L, %L)', 'gina', repeat('é', 40), '{}'), 'OL400',
                 'password must be at most 72 bytes', 'password over 72 bytes (40 characters)');
SELECT throws_ok($$SELECT admin.create_user('gina', 'long-enough-1', ARRAY['sales_rep', 'wizard'])$$, 'OL404',
                 'unknown role "wizard"', 'unknown role');
SELECT throws_ok($$SELECT admin.create_user('gina', 'long-enough-1', '{}', E'two\nlines')$$, 'OL400', NULL,
                 'display name with a control character');
SELECT ok(test.unchanged(), 'failed create_user calls changed nothing');

-- set_password ---------------------------------------------------------------------------------

UPDATE orderly.users SET failed_attempts = 3, locked_until = now() + interval '5 minutes' WHERE username = 'erin';
SELECT lives_ok($$SELECT admin.set_password('ERIN', 'erin-new-secret')$$, 'set_password');
SELECT ok((SELECT orderly.password_matches('erin-new-secret', password_hash) FROM orderly.users WHERE username = 'erin'),
          'new password verifies');
SELECT ok((SELECT NOT orderly.password_matches('erin-secret', password_hash) FROM orderly.users WHERE username = 'erin'),
          'old password no longer verifies');
SELECT ok((SELECT failed_attempts = 0 AND locked_until IS NULL FROM orderly.users WHERE username = 'erin'),
          'set_password clears failures and a temporary lockout');
SELECT is((test.last_audit()).action, 'user.password', 'audit: user.password');
SELECT ok((test.last_audit()).after::text !~ '\$2a\$' AND (test.last_audit()).before::text !~ '\$2a\$',
          'audit: no password hash');

SELECT test.snapshot();
CREATE TEMP TABLE erin_hash AS SELECT password_hash FROM orderly.users WHERE username = 'erin';
SELECT throws_ok($$SELECT admin.set_password('nobody', 'long-enough-1')$$, 'OL404', 'unknown user "nobody"', 'unknown user');
SELECT throws_ok($$SELECT admin.set_password('erin', 'short')$$, 'OL400', NULL, 'short password');
SELECT throws_ok(format('SELECT admin.set_password(%L, %L)', 'erin', repeat('x', 73)), 'OL400', NULL, '73-byte password');
SELECT ok(test.unchanged() AND (SELECT password_hash FROM orderly.users WHERE username = 'erin') = (SELECT password_hash FROM erin_hash),
          'failed set_password calls changed nothing');

-- grant_role / revoke_role ---------------------------------------------------------------------

SELECT lives_ok($$SELECT admin.grant_role('erin', 'warehouse')$$, 'grant_role');
SELECT is((SELECT roles FROM admin.users WHERE username = 'erin'), ARRAY['warehouse'], 'role granted');
SELECT is((test.last_audit()).action, 'user.role_grant', 'audit: user.role_grant');
SELECT is((test.last_audit()).after -> 'roles', '["warehouse"]'::jsonb, 'audit: after shows the role');

SELECT test.snapshot();
SELECT lives_ok($$SELECT admin.grant_role('erin', 'warehouse')$$, 'granting a held role again');
SELECT ok(test.unchanged(), 'is a no-op: no duplicate row, no audit');
SELECT throws_ok($$SELECT admin.grant_role('nobody', 'warehouse')$$, 'OL404', 'unknown user "nobody"', 'grant_role: unknown user');
SELECT throws_ok($$SELECT admin.grant_role('erin', 'wizard')$$, 'OL404', 'unknown role "wizard"', 'grant_role: unknown role');
SELECT ok(test.unchanged(), 'failed grant_role calls changed nothing');

SELECT lives_ok($$SELECT admin.revoke_role('erin', 'warehouse')$$, 'revoke_role');
SELECT is((SELECT roles FROM admin.users WHERE username = 'erin'), '{}'::text[], 'role revoked');
SELECT is((test.last_audit()).action, 'user.role_revoke', 'audit: user.role_revoke');
SELECT test.snapshot();
SELECT lives_ok($$SELECT admin.revoke_role('erin', 'warehouse')$$, 'revoking a role not held');
SELECT ok(test.unchanged(), 'is a no-op without audit');
SELECT throws_ok($$SELECT admin.revoke_role('erin', 'wizard')$$, 'OL404', NULL, 'revoke_role: unknown role');
SELECT throws_ok($$SELECT admin.revoke_role('nobody', 'warehouse')$$, 'OL404', NULL, 'revoke_role: unknown user');

-- lock_user / unlock_user ----------------------------------------------------------------------

SELECT lives_ok($$SELECT admin.lock_user('erin')$$, 'lock_user');
SELECT ok((SELECT locked FROM admin.users WHERE username = 'erin'), 'user locked');
SELECT is((test.last_audit()).action, 'user.lock', 'audit: user.lock');
SELECT throws_ok($$SELECT admin.lock_user('nobody')$$, 'OL404', NULL, 'lock_user: unknown user');

UPDATE orderly.users SET failed_attempts = 4, locked_until = now() + interval '1 hour' WHERE username = 'erin';
SELECT lives_ok($$SELECT admin.unlock_user('erin')$$, 'unlock_user');
SELECT ok((SELECT NOT locked AND locked_until IS NULL AND failed_attempts = 0 FROM admin.users WHERE username = 'erin'),
          'unlock clears the lock, the lockout and the failure count');
SELECT is((test.last_audit()).action, 'user.unlock', 'audit: user.unlock');
SELECT throws_ok($$SELECT admin.unlock_user('nobody')$$, 'OL404', NULL, 'unlock_user: unknown user');

-- create_role ----------------------------------------------------------------------------------

SELECT lives_ok($$SELECT admin.create_role('key_account', 'Handles the largest customers')$$, 'create_role');
SELECT is((SELECT description FROM admin.roles WHERE name = 'key_account'), 'Handles the largest customers', 'role stored');
SELECT is((SELECT permissions FROM admin.roles WHERE name = 'key_account'), ARRAY['inbox.read'],
          'a new role may read its inbox, like every role');
SELECT is((test.last_audit()).action, 'role.create', 'audit: role.create');
SELECT is((test.last_audit()).entity_id, 'key_account', 'audit: entity id is the role name');

SELECT test.snapshot();
SELECT throws_ok($$SELECT admin.create_role('key_account', 'again')$$, 'OL409', 'role "key_account" already exists', 'duplicate role');
SELECT throws_ok($$SELECT admin.create_role('Key_Account', 'x')$$, 'OL400', NULL, 'uppercase role name');
SELECT throws_ok($$SELECT admin.create_role('k', 'x')$$, 'OL400', NULL, 'role name too short');
SELECT throws_ok($$SELECT admin.create_role('1st', 'x')$$, 'OL400', NULL, 'role name starting with a digit');
SELECT throws_ok($$SELECT admin.create_role('key-account', 'x')$$, 'OL400', NULL, 'role name with a dash');
SELECT ok(test.unchanged(), 'failed create_role calls changed nothing');

-- create_permission / grant_permission / revoke_permission ---------------------------------------

SELECT lives_ok($$SELECT admin.create_permission('contract.sign', 'Sign customer contracts')$$, 'create_permission');
SELECT is((SELECT description FROM admin.permissions WHERE code = 'contract.sign'), 'Sign customer contracts', 'permission stored');
SELECT is((test.last_audit()).action, 'permission.create', 'audit: permission.create');
SELECT test.snapshot();
SELECT throws_ok($$SELECT admin.create_permission('contract.sign', 'again')$$, 'OL409', NULL, 'duplicate permission');
SELECT throws_ok($$SELECT admin.create_permission('contract', 'x')$$, 'OL400', NULL, 'permission code without a dot');
SELECT throws_ok($$SELECT admin.create_permission('Contract.Sign', 'x')$$, 'OL400', NULL, 'uppercase permission code');
SELECT ok(test.unchanged(), 'failed create_permission calls changed nothing');

SELECT lives_ok($$SELECT admin.grant_permission('key_account', 'contract.sign')$$, 'grant_permission');
SELECT is((SELECT description FROM admin.role_permissions WHERE role = 'key_account' AND permission = 'contract.sign'),
          'Sign customer contracts', 'admin.role_permissions lists it with its description');
SELECT is((test.last_audit()).action, 'role.permission_grant', 'audit: role.permission_grant');
SELECT is((test.last_audit()).after -> 'permissions', '["contract.sign", "inbox.read"]'::jsonb, 'audit: after');

SELECT test.snapshot();
SELECT lives_ok($$SELECT admin.grant_permission('key_account', 'contract.sign')$$, 'granting a held permission again');
SELECT ok(test.unchanged(), 'is a no-op without audit');
SELECT throws_ok($$SELECT admin.grant_permission('key_account', 'moon.land')$$, 'OL404', 'unknown permission "moon.land"',
                 'grant_permission: unknown permission');
SELECT throws_ok($$SELECT admin.grant_permission('wizard', 'contract.sign')$$, 'OL404', 'unknown role "wizard"',
                 'grant_permission: unknown role');
SELECT ok(test.unchanged(), 'failed grant_permission calls changed nothing');

SELECT lives_ok($$SELECT admin.revoke_permission('key_account', 'contract.sign')$$, 'revoke_permission');
SELECT is((SELECT permissions FROM admin.roles WHERE name = 'key_account'), ARRAY['inbox.read'], 'permission revoked');
SELECT is((test.last_audit()).action, 'role.permission_revoke', 'audit: role.permission_revoke');
SELECT throws_ok($$SELECT admin.revoke_permission('key_account', 'moon.land')$$, 'OL404', NULL,
                 'revoke_permission: unknown permission');

-- Views ----------------------------------------------------------------------------------------

SELECT columns_are('admin', 'users',
    ARRAY['id', 'username', 'display_name', 'roles', 'locked', 'locked_until', 'failed_attempts', 'last_login_at', 'created_at',
          'customer_id', 'carrier'],
    'admin.users has exactly the documented columns (no password hash)');
SELECT is((SELECT user_count FROM admin.roles WHERE name = 'auditor'),
          (SELECT count(*) FROM orderly.user_roles ur JOIN orderly.roles r ON r.id = ur.role_id WHERE r.name = 'auditor'),
          'admin.roles counts users');

-- create_demo_users ----------------------------------------------------------------------------

SELECT test.snapshot();
SELECT set_eq($$SELECT username, password, role FROM admin.create_demo_users()$$,
    $$SELECT r AS username, r || '-demo' AS password, r AS role FROM unnest(ARRAY['admin', 'sales_rep', 'sales_supervisor', 'sales_manager',
        'finance_manager', 'production_manager', 'general_manager', 'warehouse', 'logistics', 'customer_service',
        'auditor', 'customer', 'carrier']) AS r$$,
    'create_demo_users lists one user per seeded role');
SELECT is_empty($$
    SELECT u.username FROM admin.users u
    WHERE u.username IN (SELECT name FROM orderly.roles WHERE name <> 'key_account') AND NOT (u.username = ANY (u.roles))
$$, 'each demo user holds its role');
SELECT is((SELECT display_name FROM orderly.users WHERE username = 'sales_rep'), 'Demo Sales Rep', 'demo display name');
SELECT ok((SELECT orderly.password_matches('sales_rep-demo', password_hash) FROM orderly.users WHERE username = 'sales_rep'),
          'demo password works');
SELECT ok((SELECT count(*) FROM orderly.audit_log WHERE action = 'user.create') >= 12, 'demo users are audited');
SELECT test.snapshot();
SELECT is((SELECT count(*)::int FROM admin.create_demo_users()), 13, 'a second call still lists all thirteen');
SELECT ok(test.unchanged(), 'and creates nobody');

-- As a real orderly_admin --------------------------------------------------------------------------

SET LOCAL ROLE orderly_admin;
SELECT lives_ok($$SELECT admin.create_user('hank', 'hank-secret', ARRAY['logistics'])$$, 'orderly_admin can create users');
SELECT is((SELECT roles FROM admin.users WHERE username = 'hank'), ARRAY['logistics'], 'orderly_admin can read admin.users');
SELECT throws_ok($$SELECT * FROM orderly.users$$, '42501', NULL, 'orderly_admin cannot read orderly tables');
RESET ROLE;

-- Permissions for customers: marked and unmarked by a function (V030), never left held by a customer login.
SELECT admin.create_permission('catalog.export', 'Export the catalog');
SELECT admin.set_permission_for_customers('catalog.export', true);
SELECT lives_ok($$ SELECT admin.grant_permission('customer', 'catalog.export') $$, 'marked for customers, the role customer may hold it');
SELECT is((SELECT for_customers FROM admin.permissions WHERE code = 'catalog.export'), true, 'admin.permissions shows the mark');
SELECT throws_ok($$ SELECT admin.set_permission_for_customers('catalog.export', false) $$, 'OL409',
                 'the role customer holds "catalog.export": revoke it from the role first', 'unmarked only once the role customer lets go');
SELECT admin.revoke_permission('customer', 'catalog.export');
SELECT admin.create_role('export_buyers');
SELECT admin.grant_permission('export_buyers', 'catalog.export');
SELECT admin.create_user('cust1', 'cust1-secret-1', ARRAY['customer', 'export_buyers']);
SELECT throws_ok($$ SELECT admin.set_permission_for_customers('catalog.export', false) $$, 'OL409',
                 'user "cust1" would be a customer''s login holding catalog.export, which are not for customers',
                 'nor while a customer''s login holds it through another role');
SELECT is((SELECT count(*)::integer FROM orderly.audit_log WHERE action = 'permission.for_customers' AND actor_kind = 'admin_sql'), 1,
          'the mark is audited as the admin''s');
-- Marked for customers, report.read and audit.read still open no report or audit log to one:
-- those read across every customer (staff_only in the registry).
SELECT admin.set_permission_for_customers(p, true) FROM unnest(ARRAY['report.read', 'audit.read', 'order.read_all']) p;
SELECT admin.grant_permission('export_buyers', p) FROM unnest(ARRAY['report.read', 'audit.read', 'order.read_all']) p;
SELECT throws_ok($$ SELECT test.rows('pick_list', 'cust1', '{}') $$, 'OL403', 'the pick list is the warehouse''s',
                 'nor PICK LIST with order.read_all (every customer''s open orders and addresses)');
SELECT throws_ok($$ SELECT test.rows('report', 'cust1', '{"name":"customers"}') $$, 'OL403', 'reports cover every customer: they are for staff',
                 'a customer''s login holding report.read gets no REPORT');
SELECT throws_ok($$ SELECT test.rows('audit_list', 'cust1', '{}') $$, 'OL403', 'the audit log is internal',
                 'nor AUDIT LIST with audit.read');
SELECT throws_ok($$ SELECT admin.create_user('System', 'system-secret-1', ARRAY['sales_rep']) $$, 'OL400',
                 'username "System" is reserved: the audit log names Orderly itself so', 'a user named system is refused (AUDIT LIST actor=system)');
SELECT throws_ok($$ SELECT admin.create_user('bidi', 'bidi-secret-1', ARRAY[]::text[], display_name => E'Bob \u202Eylimaf') $$, 'OL400',
                 'display name must be 1 to 200 characters without control or direction-override characters',
                 'a display name with a direction override is refused');

-- Every admin view answers an admin who is not a superuser, every column (a view's functions run with the reader's rights).
SELECT is(test.unreadable_views('admin', 'orderly_admin'), '{}', 'orderly_admin reads every admin view');

SELECT is_empty('SELECT * FROM test.audit_rows_without_actor()', 'every audit row of this file names its actor');

SELECT orderly.audit(test.uid('Dana.Smith'), 'probe.read', 'probe', '1', NULL, '{}');
SELECT is((SELECT actor_username FROM admin.audit_log ORDER BY id DESC LIMIT 1), 'Dana.Smith', 'a user by name too (actor_username)');
SELECT * FROM finish();
ROLLBACK;
