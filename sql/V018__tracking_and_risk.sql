-- Orderly: carrier tracking, ETA and route; delay warnings; telling the customer (issue 13).
-- Data only; the rules live in R__192_tracking.sql (events, ETA, route, webhook), R__196_risk.sql
-- (orders at risk, delay warnings) and R__197_outbox.sql (customer notices and their e-mail).

-- Permissions and the carrier role ------------------------------------------------------------------

INSERT INTO orderly.roles (name, description) VALUES
    ('carrier', 'A carrier''s system posting tracking events for its own shipments');

INSERT INTO orderly.permissions (code, description) VALUES
    ('tracking.post', 'Post carrier tracking events (a login bound to a carrier: its own shipments only)'),
    ('risk.read',     'See which open orders are at risk of being late, and why');

INSERT INTO orderly.role_permissions (role_id, permission)
SELECT r.id, p.permission
FROM orderly.roles r
JOIN (VALUES ('carrier',            'tracking.post'),
             ('logistics',          'tracking.post'),
             ('sales_rep',          'risk.read'),
             ('sales_supervisor',   'risk.read'),
             ('sales_manager',      'risk.read'),
             ('finance_manager',    'risk.read'),
             ('production_manager', 'risk.read'),
             ('general_manager',    'risk.read'),
             ('warehouse',          'risk.read'),
             ('logistics',          'risk.read'),
             ('customer_service',   'risk.read'),
             ('auditor',            'risk.read')) AS p (role, permission) ON p.role = r.name
ON CONFLICT DO NOTHING;

-- A carrier's integration login is bound to its carrier: it may post events for that carrier's
-- shipments only. A login is a customer's, a carrier's, or staff: never two of them.
ALTER TABLE orderly.users
    ADD COLUMN carrier text REFERENCES orderly.carriers (code),
    ADD CONSTRAINT users_one_party CHECK (carrier IS NULL OR customer_id IS NULL);

-- Events that arrive by the webhook are the carrier's own: no user acted. actor_kind 'carrier'
-- (the carrier's code is in the row's after-document).
ALTER TABLE orderly.audit_log DROP CONSTRAINT audit_log_actor;
ALTER TABLE orderly.audit_log ADD CONSTRAINT audit_log_actor CHECK (
    CASE actor_kind
        WHEN 'user'      THEN actor_user_id IS NOT NULL
        WHEN 'system'    THEN actor_user_id IS NULL
        WHEN 'admin_sql' THEN actor_user_id IS NULL
        WHEN 'carrier'   THEN actor_user_id IS NULL
        ELSE false
    END) NOT VALID;

-- Webhook secrets -----------------------------------------------------------------------------------
-- HMAC needs the secret itself to check a signature, so it cannot be stored as a one-way hash. It is
-- stored encrypted (pgcrypto, AES-256) with a key of its own table, which only the owner reads:
-- no view, audit row, BI role or dump of orderly.carriers shows it. During a rotation the previous
-- secret stays valid until webhook_previous_until, so a carrier can switch without losing events.

CREATE TABLE orderly.secret_key (
    id  boolean PRIMARY KEY DEFAULT true CONSTRAINT secret_key_one_row CHECK (id),
    key bytea NOT NULL CONSTRAINT secret_key_length CHECK (length(key) = 32)
);
-- Two v4 UUIDs (core PostgreSQL, 244 random bits): pgcrypto's schema is not known here.
INSERT INTO orderly.secret_key (key)
VALUES (decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'));
REVOKE ALL ON orderly.secret_key FROM PUBLIC;

COMMENT ON TABLE orderly.secret_key IS 'The key that encrypts carriers'' webhook secrets; read only by the owner''s functions';

ALTER TABLE orderly.carriers
    ADD COLUMN webhook_secret          bytea,
    ADD COLUMN webhook_previous        bytea,
    ADD COLUMN webhook_previous_until  timestamptz,
    ADD COLUMN webhook_rotated_at      timestamptz,
    -- Requests per minute the webhook accepts from this carrier (orderlyd enforces it).
    ADD COLUMN webhook_rate_per_minute integer NOT NULL DEFAULT 600
        CONSTRAINT carriers_webhook_rate_check CHECK (webhook_rate_per_minute BETWEEN 1 AND 100000);

-- Where shipments leave from (the lane's origin), one row --------------------------------------------

CREATE TABLE orderly.shipping_settings (
    id             boolean PRIMARY KEY DEFAULT true CONSTRAINT shipping_settings_one_row CHECK (id),
    origin_country char(2) NOT NULL DEFAULT 'DE' REFERENCES orderly.countries (code),
    origin_region  text CONSTRAINT shipping_settings_origin_region_format
                   CHECK (length(btrim(origin_region)) BETWEEN 1 AND 100 AND origin_region !~ '[[:cntrl:]]'),
    -- How many of the latest deliveries on a lane the history estimate reads, and how many it needs.
    history_sample integer NOT NULL DEFAULT 50 CONSTRAINT shipping_settings_history_sample_check CHECK (history_sample BETWEEN 1 AND 10000),
    history_min    integer NOT NULL DEFAULT 3 CONSTRAINT shipping_settings_history_min_check CHECK (history_min BETWEEN 1 AND 1000)
);
INSERT INTO orderly.shipping_settings DEFAULT VALUES;

-- The fallback transit time per carrier and service ('' : any service of the carrier).
CREATE TABLE orderly.transit_defaults (
    carrier text NOT NULL REFERENCES orderly.carriers (code),
    service text NOT NULL DEFAULT '' CONSTRAINT transit_defaults_service_format CHECK (length(service) <= 100),
    transit interval NOT NULL CONSTRAINT transit_defaults_transit_check CHECK (transit > interval '0' AND transit <= interval '180 days'),
    CONSTRAINT transit_defaults_pkey PRIMARY KEY (carrier, service)
);

COMMENT ON TABLE orderly.transit_defaults IS 'Transit time assumed per carrier and service ('''': any) when history has too few deliveries';

-- Shipments: their lane, and the state tracking events give them ---------------------------------------

ALTER TABLE orderly.shipments
    ADD COLUMN origin_country   char(2) REFERENCES orderly.countries (code),
    ADD COLUMN dest_country     char(2) REFERENCES orderly.countries (code),
    ADD COLUMN dest_region      text,
    -- The event with the latest "at" (ties: the later received): what the shipment is doing now.
    ADD COLUMN tracking_code    text,
    ADD COLUMN tracking_at      timestamptz,
    ADD COLUMN tracking_location text,
    -- The latest ETA a carrier gave, and the time of the event that gave it.
    ADD COLUMN carrier_eta      timestamptz,
    ADD COLUMN carrier_eta_at   timestamptz;

UPDATE orderly.shipments s
SET origin_country = (SELECT x.origin_country FROM orderly.shipping_settings x),
    dest_country = a.country, dest_region = a.region
FROM orderly.orders o LEFT JOIN orderly.addresses a ON a.id = o.ship_to_id
WHERE o.id = s.order_id;

-- The history estimate reads the latest deliveries of a carrier on a lane.
CREATE INDEX shipments_lane_delivered_idx ON orderly.shipments (carrier, dest_country, dest_region, delivered_at DESC)
    WHERE status = 'delivered';

CREATE TABLE orderly.tracking_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    carrier     text NOT NULL REFERENCES orderly.carriers (code),
    event_id    text NOT NULL CONSTRAINT tracking_events_event_id_format CHECK (event_id ~ '^[A-Za-z0-9._:-]{1,128}$'),
    shipment_id bigint NOT NULL REFERENCES orderly.shipments (id),
    code        text NOT NULL CONSTRAINT tracking_events_code_check
                CHECK (code IN ('picked_up', 'in_transit', 'out_for_delivery', 'delivered', 'failed_attempt', 'exception', 'returned')),
    at          timestamptz NOT NULL,
    location    text CONSTRAINT tracking_events_location_format CHECK (length(btrim(location)) BETWEEN 1 AND 200 AND location !~ '[[:cntrl:]]'),
    lat         numeric(8,6) CONSTRAINT tracking_events_lat_check CHECK (lat BETWEEN -90 AND 90),
    lon         numeric(9,6) CONSTRAINT tracking_events_lon_check CHECK (lon BETWEEN -180 AND 180),
    eta         timestamptz,
    signed_by   text CONSTRAINT tracking_events_signed_by_format CHECK (length(btrim(signed_by)) BETWEEN 1 AND 200 AND signed_by !~ '[[:cntrl:]]'),
    note        text CONSTRAINT tracking_events_note_format CHECK (length(btrim(note)) BETWEEN 1 AND 1000),
    -- How it came: a protocol command (a user; CSV imports are those too) or the webhook.
    source      text NOT NULL CONSTRAINT tracking_events_source_check CHECK (source IN ('protocol', 'webhook')),
    received_by bigint REFERENCES orderly.users (id),
    received_at timestamptz NOT NULL DEFAULT now(),
    -- Whether it moved the shipment (false: older than its latest event), and the reply it got:
    -- a replay of (carrier, event_id) gets that reply again.
    applied     boolean NOT NULL,
    reply       json NOT NULL,
    CONSTRAINT tracking_events_carrier_event_key UNIQUE (carrier, event_id),
    CONSTRAINT tracking_events_position_check CHECK ((lat IS NULL) = (lon IS NULL))
);

CREATE INDEX tracking_events_shipment_idx ON orderly.tracking_events (shipment_id, at, id);

CREATE TRIGGER tracking_events_append_only BEFORE UPDATE OR DELETE ON orderly.tracking_events
    FOR EACH ROW EXECUTE FUNCTION orderly.order_record_is_append_only();

COMMENT ON TABLE orderly.tracking_events IS 'Carrier tracking events, one per (carrier, event_id), in any order of arrival; append-only';

-- Delay risk -----------------------------------------------------------------------------------------
-- Why an open order may be late. customer_text is what the customer is told (no internals).

CREATE TABLE orderly.risk_reasons (
    code            text PRIMARY KEY,
    description     text NOT NULL,
    customer_text   text NOT NULL,
    notify_customer boolean NOT NULL DEFAULT true
);

INSERT INTO orderly.risk_reasons (code, description, customer_text, notify_customer) VALUES
    ('late_stage',       'The requested date is earlier than now plus the expected time of the stages still ahead',
                         'Your order is taking longer than planned.', true),
    ('stock_short',      'A line waits on a SKU whose available stock cannot cover it',
                         'An item of your order is waiting for stock.', true),
    ('production_issue', 'An open production issue (material, equipment, quality, …) on the order',
                         'Making your order is taking longer than planned.', true),
    ('transport',        'A carrier exception or failed delivery attempt, or a carrier ETA after the requested date',
                         'The delivery of your order is delayed in transport.', true);

-- How long each stage of an open order usually takes when its history has too few examples, and
-- which role owns it (a delay warning goes to that role). The stages follow the status positions.
CREATE TABLE orderly.stage_slas (
    status     text PRIMARY KEY REFERENCES orderly.order_statuses (code),
    sla        interval NOT NULL CONSTRAINT stage_slas_sla_check CHECK (sla >= interval '0'),
    owner_role text NOT NULL REFERENCES orderly.roles (name)
);

INSERT INTO orderly.stage_slas (status, sla, owner_role) VALUES
    ('pending_approval',  interval '2 days', 'sales_manager'),
    ('approved',          interval '1 day',  'production_manager'),
    ('in_production',     interval '5 days', 'production_manager'),
    ('ready',             interval '1 day',  'warehouse'),
    ('partially_shipped', interval '2 days', 'warehouse'),
    ('shipped',           interval '3 days', 'logistics'),
    ('on_hold',           interval '2 days', 'finance_manager');

COMMENT ON TABLE orderly.stage_slas IS 'Fallback duration and owning role of each stage an open order goes through';

CREATE TABLE orderly.delay_warnings (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id   bigint NOT NULL REFERENCES orderly.orders (id),
    reason     text NOT NULL REFERENCES orderly.risk_reasons (code),
    evidence   jsonb NOT NULL,
    raised_at  timestamptz NOT NULL,
    cleared_at timestamptz,
    CONSTRAINT delay_warnings_cleared_check CHECK (cleared_at IS NULL OR cleared_at >= raised_at)
);

-- Once per order and reason while it lasts: the backstop of "raised once", whoever checks.
CREATE UNIQUE INDEX delay_warnings_open_key ON orderly.delay_warnings (order_id, reason) WHERE cleared_at IS NULL;

COMMENT ON TABLE orderly.delay_warnings IS 'Delay warnings raised, one open per order and reason; cleared when the reason no longer applies';

-- Telling the customer: which status changes are milestones, and the e-mail outbox ------------------

ALTER TABLE orderly.order_statuses ADD COLUMN notify_customer boolean NOT NULL DEFAULT false;
UPDATE orderly.order_statuses SET notify_customer = true
WHERE code IN ('approved', 'in_production', 'partially_shipped', 'shipped', 'delivered', 'completed');

ALTER TABLE orderly.customers
    ADD COLUMN language text NOT NULL DEFAULT 'en' CONSTRAINT customers_language_format CHECK (language ~ '^[a-z]{2}$');

-- One template per event kind and language; {{name}} is replaced by the notice's value of name.
CREATE TABLE orderly.message_templates (
    kind     text NOT NULL,
    language text NOT NULL CONSTRAINT message_templates_language_format CHECK (language ~ '^[a-z]{2}$'),
    subject  text NOT NULL CONSTRAINT message_templates_subject_format CHECK (length(subject) BETWEEN 1 AND 200 AND subject !~ '[[:cntrl:]]'),
    body     text NOT NULL CONSTRAINT message_templates_body_length CHECK (length(body) BETWEEN 1 AND 20000),
    CONSTRAINT message_templates_pkey PRIMARY KEY (kind, language)
);

INSERT INTO orderly.message_templates (kind, language, subject, body) VALUES
    ('order.status', 'en', 'Order {{order}}: {{status_label}}',
     E'Hello {{customer}},\n\nyour order {{order}} is now: {{status_label}} ({{at}}).\n{{tracking}}\nThank you for your order.\n'),
    ('order.status', 'de', 'Bestellung {{order}}: {{status_label}}',
     E'Guten Tag {{customer}},\n\nIhre Bestellung {{order}} hat den Status: {{status_label}} ({{at}}).\n{{tracking}}\nVielen Dank für Ihre Bestellung.\n'),
    ('order.delay', 'en', 'Order {{order}} may be late',
     E'Hello {{customer}},\n\nwe are sorry: your order {{order}} may arrive later than {{requested_date}}.\n{{reason}}\nWe will keep you informed.\n'),
    ('order.delay', 'de', 'Bestellung {{order}} verzögert sich möglicherweise',
     E'Guten Tag {{customer}},\n\nleider kann sich Ihre Bestellung {{order}} über den {{requested_date}} hinaus verzögern.\n{{reason}}\nWir halten Sie auf dem Laufenden.\n');

CREATE TABLE orderly.outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel         text NOT NULL DEFAULT 'email' CONSTRAINT outbox_channel_check CHECK (channel IN ('email')),
    recipient       text NOT NULL CONSTRAINT outbox_recipient_format
                    CHECK (length(recipient) <= 254 AND recipient ~ '^[^@[:space:][:cntrl:]<>]+@[^@[:space:][:cntrl:]<>]+$'),
    subject         text NOT NULL CONSTRAINT outbox_subject_format CHECK (length(subject) BETWEEN 1 AND 200 AND subject !~ '[[:cntrl:]]'),
    body            text NOT NULL,
    kind            text NOT NULL,
    language        text NOT NULL,
    order_id        bigint REFERENCES orderly.orders (id),
    customer_id     bigint REFERENCES orderly.customers (id),
    -- One message per fact (the notice's kind and source): a second insert of it is a no-op.
    dedupe_key      text NOT NULL CONSTRAINT outbox_dedupe_key UNIQUE,
    state           text NOT NULL DEFAULT 'pending' CONSTRAINT outbox_state_check CHECK (state IN ('pending', 'sending', 'sent', 'failed')),
    attempts        integer NOT NULL DEFAULT 0 CONSTRAINT outbox_attempts_check CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    -- While sending: which server claimed it, and until when the claim holds (a crashed server's
    -- claim runs out and the row is tried again).
    claimed_by      text,
    claimed_until   timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    CONSTRAINT outbox_sent_check CHECK ((state = 'sent') = (sent_at IS NOT NULL))
);

CREATE INDEX outbox_due_idx ON orderly.outbox (next_attempt_at, id) WHERE state IN ('pending', 'sending');

COMMENT ON TABLE orderly.outbox IS 'Customer e-mails to send (transactional outbox): written with the change, delivered by orderlyd over SMTP';
