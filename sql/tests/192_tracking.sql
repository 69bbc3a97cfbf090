-- Tracking: TRACKING EVENT (idempotent by carrier and event_id, out-of-order safe, a carrier's
-- login limited to its own shipments, delivered drives the order, trouble notifies), the
-- webhook's signature check and answers, encrypted secrets and their rotation, the ETA and where
-- it comes from (carrier, history, default), SHIPMENT ROUTE's GeoJSON.
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT plan(89);

DO $$
BEGIN
    PERFORM admin.load_demo_catalog();
    PERFORM admin.create_user('wes', 'wes-secret-1', ARRAY['warehouse']);
    PERFORM admin.create_user('lou', 'lou-secret-1', ARRAY['logistics']);
    PERFORM admin.create_user('rita', 'rita-secret-1', ARRAY['sales_rep']);
    PERFORM admin.create_user('buyer', 'buyer-secret-1', ARRAY['customer']);
    PERFORM admin.create_user('other', 'other-secret-1', ARRAY['customer']);
    PERFORM admin.create_user('dhlbot', 'dhlbot-secret-1', ARRAY['carrier']);
    PERFORM admin.create_user('upsbot', 'upsbot-secret-1', ARRAY['carrier']);
    PERFORM admin.set_user_carrier('dhlbot', 'dhl');
    PERFORM admin.set_user_carrier('upsbot', 'ups');
END
$$;
CREATE TEMP TABLE ids (name text PRIMARY KEY, id bigint);
CREATE TEMP TABLE secrets (name text PRIMARY KEY, secret text);
CREATE FUNCTION pg_temp.shipped(customer bigint, carrier text, tracking text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint := test.submitted('rita', customer, '[{"sku":"PHN-X1-128-BLK","qty":1}]');
BEGIN
    RETURN (test.call('shipment_create', 'wes', jsonb_build_object('order', v_id, 'lines', '[{"line":1,"qty":1}]'::jsonb,
                                                                   'carrier', carrier, 'tracking_no', tracking)) ->> 'id')::bigint;
END $$;
CREATE FUNCTION pg_temp.ev(who text, args jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT test.call('tracking_event', who, args)
$$;
CREATE FUNCTION pg_temp.hook(carrier text, body text, secret text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT api.carrier_webhook(carrier, body, orderly.webhook_signature(body, secret))::jsonb
$$;
CREATE FUNCTION pg_temp.shipment(id bigint) RETURNS orderly.shipments LANGUAGE sql AS $$
    SELECT * FROM orderly.shipments WHERE shipments.id = $1
$$;

INSERT INTO ids VALUES ('acme', test.customer('rita', 'Acme', '+4930100100')), ('zeta', test.customer('rita', 'Zeta', '+4930100200'));
SELECT admin.link_customer('buyer', test.id('acme'));
SELECT admin.link_customer('other', test.id('zeta'));
INSERT INTO ids VALUES ('s1', pg_temp.shipped(test.id('acme'), 'dhl', 'JD0001'));
INSERT INTO ids SELECT 'o1', order_id FROM orderly.shipments WHERE id = test.id('s1');
-- It left on New Year's day (the events below are of early January).
UPDATE orderly.shipments SET shipped_at = '2026-01-01T00:00:00Z' WHERE id = test.id('s1');

-- The carrier role -------------------------------------------------------------------------------

SELECT is(orderly.user_permission_codes(test.uid('dhlbot')), ARRAY['tracking.post'], 'a carrier login may post tracking events, nothing else');
SELECT throws_ok($$ SELECT admin.set_user_carrier('buyer', 'dhl') $$, 'OL409', NULL, 'a customer''s login cannot be a carrier''s');
SELECT admin.create_user('mixbot', 'mixbot-secret-1', ARRAY['carrier', 'sales_rep']);
SELECT throws_ok($$ SELECT admin.set_user_carrier('mixbot', 'dhl') $$, 'OL409',
                 'user "mixbot" would be carrier dhl''s login holding catalog.read, customer.manage, customer.read, order.amend, order.cancel, order.create, order.read, order.submit, risk.read, which are not a carrier''s',
                 'a login with a sales rep''s rights is not bound to a carrier (an outsider''s system with staff rights)');
SELECT throws_ok($$ SELECT admin.grant_role('dhlbot', 'sales_rep') $$, 'OL409', NULL, 'nor does a carrier''s login get staff rights');
SELECT throws_ok(format($$ SELECT admin.link_customer('dhlbot', %s) $$, test.id('acme')), 'OL409',
                 'user dhlbot is carrier dhl''s login; a customer''s login must be its own', 'nor is it linked to a customer (a clear refusal, not a constraint''s)');
SELECT admin.create_user('newbot', 'newbot-secret-1', ARRAY['carrier']);
SELECT throws_ok($$ SELECT pg_temp.ev('newbot', '{"carrier":"dhl","event_id":"nb1","tracking_no":"JD0001","code":"delivered","at":"2026-01-02T08:00:00Z","signed_by":"M"}') $$,
                 'OL403', 'this login is bound to no carrier: an admin binds a carrier''s login with admin.set_user_carrier (staff who post for any carrier hold order.read_all)',
                 'a carrier''s login not yet bound posts for no carrier (it could deliver any shipment)');
SELECT admin.create_role('carrier_integration');
SELECT admin.grant_permission('carrier_integration', 'tracking.post');
SELECT admin.create_user('glsbot', 'glsbot-secret-1', ARRAY['carrier_integration']);
SELECT throws_ok($$ SELECT pg_temp.ev('glsbot', '{"carrier":"dhl","event_id":"nb2","tracking_no":"JD0001","code":"delivered","at":"2026-01-02T08:00:00Z","signed_by":"M"}') $$,
                 'OL403', NULL, 'whatever its role is called');
SELECT is((SELECT count(*)::integer FROM orderly.tracking_events), 0, 'nothing was stored');
SELECT is((SELECT carrier FROM admin.users WHERE username = 'dhlbot'), 'dhl', 'admin.users shows each login''s carrier');

-- TRACKING EVENT ---------------------------------------------------------------------------------

SELECT is(pg_temp.ev('dhlbot', '{"carrier":"dhl","event_id":"e1","tracking_no":"JD0001","code":"picked_up","at":"2026-01-02T08:00:00Z","location":"Hamburg Hub","lat":53.55,"lon":9.99}')
          - 'eta' - 'eta_source' - 'tracking_at' - 'delivered_at' - 'received_at',
          jsonb_build_object('carrier', 'dhl', 'event_id', 'e1', 'shipment', test.id('s1'), 'order', test.id('o1'),
                             'code', 'picked_up', 'at', '2026-01-02T08:00:00.000000Z', 'applied', true,
                             'shipment_status', 'shipped', 'tracking_code', 'picked_up'),
          'an event by tracking number: applied, the shipment''s tracking state follows');
SELECT test.snapshot(ARRAY['orderly.tracking_events', 'orderly.audit_log', 'orderly.shipments']);
SELECT is(pg_temp.ev('dhlbot', '{"carrier":"dhl","event_id":"e1","tracking_no":"JD0001","code":"picked_up","at":"2026-01-02T08:00:00Z","location":"Hamburg Hub","lat":53.55,"lon":9.99}'),
          (SELECT reply::jsonb FROM orderly.tracking_events WHERE carrier = 'dhl' AND event_id = 'e1'),
          'the same event again gets the same reply');
SELECT ok(test.unchanged(), 'and changes nothing (no event, audit row or shipment change)');
SELECT throws_ok($$ SELECT pg_temp.ev('dhlbot', '{"carrier":"dhl","event_id":"e1","tracking_no":"JD0001","code":"in_transit","at":"2026-01-02T08:00:00Z"}') $$,
                 'OL409', 'event e1 of carrier dhl was already received with different content',
                 'the same event_id with other content is a conflict, not a replay');
SELECT is(pg_temp.ev('dhlbot', jsonb_build_object('carrier', 'dhl', 'event_id', 'e3', 'shipment', test.id('s1'), 'code', 'in_transit',
                                                  'at', '2026-01-03T10:00:00Z', 'location', 'Berlin', 'lat', 52.52, 'lon', 13.405,
                                                  'eta', '2026-01-05T12:00:00Z')) ->> 'eta_source',
          'carrier', 'an event by shipment id with an ETA: the carrier''s ETA is the shipment''s');
SELECT is(pg_temp.ev('dhlbot', jsonb_build_object('carrier', 'dhl', 'event_id', 'e2', 'shipment', test.id('s1'), 'code', 'in_transit',
                                                  'at', '2026-01-02T20:00:00Z', 'location', 'Hannover', 'lat', 52.37, 'lon', 9.73,
                                                  'eta', '2026-01-09T12:00:00Z')) ->> 'applied',
          'false', 'an older event arriving late is stored but not applied');
SELECT is((SELECT tracking_code || ' ' || tracking_location || ' ' || orderly.json_time(carrier_eta) FROM orderly.shipments WHERE id = test.id('s1')),
          'in_transit Berlin 2026-01-05T12:00:00.000000Z', 'it moves neither the tracking state nor the ETA back');
SELECT is((SELECT count(*) FROM orderly.tracking_events WHERE shipment_id = test.id('s1')), 3::bigint, 'every event is kept');

SELECT throws_ok($$ SELECT pg_temp.ev('upsbot', '{"carrier":"dhl","event_id":"x1","tracking_no":"JD0001","code":"in_transit","at":"2026-01-03T10:00:00Z"}') $$,
                 'OL403', 'this login posts events for carrier ups only', 'a carrier''s login posts for its own carrier only');
SELECT throws_ok(format($$ SELECT pg_temp.ev('upsbot', '{"carrier":"ups","event_id":"x1","shipment":%s,"code":"in_transit","at":"2026-01-03T10:00:00Z"}') $$, test.id('s1')),
                 'OL404', NULL, 'and sees no other carrier''s shipment');
SELECT throws_ok($$ SELECT pg_temp.ev('rita', '{"carrier":"dhl","event_id":"x1","tracking_no":"JD0001","code":"in_transit","at":"2026-01-03T10:00:00Z"}') $$,
                 'OL403', NULL, 'a sales rep may not post tracking events');
SELECT lives_ok($$ SELECT pg_temp.ev('lou', '{"carrier":"dhl","event_id":"l1","tracking_no":"JD0001","code":"in_transit","at":"2026-01-03T11:00:00Z"}') $$,
                'logistics staff (not bound to a carrier) may post for any carrier');
SELECT test.snapshot(ARRAY['orderly.tracking_events', 'orderly.audit_log', 'orderly.shipments']);
SELECT throws_ok($$ SELECT pg_temp.ev('dhlbot', '{"carrier":"dhl","event_id":"x2","tracking_no":"JD0001","code":"in_transit","at":"2026-01-03T10:00:00Z","colour":"red"}') $$,
                 'OL400', NULL, 'an unknown argument is refused');
SELECT throws_ok($$ SELECT pg_temp.ev('dhlbot', '{"carrier":"dhl","event_id":"x2","tracking_no":"JD0001","code":"lost","at":"2026-01-03T10:00:00Z"}') $$,
                 'OL400', NULL, 'an unknown code is refused');
SELECT throws_ok($$ SELECT pg_temp.ev('dhlbot', '{"carrier":"dhl","event_id":"x2","tracking_no":"JD0001","code":"in_transit","at":"2026-01-03T10:00:00Z","lat":50}') $$,
                 'OL400', 'lat and lon come together', 'lat without lon is refused');
SELECT throws_ok($$ SELECT pg_temp.ev('dhlbot', '{"carrier":"dhl","event_id":"x2","tracking_no":"JD0001","code":"in_transit","at":"2026-01-03T10:00:00Z","lat":95,"lon":10}') $$,
                 'OL400', 'lat must be between -90 and 90', 'a latitude out of range is refused');
SELECT throws_ok($$ SELECT pg_temp.ev('dhlbot', '{"carrier":"dhl","event_id":"x2","tracking_no":"JD0001","code":"in_transit","at":"2099-01-03T10:00:00Z"}') $$,
                 'OL400', 'at cannot be in the future', 'an event from the future is refused');
SELECT throws_ok($$ SELECT pg_temp.ev('dhlbot', '{"carrier":"dhl","event_id":"x2","tracking_no":"JD0001","code":"delivered","at":"2025-12-31T23:00:00Z"}') $$,
                 'OL400', 'at cannot be before the shipment left (2026-01-01T00:00:00.000000Z)', 'delivered before it left is refused, as SHIPMENT DELIVERED refuses it');
SELECT throws_ok($$ SELECT pg_temp.ev('dhlbot', '{"carrier":"dhl","event_id":"x2","tracking_no":"JD0001","code":"in_transit","at":"1900-01-01T00:00:00Z"}') $$,
                 'OL400', 'at is more than a day before the shipment left (2026-01-01T00:00:00.000000Z)', 'so is an event from long before it left');
SELECT throws_ok($$ SELECT pg_temp.ev('dhlbot', '{"carrier":"dhl","event_id":"x2","tracking_no":"JD0001","code":"in_transit","at":"2026-01-03T10:00:00Z","eta":"9999-12-31T00:00:00Z"}') $$,
                 'OL400', 'eta is more than a year after the event (at)', 'an ETA years ahead is a placeholder, refused');
SELECT throws_ok($$ SELECT pg_temp.ev('dhlbot', '{"carrier":"dhl","event_id":"x2","tracking_no":"JD0001","code":"in_transit","at":"2026-01-03T10:00:00Z","eta":"1999-01-01T00:00:00Z"}') $$,
                 'OL400', 'eta is more than a day before the event (at)', 'an ETA (more than a day) before the event is refused');
SELECT throws_ok(format($$ SELECT pg_temp.ev('dhlbot', '{"carrier":"dhl","event_id":"x2","tracking_no":"JD0001","shipment":%s,"code":"in_transit","at":"2026-01-03T10:00:00Z"}') $$, test.id('s1')),
                 'OL400', 'give exactly one of shipment and tracking_no', 'shipment and tracking_no together are refused');
SELECT throws_ok($$ SELECT pg_temp.ev('dhlbot', '{"carrier":"dhl","event_id":"x2","tracking_no":"JD0001","code":"in_transit","at":"2026-01-03T10:00:00Z","signed_by":"Bo"}') $$,
                 'OL400', 'signed_by belongs to a delivered event', 'signed_by on another code is refused');
SELECT ok(test.unchanged(), 'refused events change nothing');

-- Trouble notifies logistics and the creator
SELECT pg_temp.ev('dhlbot', '{"carrier":"dhl","event_id":"e4","tracking_no":"JD0001","code":"failed_attempt","at":"2026-01-04T09:00:00Z","note":"nobody home"}');
SELECT is((SELECT array_agg(coalesce(recipient_role, orderly.username_of(recipient_user_id)) ORDER BY 1)
           FROM orderly.notifications WHERE kind = 'shipment.exception' AND (payload ->> 'shipment')::bigint = test.id('s1')),
          ARRAY['logistics', 'rita'], 'a failed attempt notifies logistics and the order''s creator');
SELECT pg_temp.ev('dhlbot', '{"carrier":"dhl","event_id":"e0","tracking_no":"JD0001","code":"exception","at":"2026-01-01T09:00:00Z"}');
SELECT is((SELECT count(*) FROM orderly.notifications WHERE kind = 'shipment.exception' AND (payload ->> 'shipment')::bigint = test.id('s1')),
          2::bigint, 'an old exception arriving late notifies nobody');

-- Delivered drives the order
SELECT is(pg_temp.ev('dhlbot', '{"carrier":"dhl","event_id":"e5","tracking_no":"JD0001","code":"delivered","at":"2026-01-05T10:00:00Z","signed_by":"B. Baker"}') ->> 'shipment_status',
          'delivered', 'a delivered event delivers the shipment');
SELECT is((SELECT status || ' ' || signed_by || ' ' || orderly.json_time(delivered_at) FROM orderly.shipments WHERE id = test.id('s1')),
          'delivered B. Baker 2026-01-05T10:00:00.000000Z', 'at its time, signed by whom it says');
SELECT is((SELECT status FROM orderly.orders WHERE id = test.id('o1')), 'delivered', 'and the order, all of it delivered, is delivered');
SELECT pg_temp.ev('dhlbot', '{"carrier":"dhl","event_id":"e2b","tracking_no":"JD0001","code":"out_for_delivery","at":"2026-01-05T07:00:00Z"}');
SELECT is((SELECT status || ' ' || tracking_code FROM orderly.shipments WHERE id = test.id('s1')), 'delivered delivered',
          'an earlier event arriving after the delivery moves nothing back');
SELECT is((SELECT actor_kind || ' ' || orderly.username_of(actor_user_id) FROM orderly.audit_log
           WHERE action = 'shipment.tracking' AND after ->> 'event_id' = 'e5'), 'user dhlbot', 'each event is audited with its actor');
SELECT is(pg_temp.ev('dhlbot', '{"carrier":"dhl","event_id":"e5b","tracking_no":"JD0001","code":"delivered","at":"2026-01-05T11:00:00Z","signed_by":"C. Other"}') ->> 'applied',
          'false', 'a second delivered is stored, not applied');
SELECT is((SELECT signed_by || ' ' || orderly.json_time(delivered_at) || ' ' || orderly.json_time(tracking_at) FROM orderly.shipments WHERE id = test.id('s1')),
          'B. Baker 2026-01-05T10:00:00.000000Z 2026-01-05T10:00:00.000000Z', 'the first delivery keeps its signer and time, and the tracking shows no other');

-- The webhook ------------------------------------------------------------------------------------

INSERT INTO ids VALUES ('s2', pg_temp.shipped(test.id('acme'), 'dhl', 'JD0002'));
UPDATE orderly.shipments SET shipped_at = '2026-01-01T00:00:00Z' WHERE id = test.id('s2');
INSERT INTO secrets VALUES ('dhl1', admin.rotate_carrier_secret('dhl'));
SELECT ok((SELECT position(convert_to((SELECT secret FROM secrets WHERE name = 'dhl1'), 'UTF8') IN webhook_secret) = 0
           FROM orderly.carriers WHERE code = 'dhl'), 'the secret is stored encrypted, not as itself');
SELECT is((SELECT after FROM orderly.audit_log WHERE action = 'carrier.secret_rotated' ORDER BY id DESC LIMIT 1)::text,
          '{"previous_valid_until": null}', 'its rotation is audited without the secret');
SELECT is((SELECT orderly.decrypt_secret(webhook_secret) FROM orderly.carriers WHERE code = 'dhl'),
          (SELECT secret FROM secrets WHERE name = 'dhl1'), 'and decrypts to it');

SELECT test.snapshot(ARRAY['orderly.tracking_events', 'orderly.audit_log', 'orderly.shipments']);
SELECT is(api.carrier_webhook('dhl', '{"event_id":"w1","tracking_no":"JD0002","code":"in_transit","at":"2026-01-03T10:00:00Z"}',
                              'sha256=00')::jsonb,
          '{"status": 401, "body": {"error": "bad signature"}}', 'a bad signature is 401');
SELECT is(pg_temp.hook('dhl', '{"event_id":"w1","tracking_no":"JD0002","code":"in_transit","at":"2026-01-03T10:00:00Z"}', 'not-the-secret') ->> 'status',
          '401', 'so is one made with another secret');
SELECT is(pg_temp.hook('nope', '{"event_id":"w1"}', 'x') ->> 'status', '401', 'and one for an unknown carrier: the same answer');
SELECT ok(test.unchanged(), '401 changes nothing');
SELECT is(pg_temp.hook('dhl', 'not json', (SELECT secret FROM secrets WHERE name = 'dhl1')),
          '{"status": 400, "body": {"error": "the body is not JSON"}}', 'a body that is not JSON is 400');
SELECT is(pg_temp.hook('dhl', '{"event_id":"w1","tracking_no":"JD0002","code":"in_transit","at":"2026-01-03T10:00:00Z","speed":3}',
                       (SELECT secret FROM secrets WHERE name = 'dhl1')) -> 'body' ->> 'field',
          'speed', 'an unknown field is 400 naming it');
SELECT is(pg_temp.hook('dhl', '{"event_id":"w1","tracking_no":"JD0002","code":"in_transit","at":"soon"}',
                       (SELECT secret FROM secrets WHERE name = 'dhl1')) -> 'body' ->> 'field',
          'at', 'a malformed field is 400 naming it');
SELECT is(pg_temp.hook('dhl', '{"event_id":"w1","tracking_no":"JD0002","code":"in_transit","at":"2026-01-03T10:00:00Z","note":"a\u0000b"}',
                       (SELECT secret FROM secrets WHERE name = 'dhl1')),
          '{"status": 400, "body": {"error": "the body holds \\u0000, which no field may"}}', 'a NUL character is 400');
SELECT is(pg_temp.hook('dhl', '{"event_id":"w1","tracking_no":"JD0002","code":"in_transit","at":"2026-01-03T10:00:00+99:00"}',
                       (SELECT secret FROM secrets WHERE name = 'dhl1')) ->> 'status',
          '400', 'a time offset PostgreSQL cannot store is 400');
SELECT is(pg_temp.hook('dhl', '{"event_id":"w1","tracking_no":"JD0002","code":"in_transit","at":"2026-01-03T10:00:00Z","tracking_no":"JD0003"}',
                       (SELECT secret FROM secrets WHERE name = 'dhl1')) -> 'body',
          '{"error": "field tracking_no is given twice", "field": "tracking_no"}', 'a field given twice is 400 naming it');
SELECT is(pg_temp.hook('dhl', '{"event_id":"w1","tracking_no":"JD0002","code":"in_transit","at":"2026-01-03T10:00:00Z","lo\u0000c":1}',
                       (SELECT secret FROM secrets WHERE name = 'dhl1')) ->> 'status',
          '400', 'a NUL character in a key is 400 too');
SELECT is(pg_temp.hook('dhl', '{"event_id":"w1","tracking_no":"JD0002","code":"in_transit","at":"2026-01-03T10:00:00Z","note":'
                              || repeat('[', 100000) || repeat(']', 100000) || '}',
                       (SELECT secret FROM secrets WHERE name = 'dhl1')),
          '{"status": 400, "body": {"error": "the body is nested too deeply"}}', 'nesting deeper than the parser''s stack is 400, not 500');
SELECT is(pg_temp.hook('dhl', '{"event_id":"w1","tracking_no":"JD0002","code":"in_transit","at":"2026-01-03T10:00:00Z","note":"a\u001b[2Jb"}',
                       (SELECT secret FROM secrets WHERE name = 'dhl1')),
          '{"status": 400, "body": {"error": "note may not hold control characters (line breaks and tab excepted), line separators or bidirectional overrides", "field": "note"}}',
          'an escape sequence in a note is 400 (the protocol refuses it in every request)');
SELECT is(pg_temp.hook('dhl', '{"event_id":"w1","tracking_no":"JD0002","code":"in_transit","at":"2026-01-03T10:00:00Z","location":"Hamburg \u202e"}',
                       (SELECT secret FROM secrets WHERE name = 'dhl1')) -> 'body',
          '{"error": "location may not hold control characters, line separators or bidirectional overrides", "field": "location"}',
          'a bidirectional override in a location is 400, said as such');
SELECT is(ARRAY[orderly.hides_text(E'line 1\nline 2\r\n\tend'), orderly.hides_text(E'\u05e9\u05dc\u200f'), orderly.hides_text(E'a\u0085b'),
                orderly.hides_text(E'a\u2066b'), orderly.hides_text(E'a\u007fb'), orderly.hides_text(E'a\u2028b')],
          ARRAY[false, false, true, true, true, true], 'line breaks, tab and direction marks are text; C1, DEL and isolates are not');
SELECT is(pg_temp.hook('dhl', '{"event_id":"w1","tracking_no":"NOPE1","code":"in_transit","at":"2026-01-03T10:00:00Z"}',
                       (SELECT secret FROM secrets WHERE name = 'dhl1')) ->> 'status',
          '404', 'an unknown shipment is 404');
SELECT ok(test.unchanged(), 'refused bodies change nothing');
SELECT is(pg_temp.hook('dhl', '{"event_id":"w1","tracking_no":"JD0002","code":"in_transit","at":"2026-01-03T10:00:00Z","lat":53.1,"lon":8.8}',
                       (SELECT secret FROM secrets WHERE name = 'dhl1')) -> 'body' ->> 'applied',
          'true', 'a signed event is 200 and applied');
SELECT is(pg_temp.hook('dhl', '{"event_id":"w1","tracking_no":"JD0002","code":"in_transit","at":"2026-01-03T10:00:00Z","lat":53.1,"lon":8.8}',
                       (SELECT secret FROM secrets WHERE name = 'dhl1')),
          jsonb_build_object('status', 200, 'body', (SELECT reply::jsonb FROM orderly.tracking_events WHERE carrier = 'dhl' AND event_id = 'w1')),
          'sent again: 200 with the same reply');
SELECT is((SELECT actor_kind FROM orderly.audit_log WHERE action = 'shipment.tracking' AND after ->> 'event_id' = 'w1'),
          'carrier', 'audited as the carrier''s own');
SELECT admin.set_carrier('dhl', 'DHL', active => false);
SELECT is(pg_temp.hook('dhl', '{"event_id":"w1b","tracking_no":"JD0002","code":"in_transit","at":"2026-01-03T10:30:00Z"}',
                       (SELECT secret FROM secrets WHERE name = 'dhl1')) ->> 'status',
          '200', 'a carrier made inactive (no new shipments) still tracks its parcels on the way');
SELECT admin.set_carrier('dhl', 'DHL', active => true);
SELECT is(pg_temp.ev('dhlbot', '{"carrier":"dhl","event_id":"w1","tracking_no":"JD0002","code":"in_transit","at":"2026-01-03T10:00:00Z","lat":53.1,"lon":8.8}') ->> 'applied',
          'true', 'the same event by the protocol is a replay of the webhook''s (one event, one reply)');
INSERT INTO secrets VALUES ('dhl2', admin.rotate_carrier_secret('dhl'));
SELECT is(pg_temp.hook('dhl', '{"event_id":"w2","tracking_no":"JD0002","code":"in_transit","at":"2026-01-03T11:00:00Z","lat":52.5,"lon":9.9}',
                       (SELECT secret FROM secrets WHERE name = 'dhl1')) ->> 'status',
          '200', 'after a rotation the previous secret works during its grace');
INSERT INTO secrets VALUES ('dhl3', admin.rotate_carrier_secret('dhl', interval '0'));
SELECT is(pg_temp.hook('dhl', '{"event_id":"w3","tracking_no":"JD0002","code":"in_transit","at":"2026-01-03T12:00:00Z"}',
                       (SELECT secret FROM secrets WHERE name = 'dhl2')) ->> 'status',
          '401', 'a rotation with no grace revokes the previous secret at once');
SELECT throws_ok(format($$ SELECT test.call('shipment_delivered', 'lou', '{"id":%s,"at":"2026-01-03T10:30:00Z"}') $$, test.id('s2')), 'OL400',
                 'at cannot be before the carrier''s latest event (in_transit at 2026-01-03T11:00:00.000000Z): a parcel is delivered after it',
                 'SHIPMENT DELIVERED before the carrier''s latest scan is refused');
SELECT is(pg_temp.hook('dhl', '{"event_id":"w4","tracking_no":"JD0002","code":"delivered","at":"2026-01-03T10:50:00Z","signed_by":"D. Door"}',
                       (SELECT secret FROM secrets WHERE name = 'dhl3')) -> 'body' ->> 'shipment_status',
          'delivered', 'a delivered event by the webhook delivers the shipment');
SELECT is((SELECT status || ' ' || tracking_code || ' ' || orderly.json_time(tracking_at) || ' ' || orderly.json_time(delivered_at)
           FROM orderly.shipments WHERE id = test.id('s2')),
          'delivered delivered 2026-01-03T11:00:00.000000Z 2026-01-03T11:00:00.000000Z',
          'dated before the latest scan (in transit at 11:00), it delivers at the scan''s time, and the tracking shows it');
SELECT is((SELECT applied FROM orderly.tracking_events WHERE event_id = 'w4'), true, 'the event that delivered is applied');
SELECT is((SELECT string_agg(a.actor_kind || ' ' || orderly.audit_actor(a) || ' ' || (a.after ->> 'status'), ', ' ORDER BY a.id) FROM orderly.audit_log a
           WHERE a.action = 'order.status' AND a.entity_id = (SELECT order_id::text FROM orderly.shipments WHERE id = test.id('s2'))
             AND a.after ->> 'status' = 'delivered'),
          'carrier carrier:dhl delivered', 'and the order''s status change it causes is audited as the carrier''s, as the event is');

-- The route --------------------------------------------------------------------------------------

SELECT is(test.call('shipment_route', 'buyer', jsonb_build_object('id', test.id('s1'))) -> 'features' -> 0 -> 'geometry',
          '{"type": "LineString", "coordinates": [[9.990000, 53.550000], [9.730000, 52.370000], [13.405000, 52.520000]]}'::jsonb,
          'SHIPMENT ROUTE: a LineString through the positions in time order, [lon, lat]');
SELECT is((SELECT array_agg(f -> 'properties' ->> 'code' ORDER BY n)
           FROM jsonb_array_elements(test.call('shipment_route', 'buyer', jsonb_build_object('id', test.id('s1'))) -> 'features')
                WITH ORDINALITY AS x(f, n) WHERE f -> 'geometry' ->> 'type' = 'Point'),
          ARRAY['picked_up', 'in_transit', 'in_transit'], 'and a Point per located event, in time order');
SELECT throws_ok(format($$ SELECT test.call('shipment_route', 'other', '{"id":%s}') $$, test.id('s1')), 'OL404', NULL,
                 'another customer''s route is not found');

-- The ETA ----------------------------------------------------------------------------------------

INSERT INTO ids VALUES ('s3', pg_temp.shipped(test.id('acme'), 'ups', 'UP0003'));
SELECT is((SELECT eta_source FROM orderly.shipment_eta(pg_temp.shipment(test.id('s3')))), NULL, 'no carrier ETA, history or default: no ETA');
SELECT admin.set_transit_default('ups', interval '2 days');
SELECT throws_ok($$ SELECT admin.set_transit_default('ups', interval '2 days', E'svc\uFEFF') $$, 'OL400',
                 'service must be one line of at most 100 characters, without characters that hide text',
                 'a transit default''s service is refused with a character that hides text');
SELECT is((SELECT eta_source || ' ' || (eta - (pg_temp.shipment(test.id('s3'))).shipped_at)::text
           FROM orderly.shipment_eta(pg_temp.shipment(test.id('s3')))), 'default 2 days', 'the carrier''s configured transit time');
SELECT admin.set_transit_default('ups', interval '1 day', 'express');
SELECT admin.set_transit_default('ups', NULL, 'nosuch');
SELECT is((SELECT count(*)::integer FROM orderly.audit_log WHERE action = 'carrier.transit_default' AND entity_id = 'ups/nosuch'), 0,
          'removing a transit default that is not there changes nothing and audits nothing');
UPDATE orderly.shipments SET service = 'EXPRESS' WHERE id = test.id('s3');
SELECT is((SELECT eta_source || ' ' || (eta - (pg_temp.shipment(test.id('s3'))).shipped_at)::text
           FROM orderly.shipment_eta(pg_temp.shipment(test.id('s3')))), 'default 1 day',
          'a service''s own transit time, whatever the case it is written in');
UPDATE orderly.shipments SET service = NULL WHERE id = test.id('s3');
-- Three past UPS deliveries to Hamburg: 1, 3 and 4 days.
INSERT INTO orderly.shipments (order_id, customer_id, carrier, status, shipped_at, delivered_at)
SELECT test.id('o1'), test.id('acme'), 'ups', 'delivered', now() - d * interval '1 day' - interval '10 days', now() - interval '10 days'
FROM unnest(ARRAY[1, 3, 4]) d;
SELECT is((SELECT eta_source || ' ' || (eta - (pg_temp.shipment(test.id('s3'))).shipped_at)::text || ' ' || (basis ->> 'deliveries')
           FROM orderly.shipment_eta(pg_temp.shipment(test.id('s3')))), 'history 3 days 3',
          'with enough deliveries on the lane: the median of their transit times');

-- Delivered by hand (SHIPMENT DELIVERED at=), then the carrier's older in_transit arrives: kept, not shown.
INSERT INTO ids VALUES ('s4', pg_temp.shipped(test.id('acme'), 'dhl', 'JD0004'));
UPDATE orderly.shipments SET shipped_at = '2026-01-01T00:00:00Z' WHERE id = test.id('s4');
SELECT test.call('shipment_delivered', 'lou', jsonb_build_object('id', test.id('s4'), 'signed_by', 'J. Doe', 'at', '2026-01-04T12:00:00Z'))
       IS NOT NULL;
SELECT is(pg_temp.ev('dhlbot', '{"carrier":"dhl","event_id":"d4","tracking_no":"JD0004","code":"in_transit","at":"2026-01-03T09:00:00Z"}')
          ->> 'applied', 'false', 'an event from before the delivery arrives late: stored, not applied');
SELECT is((SELECT status || ' ' || coalesce(tracking_code, '-') FROM orderly.shipments WHERE id = test.id('s4')), 'delivered -',
          'the delivered shipment does not show in transit');
SELECT is(pg_temp.ev('dhlbot', '{"carrier":"dhl","event_id":"d6","tracking_no":"JD0004","code":"in_transit","at":"2026-01-09T09:00:00Z"}')
          ->> 'applied', 'false', 'nor does an in-transit scan dated after the delivery (stored, not applied)');
SELECT is((SELECT status || ' ' || coalesce(tracking_code, '-') FROM orderly.shipments WHERE id = test.id('s4')), 'delivered -',
          'the delivered shipment still shows delivered');

-- Bound to another carrier, a login forgets the replies it kept (a retry would hand back what it
-- posted for the carrier before).
SELECT pg_temp.ev('dhlbot', '{"carrier":"dhl","event_id":"k1","tracking_no":"JD0004","code":"in_transit","at":"2026-01-04T09:00:00Z","idempotency_key":"kk-1"}') IS NOT NULL;
SELECT admin.set_user_carrier('dhlbot', 'ups');
SELECT is((SELECT count(*) FROM orderly.idempotency_keys WHERE user_id = test.uid('dhlbot')), 0::bigint,
          'rebound to ups: dhlbot''s kept replies are gone');
SELECT throws_ok($$ SELECT pg_temp.ev('dhlbot', '{"carrier":"dhl","event_id":"k1","tracking_no":"JD0004","code":"in_transit","at":"2026-01-04T09:00:00Z","idempotency_key":"kk-1"}') $$,
                 'OL403', 'this login posts events for carrier ups only', 'and the same request again is refused, not replayed');

SELECT * FROM finish();
ROLLBACK;
