-- Orderly: users, roles, permissions, authentication failures and the audit log, plus the
-- seeded role and permission catalog. Runs as orderly_owner.
--
-- Business rules are enforced by the admin/api functions with friendly errors; the CHECK
-- constraints below are the backstop that holds even for a careless owner session.

CREATE TABLE orderly.users (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username          text NOT NULL
                      CONSTRAINT users_username_format CHECK (username ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{1,63}$'),
    display_name      text NOT NULL
                      CONSTRAINT users_display_name_format
                      CHECK (length(display_name) BETWEEN 1 AND 200 AND display_name !~ '[[:cntrl:]]'),
    -- bcrypt only; the column never leaves the orderly schema (no view or function returns it).
    password_hash     text NOT NULL CONSTRAINT users_password_hash_bcrypt CHECK (password_hash ~ '^\$2[abxy]\$'),
    locked            boolean NOT NULL DEFAULT false,       -- set by an admin, lifted only by an admin
    locked_until      timestamptz,                          -- temporary lockout after failed logins
    failed_attempts   integer NOT NULL DEFAULT 0 CHECK (failed_attempts >= 0),
    last_failed_at    timestamptz,
    -- Failures before this instant no longer count towards a lockout: set by a successful login,
    -- an unlock, a password change and by the lockout itself (so each lockout starts afresh).
    failures_reset_at timestamptz,
    last_login_at     timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
    -- A later migration links users of role "customer" to a customer with a nullable
    -- customer_id column; nothing here assumes every user is an employee.
);

-- Usernames are matched case-insensitively at login, so they must be unique that way too.
CREATE UNIQUE INDEX users_username_lower_key ON orderly.users (lower(username));

COMMENT ON TABLE orderly.users IS 'People who log in to Orderly (staff and customers)';

CREATE TABLE orderly.roles (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE CONSTRAINT roles_name_format CHECK (name ~ '^[a-z][a-z0-9_]{1,62}$'),
    description text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE orderly.roles IS 'Business roles (not PostgreSQL roles); what a user may do comes from these';

CREATE TABLE orderly.permissions (
    code        text PRIMARY KEY
                CONSTRAINT permissions_code_format CHECK (code ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$' AND length(code) <= 64),
    description text NOT NULL DEFAULT ''
);

COMMENT ON TABLE orderly.permissions IS 'Catalog of permission codes checked by the server and by api functions';

CREATE TABLE orderly.role_permissions (
    role_id    bigint NOT NULL REFERENCES orderly.roles (id) ON DELETE CASCADE,
    permission text   NOT NULL REFERENCES orderly.permissions (code) ON UPDATE CASCADE ON DELETE CASCADE,
    CONSTRAINT role_permissions_pkey PRIMARY KEY (role_id, permission)
);

CREATE INDEX role_permissions_permission_idx ON orderly.role_permissions (permission);

CREATE TABLE orderly.user_roles (
    user_id    bigint NOT NULL REFERENCES orderly.users (id) ON DELETE CASCADE,
    role_id    bigint NOT NULL REFERENCES orderly.roles (id) ON DELETE CASCADE,
    granted_at timestamptz NOT NULL DEFAULT now(),
    granted_by text NOT NULL DEFAULT session_user,
    CONSTRAINT user_roles_pkey PRIMARY KEY (user_id, role_id)
);

-- "who holds role X" is asked whenever a role's permissions change.
CREATE INDEX user_roles_role_idx ON orderly.user_roles (role_id);

-- Every failed AUTH, whether or not the username exists: the basis for windowed lockout and
-- per-address limits. Kept separate from users so unknown usernames are counted too.
CREATE TABLE orderly.auth_failures (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username    text NOT NULL,
    client_addr text,
    at          timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX auth_failures_username_at_idx ON orderly.auth_failures (lower(username), at);
CREATE INDEX auth_failures_client_addr_at_idx ON orderly.auth_failures (client_addr, at);

CREATE TABLE orderly.audit_log (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    actor_user_id bigint,                                   -- null for admins working in SQL
    actor_db_role text NOT NULL DEFAULT session_user,       -- the login, even inside SECURITY DEFINER
    action        text NOT NULL,
    entity        text NOT NULL,
    entity_id     text,
    before        jsonb,
    after         jsonb
);

-- No foreign key on actor_user_id: the log must outlive anything it mentions.
CREATE INDEX audit_log_entity_idx ON orderly.audit_log (entity, entity_id, at);
CREATE INDEX audit_log_at_idx ON orderly.audit_log (at);

COMMENT ON TABLE orderly.audit_log IS 'Append-only record of every state change';

-- Append-only is enforced by trigger rather than by privileges alone because the owner (and so
-- every SECURITY DEFINER function) holds all privileges on the table.
CREATE FUNCTION orderly.audit_log_is_append_only() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;

REVOKE ALL ON FUNCTION orderly.audit_log_is_append_only() FROM PUBLIC;

CREATE TRIGGER audit_log_no_update_delete
    BEFORE UPDATE OR DELETE ON orderly.audit_log
    FOR EACH ROW EXECUTE FUNCTION orderly.audit_log_is_append_only();

CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON orderly.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION orderly.audit_log_is_append_only();

-- Seeds ----------------------------------------------------------------------------------------

INSERT INTO orderly.roles (name, description) VALUES
    ('admin',              'Administers users, roles and the system'),
    ('sales_rep',          'Creates and submits orders for their customers'),
    ('sales_supervisor',   'Supervises sales reps and approves small orders'),
    ('sales_manager',      'Runs the sales team and approves larger orders'),
    ('finance_manager',    'Approves orders against credit and pricing rules'),
    ('production_manager', 'Plans production for accepted orders'),
    ('general_manager',    'Approves the largest orders and sees everything'),
    ('warehouse',          'Picks, packs and ships stock'),
    ('logistics',          'Plans and tracks deliveries'),
    ('customer_service',   'Answers customers about their orders'),
    ('auditor',            'Reads the audit trail and reports; changes nothing'),
    ('customer',           'A customer ordering for their own company');

INSERT INTO orderly.permissions (code, description) VALUES
    ('order.create',    'Create draft orders'),
    ('order.read',      'Read own or own customers'' orders'),
    ('order.read_all',  'Read every order'),
    ('order.submit',    'Submit a draft order for approval'),
    ('order.approve',   'Approve or reject orders within the approval limits'),
    ('order.cancel',    'Cancel orders'),
    ('customer.read',   'Read customer records'),
    ('customer.manage', 'Create and edit customers'),
    ('catalog.manage',  'Edit products and the catalog'),
    ('pricing.manage',  'Edit price lists'),
    ('price.override',  'Override a line price on an order'),
    ('report.read',     'Run reports'),
    ('notify.send',     'Send notifications to users or roles'),
    ('inbox.read',      'Read own notifications'),
    ('stats.read',      'Read server statistics'),
    ('audit.read',      'Read the audit log'),
    ('user.manage',     'Manage users and roles');

-- Only the permissions this issue needs; the order permissions are attached by later issues.
INSERT INTO orderly.role_permissions (role_id, permission)
SELECT r.id, p.permission
FROM orderly.roles r
JOIN (VALUES
        ('admin',   'stats.read'),
        ('admin',   'notify.send'),
        ('admin',   'audit.read'),
        ('admin',   'user.manage'),
        ('auditor', 'audit.read'),
        ('auditor', 'report.read')
     ) AS p (role, permission) ON p.role = r.name
UNION
SELECT r.id, 'inbox.read' FROM orderly.roles r;
