-- Notifications: api.notify, admin.notify, INBOX / INBOX ACK, the server's catch-up feed, grants.
-- (NOTIFY is delivered only at commit, so it is not observable inside this rolled-back test.)
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT plan(162);

DO $$
BEGIN
    PERFORM admin.create_user('ann', 'ann-secret-1', ARRAY['sales_rep']);
    PERFORM admin.create_user('bob', 'bob-secret-1', ARRAY['sales_rep']);
    PERFORM admin.create_user('cid', 'cid-secret-1', ARRAY['warehouse']);
    PERFORM admin.create_user('nora', 'nora-secret-1', '{}');        -- no role: no inbox.read
    PERFORM admin.create_user('logistics', 'logi-secret-1', ARRAY['customer']);  -- named like a role
END
$$;

-- "Nothing changed": no notification, read mark or audit row since the last snapshot.
SELECT test.snapshot(ARRAY['orderly.notifications', 'orderly.notification_reads', 'orderly.audit_log']);
-- INBOX as the server calls it: the rows as jsonb, in the order returned.
CREATE FUNCTION pg_temp.inbox(who text, args jsonb DEFAULT '{}') RETURNS jsonb[] LANGUAGE sql AS $$
    SELECT coalesce(array_agg(r::jsonb ORDER BY o), '{}') FROM api.inbox(test.uid(who), args) WITH ORDINALITY AS t(r, o)
$$;
CREATE FUNCTION pg_temp.inbox_ids(who text, args jsonb DEFAULT '{}') RETURNS bigint[] LANGUAGE sql AS $$
    SELECT coalesce(array_agg((r::jsonb ->> 'id')::bigint ORDER BY o), '{}')
    FROM api.inbox(test.uid(who), args) WITH ORDINALITY AS t(r, o)
$$;
CREATE FUNCTION pg_temp.ack(who text, args jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT r::jsonb FROM api.inbox_ack(test.uid(who), args) AS r
$$;
CREATE TEMP TABLE ids (name text PRIMARY KEY, id bigint);

-- Structure ------------------------------------------------------------------------------------

SELECT has_table('orderly', 'notifications', 'orderly.notifications exists');
SELECT has_table('orderly', 'notification_reads', 'orderly.notification_reads exists');
SELECT col_is_pk('orderly', 'notifications', 'id', 'notifications: id is the key (catch-up by id)');
SELECT col_is_pk('orderly', 'notification_reads', ARRAY['notification_id', 'user_id'], 'read marks: one per user');
SELECT has_index('orderly', 'notifications', 'notifications_recipient_user_idx', ARRAY['recipient_user_id', 'id'],
                 'index for a user''s inbox');
SELECT has_index('orderly', 'notifications', 'notifications_recipient_role_idx', ARRAY['recipient_role', 'id'],
                 'index for a role''s inbox');
SELECT fk_ok('orderly', 'notifications', 'recipient_user_id', 'orderly', 'users', 'id');
SELECT fk_ok('orderly', 'notifications', 'recipient_role', 'orderly', 'roles', 'name');
SELECT throws_ok($$INSERT INTO orderly.notifications (recipient_user_id, recipient_role, kind)
                   SELECT id, 'sales_rep', 'x.y' FROM orderly.users WHERE username = 'ann'$$, '23514', NULL,
                 'the table itself refuses two recipients');
SELECT throws_ok($$INSERT INTO orderly.notifications (recipient_role, kind) VALUES ('sales_rep', 'Bad Kind')$$, '23514', NULL,
                 'the table itself refuses a malformed kind');

-- api.notify -------------------------------------------------------------------------------------

SELECT test.snapshot();
INSERT INTO ids SELECT 'ann1', api.notify(test.uid('ann'), NULL, 'order.shipped', '{"order_id": 1042}', test.uid('bob'));
SELECT ok((SELECT id FROM ids WHERE name = 'ann1') > 0, 'notify to a user returns the new id');
SELECT is((SELECT jsonb_build_object('u', recipient_user_id, 'r', recipient_role, 'k', kind, 'p', payload, 'by', created_by)
           FROM orderly.notifications WHERE id = (SELECT id FROM ids WHERE name = 'ann1')),
          jsonb_build_object('u', test.uid('ann'), 'r', NULL, 'k', 'order.shipped', 'p', '{"order_id": 1042}'::jsonb,
                             'by', session_user),
          'the row is stored as given, with the database login');
SELECT is((test.last_audit()).action, 'notification.create', 'audit: notification.create');
SELECT is((test.last_audit()).entity_id, (SELECT id::text FROM ids WHERE name = 'ann1'), 'audit: entity id');
SELECT is((test.last_audit()).after,
          jsonb_build_object('recipient_user_id', test.uid('ann'), 'recipient_role', NULL, 'kind', 'order.shipped',
                             'payload', '{"order_id": 1042}'::jsonb), 'audit: after');
SELECT is((test.last_audit()).actor_user_id, test.uid('bob'), 'audit: the user whose command raised it');

INSERT INTO ids SELECT 'rep1', api.notify(NULL, 'sales_rep', 'approval.requested', '{"order_id": 7}', test.uid('bob'));
SELECT ok((SELECT id FROM ids WHERE name = 'rep1') > (SELECT id FROM ids WHERE name = 'ann1'), 'notify to a role; ids grow');
INSERT INTO ids SELECT 'cid1', api.notify(test.uid('cid'), NULL, 'stock.low', NULL, test.uid('bob'));
SELECT is((SELECT payload FROM orderly.notifications WHERE id = (SELECT id FROM ids WHERE name = 'cid1')), '{}'::jsonb,
          'a null payload is stored as {}');
INSERT INTO ids SELECT 'wh1', api.notify(NULL, 'warehouse', 'delivery.delay_warning', '{"days": 2}', test.uid('bob'));
INSERT INTO ids SELECT 'rep2', api.notify(NULL, 'sales_rep', 'approval.reminder_2', '{"order_id": 7}', test.uid('bob'));
SELECT is((SELECT count(*)::int FROM orderly.audit_log
           WHERE action = 'notification.create' AND entity_id IN (SELECT id::text FROM ids)), 5, 'every notify is audited');

SELECT test.snapshot();
SELECT throws_ok($$SELECT api.notify(NULL, NULL, 'x.y', '{}', NULL)$$, 'OL400',
                 'a notification needs exactly one recipient: a user or a role', 'notify: no recipient');
SELECT throws_ok(format('SELECT api.notify(%s, %L, %L, %L, NULL)', test.uid('ann'), 'sales_rep', 'x.y', '{}'), 'OL400',
                 'a notification needs exactly one recipient: a user or a role', 'notify: two recipients');
SELECT throws_ok($$SELECT api.notify(-1, NULL, 'x.y', '{}', NULL)$$, 'OL404', 'unknown user', 'notify: unknown user');
SELECT throws_ok($$SELECT api.notify(NULL, 'wizard', 'x.y', '{}', NULL)$$, 'OL404', 'unknown role "wizard"', 'notify: unknown role');
SELECT throws_ok(format('SELECT api.notify(%s, NULL, %L, %L, NULL)', test.uid('ann'), k, '{}'), 'OL400',
                 'invalid notification kind: use lowercase words joined by dots, like "approval.requested"',
                 format('notify: kind %s refused', coalesce(quote_literal(k), 'NULL')))
FROM unnest(ARRAY['approval', 'Approval.Requested', 'approval..requested', 'approval.requested now', '1st.kind',
                  'approval.', NULL, 'a.' || repeat('b', 63)]) AS k;
SELECT throws_ok(format('SELECT api.notify(%s, NULL, %L, %L, NULL)', test.uid('ann'), 'x.y', '[1, 2]'), 'OL400',
                 'payload must be a JSON object', 'notify: payload must be an object');
SELECT throws_ok(format('SELECT api.notify(%s, NULL, %L, %L, NULL)', test.uid('ann'), 'x.y', '"text"'), 'OL400',
                 'payload must be a JSON object', 'notify: a string payload');
SELECT throws_ok(format('SELECT api.notify(%s, NULL, %L, %L, NULL)', test.uid('ann'), 'x.y',
                        jsonb_build_object('m', repeat('x', 32768))), 'OL400',
                 'payload must be at most 32768 bytes', 'notify: payload too large');
SELECT ok(test.unchanged(), 'failed notify calls changed nothing');
SELECT lives_ok(format('SELECT api.notify(%s, NULL, %L, %L, %s)', test.uid('cid'), 'a.b_2.c3', '{}', test.uid('bob')),
                'a kind of several dotted words is accepted');
INSERT INTO ids SELECT 'cid2', max(id) FROM orderly.notifications;

-- INBOX: what each user sees -----------------------------------------------------------------------

SELECT is(pg_temp.inbox_ids('ann'),
          ARRAY(SELECT id FROM ids WHERE name IN ('ann1', 'rep1', 'rep2') ORDER BY id DESC),
          'ann sees her own and her role''s notifications, newest first');
SELECT is(pg_temp.inbox_ids('bob'), ARRAY(SELECT id FROM ids WHERE name IN ('rep1', 'rep2') ORDER BY id DESC),
          'bob sees only the role''s');
SELECT is(pg_temp.inbox_ids('cid'), ARRAY(SELECT id FROM ids WHERE name IN ('cid1', 'wh1', 'cid2') ORDER BY id DESC),
          'cid sees his and the warehouse''s, nothing of sales_rep');
SELECT is(pg_temp.inbox_ids('logistics'), '{}'::bigint[], 'a user with nothing addressed to them: no rows');

SELECT is((pg_temp.inbox('ann'))[3],
          jsonb_build_object('id', (SELECT id FROM ids WHERE name = 'ann1'), 'kind', 'order.shipped',
                             'payload', '{"order_id": 1042}'::jsonb,
                             'created_at', (SELECT orderly.json_time(created_at) FROM orderly.notifications n
                                            WHERE n.id = (SELECT id FROM ids WHERE name = 'ann1')),
                             'read', false, 'recipient', '{"user": "ann"}'::jsonb),
          'a user notification row: documented shape');
SELECT is((pg_temp.inbox('ann'))[1] - 'created_at',
          jsonb_build_object('id', (SELECT id FROM ids WHERE name = 'rep2'), 'kind', 'approval.reminder_2',
                             'payload', '{"order_id": 7}'::jsonb, 'read', false, 'recipient', '{"role": "sales_rep"}'::jsonb),
          'a role notification row: recipient is the role');
SELECT ok((SELECT bool_and(r::text !~ ' : ' AND r::text !~ E'\n') FROM api.inbox(test.uid('ann'), '{}') r),
          'rows are compact, one line each');
SET LOCAL TimeZone = 'America/New_York';
SELECT matches((pg_temp.inbox('ann'))[1] ->> 'created_at', '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$',
               'created_at is ISO 8601 in UTC whatever the session time zone');
SELECT is(((pg_temp.inbox('ann'))[1] ->> 'created_at')::timestamptz,
          (SELECT created_at FROM orderly.notifications WHERE id = (SELECT id FROM ids WHERE name = 'rep2')),
          'and it is the stored instant');
RESET TimeZone;

-- INBOX arguments ------------------------------------------------------------------------------------

SELECT is(pg_temp.inbox_ids('ann', '{"limit": 1}'), ARRAY[(SELECT id FROM ids WHERE name = 'rep2')], 'limit=1: the newest');
SELECT is(pg_temp.inbox_ids('ann', '{"limit": "2"}'), ARRAY(SELECT id FROM ids WHERE name IN ('rep1', 'rep2') ORDER BY id DESC),
          'limit as a string');
SELECT is(cardinality(pg_temp.inbox_ids('ann', '{"limit": 500}')), 3, 'limit=500 is allowed');
SELECT throws_ok(format('SELECT * FROM api.inbox(%s, %L)', test.uid('ann'), '{"limit": 0}'), 'OL400',
                 'limit must be between 1 and 500', 'limit=0');
SELECT throws_ok(format('SELECT * FROM api.inbox(%s, %L)', test.uid('ann'), '{"limit": 501}'), 'OL400',
                 'limit must be between 1 and 500', 'limit=501');
SELECT throws_ok(format('SELECT * FROM api.inbox(%s, %L)', test.uid('ann'), '{"limit": "many"}'), 'OL400',
                 'limit must be an integer', 'limit=many');
SELECT is(pg_temp.inbox_ids('ann', jsonb_build_object('before', (SELECT id FROM ids WHERE name = 'rep2'))),
          ARRAY(SELECT id FROM ids WHERE name IN ('ann1', 'rep1') ORDER BY id DESC), 'before: only older ids');
SELECT is(pg_temp.inbox_ids('ann', jsonb_build_object('before', (SELECT id FROM ids WHERE name = 'rep2'), 'limit', 1)),
          ARRAY[(SELECT id FROM ids WHERE name = 'rep1')], 'before with limit: the next page');
SELECT is(pg_temp.inbox_ids('ann', jsonb_build_object('before', (SELECT id FROM ids WHERE name = 'ann1'))), '{}'::bigint[],
          'before the oldest: nothing');
SELECT throws_ok(format('SELECT * FROM api.inbox(%s, %L)', test.uid('ann'), '{"before": "x"}'), 'OL400',
                 'before must be an integer', 'before must be an id');
SELECT throws_ok(format('SELECT * FROM api.inbox(%s, %L)', test.uid('ann'), '{"unread": "perhaps"}'), 'OL400',
                 'unread must be true or false', 'unread must be a boolean');
SELECT throws_ok(format('SELECT * FROM api.inbox(%s, %L)', test.uid('nora'), '{}'), 'OL403',
                 'permission denied: inbox.read', 'a user without inbox.read: OL403');
SELECT throws_ok($$SELECT * FROM api.inbox(-1, '{}')$$, 'OL401', NULL, 'unknown actor: OL401');
SELECT lives_ok(format('SELECT * FROM api.inbox(%s, NULL)', test.uid('ann')), 'null arguments mean defaults');

-- INBOX ACK --------------------------------------------------------------------------------------

SELECT test.snapshot();
SELECT is(pg_temp.ack('ann', jsonb_build_object('id', (SELECT id FROM ids WHERE name = 'rep1'))), '{"acknowledged": 1}',
          'ack a role notification by id');
SELECT is((test.last_audit()).action, 'notification.ack', 'audit: notification.ack');
SELECT is((test.last_audit()).actor_user_id, test.uid('ann'), 'audit: the actor');
SELECT is((test.last_audit()).after, '{"acknowledged": 1}'::jsonb, 'audit: how many');
SELECT is((SELECT r ->> 'read' FROM unnest(pg_temp.inbox('ann')) r WHERE (r ->> 'id')::bigint = (SELECT id FROM ids WHERE name = 'rep1')),
          'true', 'ann: read');
SELECT is((SELECT r ->> 'read' FROM unnest(pg_temp.inbox('bob')) r WHERE (r ->> 'id')::bigint = (SELECT id FROM ids WHERE name = 'rep1')),
          'false', 'bob, same role: still unread (reading is per user)');
SELECT is(pg_temp.inbox_ids('ann', '{"unread": true}'), ARRAY(SELECT id FROM ids WHERE name IN ('ann1', 'rep2') ORDER BY id DESC),
          'unread=true leaves out what ann read');
SELECT is(pg_temp.inbox_ids('ann', '{"unread": "false"}'), ARRAY(SELECT id FROM ids WHERE name IN ('ann1', 'rep1', 'rep2') ORDER BY id DESC),
          'unread=false: everything');
SELECT is(pg_temp.inbox_ids('ann', '{"unread": true, "limit": 1}'), ARRAY[(SELECT id FROM ids WHERE name = 'rep2')],
          'unread with a limit');
SELECT is(pg_temp.inbox_ids('ann', jsonb_build_object('unread', true, 'before', (SELECT id FROM ids WHERE name = 'rep2'))),
          ARRAY[(SELECT id FROM ids WHERE name = 'ann1')], 'unread with before skips the read one');

SELECT test.snapshot();
SELECT is(pg_temp.ack('ann', jsonb_build_object('id', (SELECT id::text FROM ids WHERE name = 'rep1'))), '{"acknowledged": 0}',
          'acknowledging again counts 0 (id given as a string)');
SELECT ok(test.unchanged(), 'and writes nothing, not even an audit row');
SELECT throws_ok(format('SELECT * FROM api.inbox_ack(%s, %L)', test.uid('ann'),
                        jsonb_build_object('id', (SELECT id FROM ids WHERE name = 'cid1'))), 'OL404',
                 'no such notification', 'someone else''s notification: OL404');
SELECT throws_ok(format('SELECT * FROM api.inbox_ack(%s, %L)', test.uid('ann'),
                        jsonb_build_object('id', (SELECT id FROM ids WHERE name = 'wh1'))), 'OL404',
                 'no such notification', 'another role''s notification: OL404');
SELECT throws_ok(format('SELECT * FROM api.inbox_ack(%s, %L)', test.uid('ann'), '{"id": 999999999}'), 'OL404',
                 'no such notification', 'a notification that does not exist: the same OL404');
SELECT throws_ok(format('SELECT * FROM api.inbox_ack(%s, %L)', test.uid('ann'), '{}'), 'OL400', 'id is required',
                 'ack without an id');
SELECT throws_ok(format('SELECT * FROM api.inbox_ack(%s, %L)', test.uid('ann'), '{"id": " "}'), 'OL400', 'id is required',
                 'ack with a blank id');
SELECT throws_ok(format('SELECT * FROM api.inbox_ack(%s, %L)', test.uid('ann'), '{"id": "some"}'), 'OL400',
                 'id must be a notification id or "all"', 'ack with a word other than all');
SELECT throws_ok(format('SELECT * FROM api.inbox_ack(%s, %L)', test.uid('ann'), '{"id": 1.5}'), 'OL400',
                 'id must be a notification id or "all"', 'ack with a fraction');
SELECT throws_ok(format('SELECT * FROM api.inbox_ack(%s, %L)', test.uid('ann'), '{"id": [1]}'), 'OL400',
                 'id must be a notification id or "all"', 'ack with an array');
SELECT throws_ok(format('SELECT * FROM api.inbox_ack(%s, %L)', test.uid('nora'), '{"id": "all"}'), 'OL403',
                 'permission denied: inbox.read', 'ack without inbox.read: OL403');
SELECT ok(test.unchanged(), 'failed acks changed nothing');

SELECT is(pg_temp.ack('bob', '{"id": "ALL"}'), '{"acknowledged": 2}', 'bob acknowledges all (any case)');
SELECT is((test.last_audit()).entity_id, 'all', 'audit: entity id "all"');
SELECT is(pg_temp.inbox_ids('bob', '{"unread": true}'), '{}'::bigint[], 'nothing unread left for bob');
SELECT is(pg_temp.inbox_ids('ann', '{"unread": true}'), ARRAY(SELECT id FROM ids WHERE name IN ('ann1', 'rep2') ORDER BY id DESC),
          'ann''s unread are untouched by bob');
SELECT is(pg_temp.ack('ann', '{"id": "all"}'), '{"acknowledged": 2}', 'ann: all counts only what was unread');
SELECT is(pg_temp.ack('ann', '{"id": "all"}'), '{"acknowledged": 0}', 'and a second time nothing');
SELECT is((SELECT count(*)::int FROM orderly.notification_reads WHERE user_id = test.uid('cid')), 0, 'cid read nothing');

-- Role membership decides visibility at read time ---------------------------------------------------

SELECT admin.grant_role('cid', 'sales_rep');
SELECT ok(pg_temp.inbox_ids('cid') @> ARRAY(SELECT id FROM ids WHERE name IN ('rep1', 'rep2')),
          'a newly granted role brings its earlier notifications');
SELECT is(pg_temp.ack('cid', jsonb_build_object('id', (SELECT id FROM ids WHERE name = 'rep1'))), '{"acknowledged": 1}',
          'and they can be acknowledged');
SELECT admin.grant_role('ann', 'customer_service');  -- still a role: inbox.read stays
SELECT admin.revoke_role('ann', 'sales_rep');
SELECT is(pg_temp.inbox_ids('ann'), ARRAY[(SELECT id FROM ids WHERE name = 'ann1')],
          'a revoked role''s notifications disappear (her own stay)');
SELECT throws_ok(format('SELECT * FROM api.inbox_ack(%s, %L)', test.uid('ann'),
                        jsonb_build_object('id', (SELECT id FROM ids WHERE name = 'rep2'))), 'OL404',
                 'no such notification', 'and can no longer be acknowledged');
SELECT admin.grant_role('ann', 'sales_rep');
SELECT admin.lock_user('bob');
SELECT throws_ok(format('SELECT * FROM api.inbox(%s, %L)', test.uid('bob'), '{}'), 'OL401', 'account is locked',
                 'a locked user cannot read the inbox');
SELECT admin.unlock_user('bob');

-- The server's feed: event_start and event_feed ---------------------------------------------------

SELECT is((SELECT last_id FROM api.event_start()), (SELECT max(id) FROM orderly.notifications), 'event_start: from the newest id');
SELECT is((SELECT array_agg(id ORDER BY id) FROM api.event_feed(0)), (SELECT array_agg(id ORDER BY id) FROM orderly.notifications),
          'event_feed(0): everything, in id order');
SELECT is((SELECT array_agg(id ORDER BY id) FROM api.event_feed((SELECT id FROM ids WHERE name = 'rep1'))),
          (SELECT array_agg(id ORDER BY id) FROM orderly.notifications WHERE id > (SELECT id FROM ids WHERE name = 'rep1')),
          'event_feed(id): only later ones');
SELECT is((SELECT array_agg(id ORDER BY id) FROM api.event_feed(0, '{}', 2)),
          (SELECT array_agg(id ORDER BY id) FROM (SELECT id FROM orderly.notifications ORDER BY id LIMIT 2) s),
          'max_rows: the oldest first');
SELECT throws_ok($$SELECT * FROM api.event_feed(NULL)$$, 'OL400', NULL, 'event_feed without after_id');
SELECT is((SELECT array_agg(coalesce(id::text, 'none')) FROM api.event_feed((SELECT last_id FROM api.event_start()))), ARRAY['none'],
          'nothing after the last id: one row with the snapshot and no id');
SELECT throws_ok($$SELECT * FROM api.event_feed(0, '{}', 0)$$, 'OL400', 'after_id is required and max_rows must be between 1 and 10000',
                 'max_rows=0');
SELECT throws_ok($$SELECT * FROM api.event_feed(0, '{}', 10001)$$, 'OL400', NULL, 'max_rows too big');
SELECT throws_ok($$SELECT * FROM api.event_feed(0, '{}', NULL)$$, 'OL400', NULL, 'max_rows null');

-- The pushed object is the INBOX row ("read" false), routed by the recipient columns beside it.
SELECT is((SELECT event::jsonb || jsonb_build_object('recipient_user_id', recipient_user_id, 'recipient_role', recipient_role)
           FROM api.event_feed((SELECT id - 1 FROM ids WHERE name = 'rep1'), '{}', 1)),
          jsonb_build_object('id', (SELECT id FROM ids WHERE name = 'rep1'), 'kind', 'approval.requested',
                             'payload', '{"order_id": 7}'::jsonb,
                             'created_at', (SELECT orderly.json_time(created_at) FROM orderly.notifications n
                                            WHERE n.id = (SELECT id FROM ids WHERE name = 'rep1')),
                             'recipient_user_id', NULL, 'recipient_role', 'sales_rep',
                             'recipient', '{"role": "sales_rep"}'::jsonb, 'read', false),
          'an event for a role: documented shape');
SELECT is((SELECT (event::jsonb - 'created_at') || jsonb_build_object('recipient_user_id', recipient_user_id, 'recipient_role', recipient_role)
           FROM api.event_feed((SELECT id - 1 FROM ids WHERE name = 'ann1'), '{}', 1)),
          jsonb_build_object('id', (SELECT id FROM ids WHERE name = 'ann1'), 'kind', 'order.shipped',
                             'payload', '{"order_id": 1042}'::jsonb, 'recipient_user_id', test.uid('ann'),
                             'recipient_role', NULL, 'recipient', '{"user": "ann"}'::jsonb, 'read', false),
          'an event for a user: documented shape');
SELECT is_empty($$
    SELECT i.r FROM unnest(pg_temp.inbox('cid', '{"limit": 500}')) AS i(r)
    WHERE i.r - 'read' <> (SELECT f.event::jsonb - 'read' FROM api.event_feed((i.r ->> 'id')::bigint - 1, '{}', 1) f)
$$, 'a pushed event is exactly an INBOX row, unread');
SELECT ok((SELECT bool_and((event::jsonb ->> 'read')::boolean = false) FROM api.event_feed(0)), 'every pushed event is unread');
SELECT is_empty($$
    SELECT f.id FROM api.event_feed(0) f JOIN orderly.notifications n ON n.id = f.id
    WHERE f.recipient_user_id IS DISTINCT FROM n.recipient_user_id OR f.recipient_role IS DISTINCT FROM n.recipient_role
$$, 'event_feed: each event routed by its recipient');
SELECT ok((SELECT bool_and(event !~ ' : ') FROM api.event_feed(0)), 'events are compact JSON');

-- Gaps: ids below the last one seen that commit late (issue 16) -------------------------------------

SELECT is((SELECT count(DISTINCT (snapshot_xmin, gap_horizon)) FROM api.event_feed(0)), 1::bigint,
          'event_feed: every row carries the one snapshot''s xmin and horizon');
SELECT ok((SELECT bool_and(pg_snapshot_xmin(pg_current_snapshot()) <= snapshot_xmin::xid8) FROM api.event_feed(0)),
          'event_feed: the xmin of a snapshot no older than the caller''s');
SELECT is((SELECT array_agg(coalesce(gap_horizon, 'none')) FROM api.event_feed((SELECT last_id - 1 FROM api.event_start()))), ARRAY['none'],
          'event_feed: rows after after_id without a hole need no horizon');
SELECT is((SELECT array_agg(id ORDER BY id) FROM api.event_feed((SELECT last_id FROM api.event_start()), ARRAY[(SELECT id FROM ids WHERE name = 'rep1'), -5])),
          ARRAY[(SELECT id FROM ids WHERE name = 'rep1')], 'event_feed: gaps below after_id are asked for again; an absent one is not there');
CREATE TEMP TABLE feed_start AS SELECT * FROM api.event_start();
SELECT is((SELECT gaps FROM feed_start),
          ARRAY(SELECT g FROM generate_series(greatest((SELECT last_id FROM feed_start) - 9999, 1), (SELECT last_id FROM feed_start)) g
                WHERE NOT EXISTS (SELECT 1 FROM orderly.notifications n WHERE n.id = g) ORDER BY g),
          'event_start: the ids missing below it are gaps');
DELETE FROM orderly.notifications WHERE id = (SELECT id FROM ids WHERE name = 'rep1');
SELECT ok((SELECT id FROM ids WHERE name = 'rep1') = ANY ((api.event_start()).gaps), 'event_start: a missing id is a gap');
SELECT is((SELECT gap_horizon FROM api.event_start()), pg_current_xact_id()::text,
          'event_start: its horizon is a transaction id drawn after the gaps were seen (in a test, this transaction''s)');
SELECT is((SELECT array_agg(DISTINCT gap_horizon) FROM api.event_feed((SELECT id - 1 FROM ids WHERE name = 'rep1'))),
          ARRAY[pg_current_xact_id()::text], 'event_feed: rows that leave a hole come with a horizon for it');
-- No global lock: while this transaction holds uncommitted notifications, a second session (by
-- dblink) notifies at once (under a lock held to commit it would wait for this one).
CREATE TEMP TABLE notify_wait (available boolean, returned boolean);
DO $$
BEGIN
    IF NOT test.other_session('notify_other') THEN
        INSERT INTO notify_wait VALUES (false, NULL);
        RETURN;
    END IF;
    PERFORM dblink_exec('notify_other', 'BEGIN');
    PERFORM dblink_exec('notify_other', 'SET LOCAL statement_timeout = ''5s''');
    BEGIN
        PERFORM * FROM dblink('notify_other', $q$ SELECT admin.notify('role:warehouse', 'from another session') $q$) AS t(id bigint);
        INSERT INTO notify_wait VALUES (true, true);
    EXCEPTION WHEN OTHERS THEN
        INSERT INTO notify_wait VALUES (true, false);
    END;
    PERFORM dblink_exec('notify_other', 'ROLLBACK');
    PERFORM dblink_disconnect('notify_other');
END
$$;
SELECT CASE WHEN (SELECT available FROM notify_wait)
            THEN ok((SELECT returned FROM notify_wait), 'api.notify does not wait for another transaction''s notification')
            ELSE skip('dblink is not installed', 1) END;

DELETE FROM orderly.notifications;
SELECT is((SELECT last_id || ' ' || gaps::text FROM api.event_start()), '0 {}', 'event_start with no notifications: 0, no gaps');
SELECT is((SELECT array_agg(coalesce(id::text, 'none')) FROM api.event_feed(0)), ARRAY['none'], 'and no events');
DELETE FROM ids;

-- admin.notify ----------------------------------------------------------------------------------

INSERT INTO ids SELECT 'to_ann', admin.notify('ANN', '  Stocktake on Friday  ');
SELECT is((SELECT jsonb_build_object('u', recipient_user_id, 'r', recipient_role, 'k', kind, 'p', payload)
           FROM orderly.notifications WHERE id = (SELECT id FROM ids WHERE name = 'to_ann')),
          jsonb_build_object('u', test.uid('ann'), 'r', NULL, 'k', 'admin.notice',
                             'p', jsonb_build_object('message', 'Stocktake on Friday', 'from', session_user)),
          'admin.notify to a username (any case): an admin.notice from the login, message trimmed');
SELECT is((test.last_audit()).action, 'notification.create', 'admin.notify is audited');
SELECT is(row((test.last_audit()).actor_kind, (test.last_audit()).actor_user_id)::text, row('admin_sql', NULL::bigint)::text,
          'as an admin''s in SQL');
SELECT is((test.last_audit()).actor_db_role, session_user::text, 'audit: by the admin''s login');
INSERT INTO ids SELECT 'to_wh', admin.notify('warehouse', 'Dock 2 closed');
SELECT is((SELECT recipient_role FROM orderly.notifications WHERE id = (SELECT id FROM ids WHERE name = 'to_wh')), 'warehouse',
          'admin.notify to a role name');
SELECT is(pg_temp.inbox_ids('cid'), ARRAY[(SELECT id FROM ids WHERE name = 'to_wh')], 'the role''s members see it');
INSERT INTO ids SELECT 'to_logi_user', admin.notify('user:logistics', 'hi');
SELECT is((SELECT recipient_user_id FROM orderly.notifications WHERE id = (SELECT id FROM ids WHERE name = 'to_logi_user')),
          test.uid('logistics'), 'user:<name> picks the user');
INSERT INTO ids SELECT 'to_logi_role', admin.notify('role:logistics', 'hi');
SELECT is((SELECT recipient_role FROM orderly.notifications WHERE id = (SELECT id FROM ids WHERE name = 'to_logi_role')),
          'logistics', 'role:<name> picks the role');
SELECT lives_ok(format('SELECT admin.notify(%L, %L)', 'ann', repeat('m', 2000)), 'a 2000-character message');

SELECT test.snapshot();
SELECT throws_ok($$SELECT admin.notify('logistics', 'hi')$$, 'OL409',
                 'ambiguous recipient "logistics": write user:logistics or role:logistics', 'a name that is a user and a role');
SELECT throws_ok($$SELECT admin.notify('nobody', 'hi')$$, 'OL404', 'unknown recipient "nobody"', 'unknown recipient');
SELECT throws_ok($$SELECT admin.notify('role:ann', 'hi')$$, 'OL404', 'unknown recipient "role:ann"', 'role: is not a user');
SELECT throws_ok($$SELECT admin.notify('user:warehouse', 'hi')$$, 'OL404', 'unknown recipient "user:warehouse"',
                 'user: is not a role');
SELECT throws_ok($$SELECT admin.notify(' ', 'hi')$$, 'OL400', 'recipient is required', 'blank recipient');
SELECT throws_ok($$SELECT admin.notify(NULL, 'hi')$$, 'OL400', 'recipient is required', 'null recipient');
SELECT throws_ok($$SELECT admin.notify('ann', E' \n ')$$, 'OL400', 'message is required', 'blank message');
SELECT throws_ok($$SELECT admin.notify('ann', NULL)$$, 'OL400', 'message is required', 'null message');
SELECT throws_ok($$SELECT admin.notify('ann', E'Dock \u202E2 closed')$$, 'OL400', NULL, 'a message with a direction override is refused');
SELECT throws_ok(format('SELECT admin.notify(%L, %L)', 'ann', repeat('m', 2001)), 'OL400',
                 'message must be at most 2000 characters', 'message too long');
SELECT ok(test.unchanged(), 'failed admin.notify calls changed nothing');

-- Grants -----------------------------------------------------------------------------------------

-- The pg_temp helpers read orderly tables, so under the group roles ids come from settings.
SELECT set_config('test.ann', test.uid('ann')::text, true);

SELECT ok(has_function_privilege('orderly_app', f, 'EXECUTE'), format('orderly_app may execute %s', f))
FROM unnest(ARRAY['api.inbox(bigint, jsonb)', 'api.inbox_ack(bigint, jsonb)', 'api.event_feed(bigint, bigint[], integer)',
                  'api.event_start()']) AS f;
SELECT ok(NOT has_function_privilege('orderly_app', 'api.notify(bigint, text, text, jsonb, bigint, text)', 'EXECUTE'),
          'orderly_app may not execute api.notify (no command maps to it)');
SELECT ok(has_function_privilege('orderly_admin', 'admin.notify(text, text)', 'EXECUTE'), 'orderly_admin may execute admin.notify');
SELECT ok(NOT has_function_privilege('orderly_admin', 'api.notify(bigint, text, text, jsonb, bigint, text)', 'EXECUTE'),
          'orderly_admin may not execute api.notify');
SELECT is_empty($$
    SELECT f, r FROM unnest(ARRAY['api.notify(bigint, text, text, jsonb, bigint, text)', 'api.inbox(bigint, jsonb)',
                                  'api.inbox_ack(bigint, jsonb)', 'api.event_feed(bigint, bigint[], integer)',
                                  'api.event_start()', 'admin.notify(text, text)']) AS f,
                  unnest(ARRAY['orderly_bi', 'public']) AS r
    WHERE has_function_privilege(r, f, 'EXECUTE')
$$, 'orderly_bi and PUBLIC may execute none of them');

SET LOCAL ROLE orderly_app;
SELECT throws_ok($$SELECT api.notify(current_setting('test.ann')::bigint, NULL, 'x.y', '{}', NULL)$$, '42501', NULL,
                 'orderly_app cannot call api.notify');
SELECT is((SELECT count(*)::int FROM api.inbox(current_setting('test.ann')::bigint, '{}')), 2, 'orderly_app reads an inbox');
SELECT is((SELECT r::jsonb FROM api.inbox_ack(current_setting('test.ann')::bigint, '{"id": "all"}') r),
          '{"acknowledged": 2}', 'orderly_app acknowledges');
SELECT ok((SELECT last_id FROM api.event_start()) > 0 AND (SELECT count(id) FROM api.event_feed(0)) = 5, 'orderly_app reads the feed');
SELECT throws_ok($$SELECT * FROM orderly.notifications$$, '42501', NULL, 'but not the table');
RESET ROLE;

SET LOCAL ROLE orderly_admin;
SELECT ok(admin.notify('bob', 'from a real orderly_admin') > 0, 'orderly_admin sends a notice');
SELECT throws_ok($$SELECT api.notify(current_setting('test.ann')::bigint, NULL, 'x.y', '{}', NULL)$$, '42501', NULL,
                 'orderly_admin cannot call api.notify');
RESET ROLE;

SET LOCAL ROLE orderly_bi;
SELECT throws_ok($$SELECT * FROM api.inbox(1, '{}')$$, '42501', NULL, 'orderly_bi cannot read inboxes');
SELECT throws_ok($$SELECT admin.notify('bob', 'x')$$, '42501', NULL, 'orderly_bi cannot send notices');
RESET ROLE;

-- The feed reads what it returns, not the table: orderlyd reads it at every notification, and it
-- once walked the whole primary key each time (an OR of "after the id" and "the gaps"). Measured
-- in buffers, which do not depend on the machine's speed.
INSERT INTO orderly.notifications (recipient_role, kind, payload)
SELECT 'sales_rep', 'test.bulk', jsonb_build_object('n', g) FROM generate_series(1, 20000) g;
CREATE FUNCTION pg_temp.feed_buffers(after_id bigint, gaps bigint[]) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_plan json;
BEGIN
    -- Twice first: a session's first calls read catalogs and make plans.
    PERFORM count(*) FROM api.event_feed(after_id, gaps, 500);
    PERFORM count(*) FROM api.event_feed(after_id, gaps, 500);
    EXECUTE 'EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT * FROM api.event_feed($1, $2, 500)' INTO v_plan USING after_id, gaps;
    RETURN (v_plan -> 0 -> 'Plan' ->> 'Shared Hit Blocks')::integer + (v_plan -> 0 -> 'Plan' ->> 'Shared Read Blocks')::integer;
END
$$;
SELECT cmp_ok(pg_temp.feed_buffers((SELECT max(id) - 3 FROM orderly.notifications), ARRAY[(SELECT min(id) FROM orderly.notifications)]),
              '<', 60, 'event_feed reads the few rows it returns, not 20 000 notifications');

SELECT is_empty('SELECT * FROM test.audit_rows_without_actor()', 'every audit row of this file names its actor');

SELECT test.snapshot();
-- A customer hears only of kinds it has a view of: a staff event to a customer login (an order's
-- creator) or to the role customer is not written at all, rather than reach it empty.
SELECT is(ARRAY[api.notify(test.uid('logistics'), NULL, 'delay.warning', '{"order": 7, "reason": "late_stage"}', NULL, 'system'),
                api.notify(test.uid('logistics'), NULL, 'production.issue', '{"order": 7, "note": "die cracked"}', test.uid('bob')),
                api.notify(NULL, 'customer', 'shipment.exception', '{"shipment": 3}', NULL, 'system')],
          ARRAY[NULL, NULL, NULL]::bigint[], 'a staff kind is not sent to a customer login or to the role customer');
SELECT ok(test.unchanged(), '… and nothing is written');
SELECT isnt(api.notify(test.uid('logistics'), NULL, 'order.delay', '{"reason_text": "later"}', NULL, 'system'), NULL,
            'a kind customers have a view of is sent');
SELECT is(api.notify(test.uid('logistics'), NULL, 'order.delay', '{"order": 7, "reason_text": "later"}', NULL, 'system'), NULL,
          'but not of an order that is not its customer''s (this login is linked to none)');
SELECT * FROM finish();
ROLLBACK;
