-- Orderly: carrier tracking events and a shipment's route (issue 13, items 1 and 3). Tables in
-- V018__tracking_and_risk.sql; the ETA rules in R__137_shipment_eta.sql.
--
-- Three ways in, one function: orderly.apply_tracking_event. It is reached by
--   TRACKING EVENT carrier= event_id= (shipment=|tracking_no=) code= at= [location=] [lat=] [lon=]
--                  [eta=] [signed_by=] [note=]                    (api.tracking_event, a login
--       with tracking.post; a login bound to a carrier, users.carrier, only for that carrier);
--   POST /carriers/<code>/events on orderlyd's webhook listener, whose body orderlyd hands to
--       api.carrier_webhook with the signature header: that checks the HMAC and then applies the
--       event as the carrier (audit actor_kind 'carrier');
--   `orderly tracking import FILE.csv`, which sends TRACKING EVENT lines.
--
-- Idempotent by (carrier, event_id): the event's row keeps the reply it got, and the same event
-- again gets that reply and changes nothing. The same event_id with different content is a
-- conflict (OL409), never silently taken for the first. Events may arrive in any order: every
-- event is stored; the shipment's tracking state (tracking_code, tracking_at, tracking_location)
-- follows the event with the latest "at" (a tie: the later arrival), so an older event never
-- moves it back. The carrier's ETA follows the latest event that gave one.
-- A delivered event delivers the shipment whenever it arrives (a delivery is a fact: a later
-- in_transit cannot undo it; a second delivered is stored, not applied), at its "at" (never
-- before the shipment left), with signed_by, and
-- drives the order's lifecycle (orderly.advance: delivered, completed when paid), as SHIPMENT
-- DELIVERED does. An exception, failed attempt or return, when it is the shipment's latest event,
-- notifies role logistics and the order's creator (shipment.exception).
--
-- Locks: the order's row, then the shipment's (the order of SHIPMENT CREATE and DELIVERED), then
-- the event's key; notifications last.

-- Webhook secrets are encrypted at rest, and signatures made, by orderly.encrypt_secret,
-- orderly.decrypt_secret and orderly.webhook_signature (R__010_helpers.sql, beside the other
-- functions that call pgcrypto).

-- Whether signature is the one secret (encrypted) makes for body. Compared as digests of both,
-- so that the time taken says nothing about how much matched.
CREATE OR REPLACE FUNCTION orderly.signature_matches(body text, signature text, secret bytea) RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN secret IS NOT NULL
       AND sha256(convert_to(lower(btrim(coalesce(signature, ''))), 'UTF8'))
           = sha256(convert_to(orderly.webhook_signature(body, orderly.decrypt_secret(secret)), 'UTF8'));
END
$$;

-- Admin: a new webhook secret for a carrier, returned once (it is stored only encrypted). The
-- previous one keeps working for "grace" (default a day), so the carrier can switch without
-- losing events; grace 0 revokes it at once. Audited without the secret.
CREATE OR REPLACE FUNCTION admin.rotate_carrier_secret(carrier text, grace interval DEFAULT interval '1 day')
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    c        orderly.carriers;
    v_secret text := 'whsec_' || replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
BEGIN
    SELECT * INTO c FROM orderly.carriers x WHERE x.code = lower(btrim(rotate_carrier_secret.carrier)) FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'carrier "%" not found', orderly.for_message(rotate_carrier_secret.carrier) USING ERRCODE = 'OL404';
    END IF;
    IF grace IS NULL OR grace < interval '0' OR grace > interval '30 days' THEN
        RAISE EXCEPTION 'grace must be between 0 and 30 days' USING ERRCODE = 'OL400';
    END IF;
    UPDATE orderly.carriers x
    SET webhook_previous = CASE WHEN grace > interval '0' THEN x.webhook_secret END,
        webhook_previous_until = CASE WHEN grace > interval '0' AND x.webhook_secret IS NOT NULL THEN now() + grace END,
        webhook_secret = orderly.encrypt_secret(v_secret),
        webhook_rotated_at = now()
    WHERE x.code = c.code;
    PERFORM orderly.audit(NULL, 'carrier.secret_rotated', 'carrier', c.code,
                          jsonb_build_object('had_secret', c.webhook_secret IS NOT NULL),
                          jsonb_build_object('previous_valid_until',
                                             CASE WHEN grace > interval '0' AND c.webhook_secret IS NOT NULL
                                                  THEN orderly.json_time(now() + grace) END),
                          actor_kind => 'admin_sql');
    RETURN v_secret;
END
$$;

COMMENT ON FUNCTION admin.rotate_carrier_secret(text, interval) IS
    'A new webhook signing secret for a carrier, shown once; the previous one stays valid for grace (audited, secret never logged)';

-- Admin: bind a login to a carrier (its events only); NULL unbinds.
CREATE OR REPLACE FUNCTION admin.set_user_carrier(username text, carrier text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u         orderly.users := orderly.user_for_update(set_user_carrier.username);
    v_carrier text := lower(btrim(set_user_carrier.carrier));
BEGIN
    IF v_carrier IS NOT NULL AND NOT EXISTS (SELECT 1 FROM orderly.carriers c WHERE c.code = v_carrier) THEN
        RAISE EXCEPTION 'carrier "%" not found', orderly.for_message(v_carrier) USING ERRCODE = 'OL404';
    END IF;
    IF v_carrier IS NOT NULL AND u.customer_id IS NOT NULL THEN
        RAISE EXCEPTION 'user % is a customer''s login; a carrier''s login must be its own', u.username USING ERRCODE = 'OL409';
    END IF;
    UPDATE orderly.users x SET carrier = v_carrier, updated_at = now() WHERE x.id = u.id;
    PERFORM orderly.check_customer_rights(ARRAY[u.id]);
    -- Bound to another carrier, it forgets the replies it kept: a retry with an old key would
    -- hand back what it posted for the carrier before (as a login moved to another customer).
    IF u.carrier IS DISTINCT FROM v_carrier THEN
        DELETE FROM orderly.idempotency_keys k WHERE k.user_id = u.id;
    END IF;
    PERFORM orderly.audit(NULL, 'user.carrier', 'user', u.id::text, jsonb_build_object('carrier', u.carrier),
                          jsonb_build_object('carrier', v_carrier), actor_kind => 'admin_sql');
END
$$;

COMMENT ON FUNCTION admin.set_user_carrier(text, text) IS
    'Bind a login to a carrier: it may post tracking events for that carrier''s shipments only (NULL unbinds; audited)';

-- The event ---------------------------------------------------------------------------------------------

-- An event's fields from protocol arguments or a webhook body (the same names), checked; each
-- error names its field. Returns the normalised event (what a replay is compared with).
-- A command's arguments were checked against its registry row already; a webhook body is checked
-- here for fields the event does not have.
CREATE OR REPLACE FUNCTION orderly.check_event_fields(body jsonb) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM orderly.check_args(body, ARRAY['event_id', 'shipment', 'tracking_no', 'code', 'at', 'location', 'lat', 'lon',
                                           'eta', 'signed_by', 'note']);
END
$$;

CREATE OR REPLACE FUNCTION orderly.tracking_event_fields(args jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_event    text := btrim(orderly.arg_text(args, 'event_id', true));
    v_shipment bigint := orderly.arg_bigint(args, 'shipment');
    v_tracking text := nullif(btrim(orderly.arg_text(args, 'tracking_no')), '');
    v_code     text := lower(btrim(orderly.arg_text(args, 'code', true)));
    v_at       timestamptz := orderly.arg_time(args, 'at');
    v_location text := nullif(btrim(orderly.arg_text(args, 'location')), '');
    v_lat      numeric := orderly.arg_numeric(args, 'lat');
    v_lon      numeric := orderly.arg_numeric(args, 'lon');
    v_eta      timestamptz := orderly.arg_time(args, 'eta');
    v_signed   text := nullif(btrim(orderly.arg_text(args, 'signed_by')), '');
    v_note     text := nullif(btrim(orderly.arg_text(args, 'note')), '');
BEGIN
    IF v_event !~ '^[A-Za-z0-9._:-]{1,128}$' THEN
        RAISE EXCEPTION 'event_id must be 1 to 128 letters, digits or ".", "_", ":", "-"' USING ERRCODE = 'OL400';
    END IF;
    IF num_nonnulls(v_shipment, v_tracking) <> 1 THEN
        RAISE EXCEPTION 'give exactly one of shipment and tracking_no' USING ERRCODE = 'OL400';
    END IF;
    IF v_code NOT IN ('picked_up', 'in_transit', 'out_for_delivery', 'delivered', 'failed_attempt', 'exception', 'returned') THEN
        RAISE EXCEPTION 'code must be one of picked_up, in_transit, out_for_delivery, delivered, failed_attempt, exception, returned'
            USING ERRCODE = 'OL400';
    END IF;
    IF v_at IS NULL THEN
        RAISE EXCEPTION 'at is required (when it happened, like 2025-01-31T12:00:00Z)' USING ERRCODE = 'OL400';
    END IF;
    IF v_at > now() + interval '5 minutes' THEN
        RAISE EXCEPTION 'at cannot be in the future' USING ERRCODE = 'OL400';
    END IF;
    IF v_location IS NOT NULL AND (length(v_location) > 200 OR v_location ~ '[[:cntrl:]]') THEN
        RAISE EXCEPTION 'location must be at most 200 characters on one line' USING ERRCODE = 'OL400';
    END IF;
    IF orderly.hides_text(v_location) THEN
        RAISE EXCEPTION 'location may not hold control characters, line separators or bidirectional overrides' USING ERRCODE = 'OL400';
    END IF;
    -- An ETA is when the parcel should arrive, as the carrier sees it at the event: not before the
    -- event (a day's slack for time zones written wrong), and within a year of it (9999-12-31 is
    -- a placeholder, not a plan, and would raise a delay warning to the customer).
    IF v_eta < v_at - interval '1 day' THEN
        RAISE EXCEPTION 'eta is more than a day before the event (at)' USING ERRCODE = 'OL400';
    END IF;
    IF v_eta > v_at + interval '1 year' THEN
        RAISE EXCEPTION 'eta is more than a year after the event (at)' USING ERRCODE = 'OL400';
    END IF;
    IF (v_lat IS NULL) <> (v_lon IS NULL) THEN
        RAISE EXCEPTION 'lat and lon come together' USING ERRCODE = 'OL400';
    END IF;
    IF v_lat NOT BETWEEN -90 AND 90 THEN
        RAISE EXCEPTION 'lat must be between -90 and 90' USING ERRCODE = 'OL400';
    END IF;
    IF v_lon NOT BETWEEN -180 AND 180 THEN
        RAISE EXCEPTION 'lon must be between -180 and 180' USING ERRCODE = 'OL400';
    END IF;
    IF v_signed IS NOT NULL AND (length(v_signed) > 200 OR v_signed ~ '[[:cntrl:]]') THEN
        RAISE EXCEPTION 'signed_by must be at most 200 characters on one line' USING ERRCODE = 'OL400';
    END IF;
    IF orderly.hides_text(v_signed) THEN
        RAISE EXCEPTION 'signed_by may not hold control characters, line separators or bidirectional overrides' USING ERRCODE = 'OL400';
    END IF;
    IF v_signed IS NOT NULL AND v_code <> 'delivered' THEN
        RAISE EXCEPTION 'signed_by belongs to a delivered event' USING ERRCODE = 'OL400';
    END IF;
    IF v_note IS NOT NULL AND length(v_note) > 1000 THEN
        RAISE EXCEPTION 'note must be at most 1000 characters' USING ERRCODE = 'OL400';
    END IF;
    IF orderly.hides_text(v_note) THEN
        RAISE EXCEPTION 'note may not hold control characters (line breaks and tab excepted), line separators or bidirectional overrides'
            USING ERRCODE = 'OL400';
    END IF;
    RETURN jsonb_build_object('event_id', v_event, 'shipment', v_shipment, 'tracking_no', v_tracking, 'code', v_code,
                              'at', orderly.json_time(v_at), 'location', v_location,
                              'lat', round(v_lat, 6), 'lon', round(v_lon, 6),
                              'eta', orderly.json_time(v_eta), 'signed_by', v_signed, 'note', v_note);
END
$$;

-- The reply to an event: what it did and where the shipment stands now.
-- json, not jsonb: the keys stay in this order for whoever reads the reply.
DROP FUNCTION IF EXISTS orderly.tracking_reply(orderly.shipments, jsonb, boolean);
CREATE OR REPLACE FUNCTION orderly.tracking_reply(s orderly.shipments, ev jsonb, applied boolean) RETURNS json
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    e record;
BEGIN
    SELECT * INTO e FROM orderly.shipment_eta(s);
    RETURN json_build_object(
        'carrier', s.carrier, 'event_id', ev ->> 'event_id', 'shipment', s.id, 'order', s.order_id,
        'code', ev ->> 'code', 'at', ev ->> 'at', 'applied', applied,
        -- When Orderly first received the event: a replay's reply is the first one, so this tells
        -- a client (orderly tracking import) that its event was already known.
        'received_at', orderly.json_time(now()),
        'shipment_status', s.status, 'tracking_code', s.tracking_code, 'tracking_at', orderly.json_time(s.tracking_at),
        'delivered_at', orderly.json_time(s.delivered_at),
        'eta', orderly.json_time(e.eta), 'eta_source', e.eta_source);
END
$$;

-- Applies one checked event (orderly.tracking_event_fields) of carrier to its shipment; the reply.
-- actor: the user whose command it is (actor_kind 'user'), or NULL with 'carrier' (the webhook).
-- only_carrier: a login bound to a carrier sees no other carrier's shipments.
DROP FUNCTION IF EXISTS orderly.apply_tracking_event(text, jsonb, text, bigint, text);
CREATE OR REPLACE FUNCTION orderly.apply_tracking_event(carrier text, ev jsonb, source text, actor bigint, actor_kind text)
RETURNS json
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_carrier text := lower(btrim(apply_tracking_event.carrier));
    v_at      timestamptz := (ev ->> 'at')::timestamptz;
    v_eta     timestamptz := (ev ->> 'eta')::timestamptz;
    v_code    text := ev ->> 'code';
    c         orderly.carriers;
    s         orderly.shipments;
    o         orderly.orders;
    t         orderly.tracking_events;
    v_applied boolean;
    v_deliver boolean;
    v_when    timestamptz;
    v_reply   json;
    v_before  jsonb;
    r         record;
BEGIN
    SELECT * INTO c FROM orderly.carriers x WHERE x.code = v_carrier;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'carrier "%" not found', orderly.for_message(v_carrier) USING ERRCODE = 'OL404';
    END IF;
    SELECT * INTO s FROM orderly.shipments x
    WHERE x.carrier = c.code
      AND (x.id = (ev ->> 'shipment')::bigint OR x.tracking_no = ev ->> 'tracking_no');
    IF NOT FOUND THEN
        RAISE EXCEPTION 'shipment % of carrier % not found', coalesce(ev ->> 'shipment', orderly.for_message(ev ->> 'tracking_no')), c.code
            USING ERRCODE = 'OL404';
    END IF;
    -- The order's row first, then the shipment's: the lock order of the shipment commands.
    SELECT * INTO o FROM orderly.orders x WHERE x.id = s.order_id FOR NO KEY UPDATE;
    SELECT * INTO s FROM orderly.shipments x WHERE x.id = s.id FOR UPDATE;

    -- The same event again: its reply, nothing changes. Under the shipment's lock, a copy of the
    -- event arriving at the same moment waits here and then finds the first.
    SELECT * INTO t FROM orderly.tracking_events x WHERE x.carrier = c.code AND x.event_id = ev ->> 'event_id';
    IF FOUND THEN
        IF t.shipment_id <> s.id OR t.code <> v_code OR t.at <> v_at
           OR t.location IS DISTINCT FROM ev ->> 'location' OR t.lat IS DISTINCT FROM (ev ->> 'lat')::numeric
           OR t.lon IS DISTINCT FROM (ev ->> 'lon')::numeric OR t.eta IS DISTINCT FROM v_eta
           OR t.signed_by IS DISTINCT FROM ev ->> 'signed_by' OR t.note IS DISTINCT FROM ev ->> 'note' THEN
            RAISE EXCEPTION 'event % of carrier % was already received with different content', t.event_id, c.code
                USING ERRCODE = 'OL409';
        END IF;
        RETURN t.reply;
    END IF;

    -- Delivered before it left cannot be (SHIPMENT DELIVERED refuses the same), and an event from
    -- long before it left is another parcel's or a wrong clock: it would show as the parcel's
    -- state, or add a transit of nothing to the lane's ETA history.
    IF v_code = 'delivered' AND v_at < s.shipped_at THEN
        RAISE EXCEPTION 'at cannot be before the shipment left (%)', orderly.json_time(s.shipped_at) USING ERRCODE = 'OL400';
    END IF;
    IF v_at < s.shipped_at - interval '1 day' THEN
        RAISE EXCEPTION 'at is more than a day before the shipment left (%)', orderly.json_time(s.shipped_at) USING ERRCODE = 'OL400';
    END IF;
    v_before := jsonb_build_object('status', s.status, 'tracking_code', s.tracking_code,
                                   'tracking_at', orderly.json_time(s.tracking_at),
                                   'carrier_eta', orderly.json_time(s.carrier_eta));
    -- Newer than what the shipment shows, and, once it is delivered (a carrier's event or SHIPMENT
    -- DELIVERED), not from before the delivery: that is history, kept but not shown. After the
    -- delivery only what can follow one shows (returned, an exception): a later scan of the parcel
    -- on its way is a carrier's late or stray event, and a delivered parcel does not go back in
    -- transit.
    -- A second delivered (another signer, a later time) is one of those too: the first delivery
    -- keeps its time and signer, and the tracking state never shows another.
    -- The delivered event that delivers the shipment is its tracking state whenever it arrives,
    -- at its time but never before the latest scan (a carrier's clocks disagree by seconds; a
    -- parcel delivered before it went out for delivery would leave the shipment delivered while
    -- its tracking still says on its way, as SHIPMENT DELIVERED refuses it).
    v_deliver := v_code = 'delivered' AND s.status <> 'delivered';
    v_when := CASE WHEN v_deliver THEN greatest(v_at, s.shipped_at, coalesce(s.tracking_at, v_at)) ELSE v_at END;
    v_applied := v_deliver
                 OR ((s.tracking_at IS NULL OR v_at >= s.tracking_at)
                     AND (s.status <> 'delivered'
                          OR (v_at >= s.delivered_at AND v_code IN ('returned', 'exception'))));
    UPDATE orderly.shipments x
    SET tracking_code = CASE WHEN v_applied THEN v_code ELSE x.tracking_code END,
        tracking_at = CASE WHEN v_applied THEN v_when ELSE x.tracking_at END,
        tracking_location = CASE WHEN v_applied THEN coalesce(ev ->> 'location', x.tracking_location) ELSE x.tracking_location END,
        carrier_eta = CASE WHEN v_eta IS NOT NULL AND (x.carrier_eta_at IS NULL OR v_at >= x.carrier_eta_at)
                           THEN v_eta ELSE x.carrier_eta END,
        carrier_eta_at = CASE WHEN v_eta IS NOT NULL AND (x.carrier_eta_at IS NULL OR v_at >= x.carrier_eta_at)
                              THEN v_at ELSE x.carrier_eta_at END,
        status = CASE WHEN v_code = 'delivered' THEN 'delivered' ELSE x.status END,
        delivered_at = CASE WHEN v_deliver THEN v_when ELSE x.delivered_at END,
        signed_by = CASE WHEN v_code = 'delivered' AND x.status <> 'delivered' THEN ev ->> 'signed_by' ELSE x.signed_by END
    WHERE x.id = s.id
    RETURNING * INTO s;

    v_reply := orderly.tracking_reply(s, ev, v_applied);
    BEGIN
        INSERT INTO orderly.tracking_events (carrier, event_id, shipment_id, code, at, location, lat, lon, eta, signed_by, note,
                                             source, received_by, applied, reply)
        VALUES (c.code, ev ->> 'event_id', s.id, v_code, v_at, ev ->> 'location', (ev ->> 'lat')::numeric, (ev ->> 'lon')::numeric,
                v_eta, ev ->> 'signed_by', ev ->> 'note', source, actor, v_applied, v_reply);
    EXCEPTION WHEN unique_violation THEN
        -- The same event_id for another shipment, sent at the same moment (the shipment locks
        -- did not meet): whichever came second is the conflict it would be a moment later.
        RAISE EXCEPTION 'event % of carrier % was already received with different content', ev ->> 'event_id', c.code
            USING ERRCODE = 'OL409';
    END;
    PERFORM orderly.audit(actor, 'shipment.tracking', 'shipment', s.id::text, v_before,
                          jsonb_build_object('carrier', c.code, 'event_id', ev ->> 'event_id', 'code', v_code,
                                             'at', ev ->> 'at', 'applied', v_applied, 'source', source,
                                             'status', s.status, 'tracking_code', s.tracking_code,
                                             'carrier_eta', orderly.json_time(s.carrier_eta)),
                          actor_kind => apply_tracking_event.actor_kind);
    IF v_code = 'delivered' AND v_before ->> 'status' <> 'delivered' THEN
        o := orderly.advance(o, actor, carrier => CASE WHEN apply_tracking_event.actor_kind = 'carrier' THEN c.code END);
    END IF;

    -- Trouble on the way, if it is the news (not an old event arriving late): last, as every
    -- api.notify is.
    IF v_applied AND v_code IN ('exception', 'failed_attempt', 'returned') THEN
        FOR r IN SELECT NULL::bigint AS user_id, 'logistics' AS role
                 UNION ALL
                 SELECT o.created_by, NULL WHERE o.created_by IS NOT NULL LOOP
            PERFORM api.notify(r.user_id, r.role, 'shipment.exception',
                               jsonb_build_object('shipment', s.id, 'order', o.id, 'carrier', c.code,
                                                  'tracking_no', s.tracking_no, 'code', v_code, 'at', ev ->> 'at',
                                                  'location', ev ->> 'location', 'note', ev ->> 'note',
                                                  'customer', (SELECT cu.name FROM orderly.customers cu WHERE cu.id = o.customer_id)),
                               actor, apply_tracking_event.actor_kind);
        END LOOP;
    END IF;
    RETURN v_reply;
END
$$;

-- TRACKING EVENT ---------------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION api.tracking_event(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u         orderly.users := orderly.begin_command('TRACKING EVENT', tracking_event.actor, tracking_event.args);
    v_replay  json := orderly.replay(u, tracking_event.args);
    v_carrier text := lower(btrim(orderly.arg_text(tracking_event.args, 'carrier', true)));
    v_event   jsonb;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    IF u.carrier IS NOT NULL AND v_carrier IS DISTINCT FROM u.carrier THEN
        RAISE EXCEPTION 'this login posts events for carrier % only', u.carrier USING ERRCODE = 'OL403';
    END IF;
    -- Posting for any carrier's shipment is for staff who see every order (logistics:
    -- order.read_all). Any other login, a carrier's system whatever its role is called, posts
    -- only once an admin binds it to its carrier: unbound it would post for every carrier, a
    -- delivery included.
    IF u.carrier IS NULL AND NOT orderly.has_permission(u.id, 'order.read_all') THEN
        RAISE EXCEPTION 'this login is bound to no carrier: an admin binds a carrier''s login with admin.set_user_carrier (staff who post for any carrier hold order.read_all)'
            USING ERRCODE = 'OL403';
    END IF;
    v_event := orderly.tracking_event_fields(args - 'carrier' - 'idempotency_key');
    RETURN NEXT orderly.remember(u, args, orderly.apply_tracking_event(v_carrier, v_event, 'protocol', u.id, 'user'));
END
$$;

SELECT orderly.register_command('TRACKING EVENT', 'api.tracking_event', 'tracking.post',
    arguments  => 'carrier:code! event_id:text! shipment:id tracking_no:text code:code! at:timestamp! location:text lat:number lon:number eta:timestamp signed_by:text note:text',
    usage      => 'TRACKING EVENT carrier= event_id= (shipment=|tracking_no=) code=picked_up|in_transit|out_for_delivery|delivered|failed_attempt|exception|returned at= [location=] [lat=] [lon=] [eta=] [signed_by=] [note=]',
    summary    => 'A carrier''s tracking event, once per (carrier, event_id): moves the shipment''s tracking state if newest, sets its ETA, delivers it.',
    changes    => true);

-- The webhook ------------------------------------------------------------------------------------------
-- orderlyd's HTTP listener hands over the carrier code from the path, the raw body and the
-- X-Orderly-Signature header; the answer is {"status": HTTP status, "body": {...}}:
--   401 {"error":"bad signature"}   no such carrier, no secret set, or no matching signature
--                                   (one answer for all: the caller learns nothing without the secret)
--   400 {"error":…, "field":…}      the body is not a JSON object, or a field is missing, unknown or wrong
--   404 {"error":…}                 no such shipment of this carrier
--   409 {"error":…}                 the event_id was received before with different content
--   200 the reply of TRACKING EVENT  applied, stored as older, or a replay (the same reply)
-- Body: {"event_id":…, "shipment":… | "tracking_no":…, "code":…, "at":…, "location":…, "lat":…,
-- "lon":…, "eta":…, "signed_by":…, "note":…} — the arguments of TRACKING EVENT without carrier.
CREATE OR REPLACE FUNCTION api.carrier_webhook(carrier text, body text, signature text) RETURNS json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    c        orderly.carriers;
    v_ok     boolean := false;
    v_body   jsonb;
    v_event  jsonb;
    v_reply  json;
    v_msg    text;
    v_field  text;
BEGIN
    -- Inactive or not: an inactive carrier takes no new shipments, and its parcels on the way are
    -- still tracked (its secret is what lets it post; admin.rotate_carrier_secret ends that).
    SELECT * INTO c FROM orderly.carriers x WHERE x.code = lower(btrim(carrier_webhook.carrier));
    IF FOUND AND body IS NOT NULL THEN
        v_ok := orderly.signature_matches(body, signature, c.webhook_secret)
                OR (coalesce(c.webhook_previous_until > now(), false)
                    AND orderly.signature_matches(body, signature, c.webhook_previous));
    END IF;
    IF NOT v_ok THEN
        RETURN json_build_object('status', 401, 'body', json_build_object('error', 'bad signature'));
    END IF;
    BEGIN
        v_body := body::jsonb;
    EXCEPTION WHEN invalid_text_representation THEN
        RETURN json_build_object('status', 400, 'body', json_build_object('error', 'the body is not JSON'));
    WHEN untranslatable_character THEN
        RETURN json_build_object('status', 400, 'body', json_build_object('error', 'the body holds \u0000, which no field may'));
    WHEN statement_too_complex THEN
        -- Arrays in arrays deeper than the parser's stack (no field is nested at all).
        RETURN json_build_object('status', 400, 'body', json_build_object('error', 'the body is nested too deeply'));
    END;
    IF jsonb_typeof(v_body) <> 'object' THEN
        RETURN json_build_object('status', 400, 'body', json_build_object('error', 'the body must be a JSON object'));
    END IF;
    -- A field given twice: jsonb keeps the last, so it is found in the text (as the protocol
    -- refuses an argument given twice).
    v_field := (SELECT k FROM json_object_keys(body::json) k GROUP BY k HAVING count(*) > 1 ORDER BY k LIMIT 1);
    IF v_field IS NOT NULL THEN
        RETURN json_build_object('status', 400, 'body', json_build_object('error', format('field %s is given twice', v_field),
                                                                          'field', v_field));
    END IF;
    BEGIN
        PERFORM orderly.check_event_fields(v_body);
        v_event := orderly.tracking_event_fields(v_body);
        v_reply := orderly.apply_tracking_event(c.code, v_event, 'webhook', NULL, 'carrier');
    EXCEPTION WHEN SQLSTATE 'OL400' OR SQLSTATE 'OL404' OR SQLSTATE 'OL409' THEN
        GET STACKED DIAGNOSTICS v_msg = MESSAGE_TEXT;
        -- The field an error is about: the first word of its message when that is a field name
        -- (the messages of tracking_event_fields and check_args start with it or quote it).
        v_field := coalesce((regexp_match(v_msg, '^unknown argument "([a-z_]+)"'))[1],
                            (regexp_match(v_msg, '^(event_id|shipment|tracking_no|code|at|location|lat|lon|eta|signed_by|note)\M'))[1],
                            CASE WHEN v_msg LIKE 'give exactly one of shipment and tracking_no%' THEN 'shipment' END);
        RETURN json_build_object('status', CASE SQLSTATE WHEN 'OL404' THEN 404 WHEN 'OL409' THEN 409 ELSE 400 END,
                                 'body', json_strip_nulls(json_build_object('error', replace(v_msg, 'argument', 'field'),
                                                                            'field', v_field)));
    WHEN data_exception THEN
        -- A value PostgreSQL itself refuses (a time offset out of range): the carrier's to mend.
        GET STACKED DIAGNOSTICS v_msg = MESSAGE_TEXT;
        RETURN json_build_object('status', 400, 'body', json_build_object('error', 'a field has a value that cannot be stored: ' || v_msg));
    END;
    RETURN json_build_object('status', 200, 'body', v_reply);
END
$$;

COMMENT ON FUNCTION api.carrier_webhook(text, text, text) IS
    'orderlyd''s webhook: checks the carrier''s HMAC-SHA256 signature over the body, then applies the tracking event; {status, body}';

-- SHIPMENT ROUTE -----------------------------------------------------------------------------------------
-- One GeoJSON FeatureCollection (RFC 7946: positions are [lon, lat]): a LineString through the
-- positions of the shipment's events in time order (when there are two or more), then a Point
-- per event that has a position, with its code, time and location. Events without a position
-- appear in no feature. A customer sees the route of its own shipments (SHIPMENT SHOW's rule).
CREATE OR REPLACE FUNCTION orderly.shipment_route(s orderly.shipments) RETURNS json
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH located AS (
        SELECT e.* FROM orderly.tracking_events e
        WHERE e.shipment_id = ($1).id AND e.lat IS NOT NULL
    ), line AS (
        SELECT json_build_object(
                   'type', 'Feature',
                   'geometry', json_build_object('type', 'LineString',
                                                 'coordinates', json_agg(json_build_array(l.lon, l.lat) ORDER BY l.at, l.id)),
                   'properties', json_build_object('kind', 'route', 'shipment', ($1).id, 'carrier', ($1).carrier,
                                                   'tracking_no', ($1).tracking_no, 'status', ($1).status,
                                                   'from', orderly.json_time(min(l.at)), 'to', orderly.json_time(max(l.at)))) AS f
        FROM located l
        HAVING count(*) >= 2
    ), points AS (
        SELECT json_build_object(
                   'type', 'Feature',
                   'geometry', json_build_object('type', 'Point', 'coordinates', json_build_array(l.lon, l.lat)),
                   'properties', json_build_object('kind', 'event', 'shipment', ($1).id, 'code', l.code,
                                                   'at', orderly.json_time(l.at), 'location', l.location)) AS f,
               l.at, l.id
        FROM located l
    )
    SELECT json_build_object('type', 'FeatureCollection',
                             'features', coalesce((SELECT json_agg(x.f ORDER BY x.n, x.at, x.id)
                                                   FROM (SELECT f, 0 AS n, NULL::timestamptz AS at, NULL::bigint AS id FROM line
                                                         UNION ALL
                                                         SELECT f, 1, at, id FROM points) x), '[]'))
$$;

CREATE OR REPLACE FUNCTION api.shipment_route(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u orderly.users := orderly.begin_command('SHIPMENT ROUTE', shipment_route.actor, shipment_route.args);
BEGIN
    RETURN NEXT orderly.visible_doc('route',
        orderly.shipment_route(orderly.shipment_for(u, orderly.arg_bigint(args, 'id', true), false)), orderly.own_customer(u));
END
$$;

SELECT orderly.register_command('SHIPMENT ROUTE', 'api.shipment_route', 'order.read',
    arguments  => 'id:id!',
    positional => '{id}',
    usage      => 'SHIPMENT ROUTE id',
    summary    => 'A shipment''s route as one GeoJSON FeatureCollection ([lon, lat]): the line through its tracked positions and a point per event.');
