-- Orderly: notifications (DESIGN.md §5): raising them (api.notify, admin.notify), reading and
-- acknowledging them (INBOX, INBOX ACK), and the catch-up feed of the server's LISTEN
-- connection (api.event_start, api.event_feed).
--
-- Who sees a role notification is decided when it is read or pushed, by who holds the role
-- then: a user given a role sees the role's earlier notifications, one who lost it no longer
-- does. Read marks are per user, so members of one role acknowledge independently.

-- One document per notification, built in one place: INBOX rows and pushed events must have the
-- same shape. jsonb, so that the text is compact and its key order fixed. Addressed to a
-- customer login (or to the role "customer", whose holders are customer logins), it is the
-- customer's view of it (orderly.visible_doc, R__045_customer_view.sql). A kind without a
-- customer allow-list is not sent to customers at all (api.notify). viewer_own: the customer of
-- the customer login reading it (INBOX), whose view it then is whoever it was addressed to
-- (another role the login holds): the view is applied once, as a view of a view may differ
-- (a change's decision_reason is shown from its customer_reason, which the view leaves out).
DROP FUNCTION IF EXISTS orderly.notification_doc(orderly.notifications);
CREATE OR REPLACE FUNCTION orderly.notification_doc(n orderly.notifications, viewer_own bigint DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r     orderly.users;
    v_own bigint;
BEGIN
    IF n.recipient_user_id IS NOT NULL THEN
        SELECT * INTO r FROM orderly.users u WHERE u.id = n.recipient_user_id;
        v_own := orderly.own_customer(r);
    ELSIF n.recipient_role = 'customer' THEN
        v_own := 0;
    END IF;
    v_own := coalesce(viewer_own, v_own);
    RETURN orderly.visible_doc('notification', json_build_object(
        'id', n.id,
        'kind', n.kind,
        'payload', n.payload,
        'created_at', orderly.json_time(n.created_at),
        'recipient', CASE WHEN n.recipient_user_id IS NOT NULL
                          THEN json_build_object('user', r.username)
                          ELSE json_build_object('role', n.recipient_role) END), v_own)::jsonb;
END
$$;

-- What a user may see: addressed to them, or to a role they hold now; unread_only leaves out
-- what they have acknowledged; customer_kinds keeps only the kinds customers have a view of (for
-- a customer's login: before the limit, so that a page is never cut short by what it may not
-- see). Newest first, keyset paginated by id ("before"); each half walks its own index backwards
-- and stops at lim (NULL: no limit).
DROP FUNCTION IF EXISTS orderly.visible_notifications(bigint, bigint, integer, boolean);
CREATE OR REPLACE FUNCTION orderly.visible_notifications(user_id bigint, before bigint, lim integer,
                                                         unread_only boolean, customer_kinds boolean DEFAULT false)
RETURNS SETOF orderly.notifications
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT v.* FROM (
        (SELECT n.* FROM orderly.notifications n
         WHERE n.recipient_user_id = $1 AND ($2 IS NULL OR n.id < $2)
           AND NOT ($4 AND EXISTS (SELECT 1 FROM orderly.notification_reads r
                                   WHERE r.notification_id = n.id AND r.user_id = $1))
           AND (NOT $5 OR orderly.customer_event(n.kind))
         ORDER BY n.id DESC LIMIT $3)
        UNION ALL
        (SELECT n.* FROM orderly.notifications n
         WHERE n.recipient_role = ANY (orderly.user_role_names($1)) AND ($2 IS NULL OR n.id < $2)
           AND NOT ($4 AND EXISTS (SELECT 1 FROM orderly.notification_reads r
                                   WHERE r.notification_id = n.id AND r.user_id = $1))
           AND (NOT $5 OR orderly.customer_event(n.kind))
         ORDER BY n.id DESC LIMIT $3)
    ) v
    ORDER BY v.id DESC
    LIMIT $3
$$;

-- The one way to raise an event. Called by other SECURITY DEFINER functions (as the owner),
-- never by the server directly, which is why orderly_app may not execute it. The audit row and
-- the notification belong to the caller's transaction: both exist only if its change commits.
--
-- Transactions commit in any order, so ids do not become visible in id order: a reader that has
-- seen id 11 may later find 10. Nothing serialises the writers for that (until issue 16 an
-- advisory lock held to commit did, and every notifying transaction queued on it); the reader
-- handles it instead (api.event_feed): an id it has not seen below one it has is a gap, asked for
-- again until it shows up or the transactions that could hold it have all ended. Call this as
-- the last step of a change anyway: the row is uncommitted for the shortest time.
-- Its audit row names who raised it, as orderly.audit's do: actor_user_id, the user whose
-- command it is, or NULL with actor_kind 'system' or 'admin_sql'.
DROP FUNCTION IF EXISTS api.notify(bigint, text, text, jsonb);
CREATE OR REPLACE FUNCTION api.notify(recipient_user_id bigint, recipient_role text, kind text, payload jsonb,
                                      actor_user_id bigint, actor_kind text DEFAULT 'user')
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    v_payload jsonb := coalesce(notify.payload, '{}');
    n         orderly.notifications;
    r         orderly.users;
    v_own     bigint;    -- the customer a recipient login acts for (0: not linked yet); NULL: staff
BEGIN
    IF num_nonnulls(notify.recipient_user_id, notify.recipient_role) <> 1 THEN
        RAISE EXCEPTION 'a notification needs exactly one recipient: a user or a role' USING ERRCODE = 'OL400';
    END IF;
    IF notify.kind IS NULL OR length(notify.kind) > 64 OR notify.kind !~ '^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$' THEN
        RAISE EXCEPTION 'invalid notification kind: use lowercase words joined by dots, like "approval.requested"'
            USING ERRCODE = 'OL400';
    END IF;
    IF jsonb_typeof(v_payload) <> 'object' THEN
        RAISE EXCEPTION 'payload must be a JSON object' USING ERRCODE = 'OL400';
    END IF;
    IF octet_length(v_payload::text) > 32768 THEN
        RAISE EXCEPTION 'payload must be at most 32768 bytes' USING ERRCODE = 'OL400';
    END IF;
    -- KEY SHARE: the recipient cannot be deleted between this check and the insert.
    IF notify.recipient_user_id IS NOT NULL THEN
        SELECT * INTO r FROM orderly.users u WHERE u.id = notify.recipient_user_id FOR KEY SHARE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'unknown user' USING ERRCODE = 'OL404';
        END IF;
    END IF;
    IF notify.recipient_role IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM orderly.roles x WHERE x.name = notify.recipient_role FOR KEY SHARE) THEN
        RAISE EXCEPTION 'unknown role "%"', orderly.for_message(notify.recipient_role) USING ERRCODE = 'OL404';
    END IF;
    -- A customer hears only of the kinds it has a view of (orderly.customer_shape): a staff event
    -- (a delay warning, a production issue) sent to the creator of an order who is a customer
    -- login would reach it as an empty payload, saying only that something internal happened.
    IF r.id IS NOT NULL THEN
        v_own := orderly.own_customer(r);
    END IF;
    IF NOT orderly.customer_event(notify.kind) AND (notify.recipient_role = 'customer' OR v_own IS NOT NULL) THEN
        RETURN NULL;
    END IF;
    -- Nor of another customer's order: the creator of an order, written to as such, may since
    -- have been linked to another customer (or turned from staff into a customer's login).
    IF v_own IS NOT NULL AND jsonb_typeof(v_payload -> 'order') = 'number'
       AND NOT EXISTS (SELECT 1 FROM orderly.orders o WHERE o.id = (v_payload ->> 'order')::bigint AND o.customer_id = v_own) THEN
        RETURN NULL;
    END IF;

    -- The transaction has an id before the row takes its id (the INSERT draws it from the
    -- sequence before it writes): a reader that sees the gap this row leaves while uncommitted
    -- then knows the transaction is older than any transaction id drawn after (see api.event_feed).
    PERFORM pg_current_xact_id();

    INSERT INTO orderly.notifications (recipient_user_id, recipient_role, kind, payload)
    VALUES (notify.recipient_user_id, notify.recipient_role, notify.kind, v_payload)
    RETURNING * INTO n;

    PERFORM orderly.audit(notify.actor_user_id, 'notification.create', 'notification', n.id::text, NULL,
                          jsonb_build_object('recipient_user_id', n.recipient_user_id,
                                             'recipient_role', n.recipient_role,
                                             'kind', n.kind,
                                             'payload', n.payload),
                          actor_kind => notify.actor_kind);
    -- Delivered at commit only, and carries just the id: the row is the event.
    PERFORM pg_notify('orderly_events', n.id::text);
    RETURN n.id;
END
$$;

-- recipient is a username (any case) or a role name. A bare name that is both (the demo users
-- are named after their roles) is refused rather than guessed: "user:" or "role:" in front
-- says which, and cannot be part of either kind of name.
CREATE OR REPLACE FUNCTION admin.notify(recipient text, message text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    -- Typed by hand in psql: surrounding whitespace of any kind (a trailing newline) is noise.
    v_name    text := regexp_replace(coalesce(notify.recipient, ''), '^[[:space:]]+|[[:space:]]+$', '', 'g');
    v_message text := regexp_replace(coalesce(notify.message, ''), '^[[:space:]]+|[[:space:]]+$', '', 'g');
    v_only    text;            -- 'user' or 'role' when the recipient says which
    v_user_id bigint;
    v_role    text;
BEGIN
    IF v_name ~ '^(user|role):' THEN
        v_only := split_part(v_name, ':', 1);
        v_name := regexp_replace(substr(v_name, 6), '^[[:space:]]+', '');
    END IF;
    IF v_name = '' THEN
        RAISE EXCEPTION 'recipient is required' USING ERRCODE = 'OL400';
    END IF;
    IF v_message = '' THEN
        RAISE EXCEPTION 'message is required' USING ERRCODE = 'OL400';
    END IF;
    IF length(v_message) > 2000 THEN
        RAISE EXCEPTION 'message must be at most 2000 characters' USING ERRCODE = 'OL400';
    END IF;
    -- It is pushed to users' screens as it is (customers' too): what a request may not carry.
    IF orderly.hides_text(v_message) THEN
        RAISE EXCEPTION 'message must not contain control or direction-override characters (line breaks and tabs are fine)'
            USING ERRCODE = 'OL400';
    END IF;

    IF v_only IS DISTINCT FROM 'role' THEN
        SELECT u.id INTO v_user_id FROM orderly.users u WHERE lower(u.username) = lower(v_name);
    END IF;
    IF v_only IS DISTINCT FROM 'user' THEN
        SELECT r.name INTO v_role FROM orderly.roles r WHERE r.name = v_name;
    END IF;
    IF v_user_id IS NOT NULL AND v_role IS NOT NULL THEN
        RAISE EXCEPTION 'ambiguous recipient "%": write user:% or role:%',
            orderly.for_message(v_name), orderly.for_message(v_name), orderly.for_message(v_name)
            USING ERRCODE = 'OL409';
    END IF;
    IF v_user_id IS NULL AND v_role IS NULL THEN
        RAISE EXCEPTION 'unknown recipient "%"', orderly.for_message(coalesce(v_only || ':', '') || v_name)
            USING ERRCODE = 'OL404';
    END IF;

    RETURN api.notify(v_user_id, v_role, 'admin.notice',
                      jsonb_build_object('message', v_message, 'from', session_user), NULL, 'admin_sql');
END
$$;

-- INBOX [unread=true] [limit=50] [before=<id>]: one row per notification, newest first.
CREATE OR REPLACE FUNCTION api.inbox(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.begin_command('INBOX', inbox.actor, inbox.args);
    v_unread boolean := coalesce(orderly.arg_bool(inbox.args, 'unread'), false);
    v_limit  integer := coalesce(orderly.arg_int(inbox.args, 'limit'), 50);
    v_before bigint := orderly.arg_bigint(inbox.args, 'before');
    v_own    bigint := orderly.own_customer(u);
BEGIN
    IF v_limit NOT BETWEEN 1 AND 500 THEN
        RAISE EXCEPTION 'limit must be between 1 and 500' USING ERRCODE = 'OL400';
    END IF;

    -- A customer's login reads only the kinds it has a view of (api.notify sends it no others;
    -- this keeps out those written before that rule, or while the login was staff's), each as a
    -- customer sees it, also when addressed to another role it holds (an admin's "buyers").
    RETURN QUERY
    SELECT (orderly.notification_doc(v, v_own) || jsonb_build_object('read', r.user_id IS NOT NULL))::json
    FROM orderly.visible_notifications(u.id, v_before, v_limit, v_unread, v_own IS NOT NULL) v
    LEFT JOIN orderly.notification_reads r ON r.notification_id = v.id AND r.user_id = u.id
    ORDER BY v.id DESC;
END
$$;

SELECT orderly.register_command('INBOX', 'api.inbox', 'inbox.read',
    arguments  => 'unread:boolean limit:integer before:id',
    usage      => 'INBOX [unread=true] [limit=N] [before=id]',
    summary    => 'Your notifications, newest first: the events pushed to you, also those sent while you were offline.');

-- INBOX ACK <id>|all: marks as read for this user only. Acknowledging twice is not an error (a
-- second session may have done it); it just counts 0. An id the user may not see is reported
-- exactly like one that does not exist.
CREATE OR REPLACE FUNCTION api.inbox_ack(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.begin_command('INBOX ACK', inbox_ack.actor, inbox_ack.args);
    v_replay json := orderly.replay(u, inbox_ack.args);
    v_arg    jsonb := orderly.arg_scalar(inbox_ack.args, 'id', true, 'a notification id or "all"');
    v_id     bigint;
    v_count  integer;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    IF jsonb_typeof(v_arg) = 'string' AND lower(btrim(v_arg #>> '{}')) = 'all' THEN
        INSERT INTO orderly.notification_reads (notification_id, user_id)
        SELECT v.id, u.id FROM orderly.visible_notifications(u.id, NULL, NULL, true, orderly.own_customer(u) IS NOT NULL) v
        ON CONFLICT ON CONSTRAINT notification_reads_pkey DO NOTHING;
        GET DIAGNOSTICS v_count = ROW_COUNT;
    ELSE
        BEGIN
            v_id := orderly.arg_bigint(inbox_ack.args, 'id', true);
        EXCEPTION WHEN SQLSTATE 'OL400' THEN
            RAISE EXCEPTION 'id must be a notification id or "all"' USING ERRCODE = 'OL400';
        END;
        IF NOT EXISTS (SELECT 1 FROM orderly.notifications n
                       WHERE n.id = v_id
                         AND (n.recipient_user_id = u.id OR n.recipient_role = ANY (orderly.user_role_names(u.id)))
                         AND (orderly.own_customer(u) IS NULL OR orderly.customer_event(n.kind))) THEN
            RAISE EXCEPTION 'no such notification' USING ERRCODE = 'OL404';
        END IF;
        INSERT INTO orderly.notification_reads (notification_id, user_id)
        VALUES (v_id, u.id)
        ON CONFLICT ON CONSTRAINT notification_reads_pkey DO NOTHING;
        GET DIAGNOSTICS v_count = ROW_COUNT;
    END IF;

    IF v_count > 0 THEN
        PERFORM orderly.audit(u.id, 'notification.ack', 'notification', coalesce(v_id::text, 'all'), NULL,
                              jsonb_build_object('acknowledged', v_count));
    END IF;
    RETURN NEXT orderly.remember(u, args, jsonb_build_object('acknowledged', v_count)::json);
END
$$;

SELECT orderly.register_command('INBOX ACK', 'api.inbox_ack', 'inbox.read',
    arguments  => 'id:any!',
    positional => '{id}',
    usage      => 'INBOX ACK id|all',
    summary    => 'Mark one notification, or all of them, as read.',
    changes    => true);

-- The feed before issue 16 (after an id, and the newest id), replaced by event_feed and event_start.
DROP FUNCTION IF EXISTS api.events_since(bigint, integer);
DROP FUNCTION IF EXISTS api.last_event_id();

-- The server's LISTEN connection reads through this (EventListener.swift, EventCursor.swift).
-- Notifications commit out of id order, so the reader keeps, beside the last id it has seen, the
-- gaps below it: ids it has not seen, each with a horizon, a transaction id newer than that of
-- whatever transaction holds it (api.notify takes its transaction id before the row takes its
-- id, so a transaction id drawn after the gap was seen is newer). Each call returns, in one
-- snapshot, the rows after after_id and those of the gaps that have committed since, with the
-- snapshot's xmin on every row (one row with NULL id when there is none) and, when the rows after
-- after_id leave new gaps, the horizon for them. A gap whose horizon is at or below a later xmin
-- never fills: every transaction that could hold it has ended (it rolled back). So no event is
-- missed, none is seen twice, and writers never wait for each other. The snapshot's xmax is not
-- a horizon: it is one past the newest *completed* transaction, and the holder may be newer.
DROP FUNCTION IF EXISTS api.event_feed(bigint, bigint[], integer);
-- One plan for every call (plan_cache_mode): a plan made for the given after_id always looked
-- cheaper than one for any after_id, so PostgreSQL planned the query again at every call, which
-- cost four times its run (it runs at every notification).
CREATE FUNCTION api.event_feed(after_id bigint, gaps bigint[] DEFAULT '{}', max_rows integer DEFAULT 500)
RETURNS TABLE (snapshot_xmin text, gap_horizon text, id bigint, kind text, recipient_user_id bigint, recipient_role text,
               event text)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    IF event_feed.after_id IS NULL OR event_feed.max_rows IS NULL OR event_feed.max_rows NOT BETWEEN 1 AND 10000 THEN
        RAISE EXCEPTION 'after_id is required and max_rows must be between 1 and 10000' USING ERRCODE = 'OL400';
    END IF;
    RETURN QUERY
    WITH picked AS (
        -- Two index lookups: the rows after after_id, and the gaps (all at or below it). One
        -- WHERE with an OR of the two walked the whole primary key at every call: the feed is
        -- read at every notification, so it grew as slow as the table was long.
        (SELECT n FROM orderly.notifications n WHERE n.id > event_feed.after_id ORDER BY n.id LIMIT event_feed.max_rows)
        UNION ALL
        SELECT n FROM orderly.notifications n
        WHERE n.id = ANY (coalesce(event_feed.gaps, '{}')) AND n.id <= event_feed.after_id),
    e AS (
        -- The pushed object is the INBOX row: "read" is false for a new event.
        SELECT (p.n).id, (p.n).kind, (p.n).recipient_user_id, (p.n).recipient_role,
               (orderly.notification_doc(p.n) || '{"read": false}')::text AS event
        FROM picked p
        ORDER BY (p.n).id
        LIMIT event_feed.max_rows),
    -- Drawn during this statement, after its snapshot: newer than any holder of a new gap. Only
    -- when there is one (it gives this connection a transaction id).
    h AS (SELECT CASE WHEN (SELECT max(e.id) - event_feed.after_id > count(*) FROM e WHERE e.id > event_feed.after_id)
                      THEN pg_current_xact_id()::text END AS horizon)
    SELECT pg_snapshot_xmin(pg_current_snapshot())::text, h.horizon, e.id, e.kind, e.recipient_user_id, e.recipient_role, e.event
    FROM h LEFT JOIN e ON true
    ORDER BY e.id;
END
$$;

-- Where a starting server begins (after it has started listening): the newest id, and the ids
-- missing among the 10 000 before it with a horizon for them (as event_feed's). A transaction
-- still running may hold one of those; one that drew its id more than 10 000 notifications ago
-- and is still uncommitted is not waited for.
DROP FUNCTION IF EXISTS api.event_start();
CREATE FUNCTION api.event_start() RETURNS TABLE (last_id bigint, gaps bigint[], gap_horizon text)
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
    WITH m AS (SELECT coalesce(max(n.id), 0) AS last_id FROM orderly.notifications n)
    SELECT m.last_id,
           ARRAY(SELECT g FROM generate_series(greatest(m.last_id - 9999, 1), m.last_id) g
                 WHERE NOT EXISTS (SELECT 1 FROM orderly.notifications n WHERE n.id = g) ORDER BY g),
           pg_current_xact_id()::text
    FROM m
$$;

COMMENT ON FUNCTION admin.notify(text, text) IS
    'Send a notice to a user or a role ("user:name" or "role:name" when both exist); returns its id';

-- api.notify is for other functions only: the default privileges granted it to orderly_app.
REVOKE ALL ON FUNCTION api.notify(bigint, text, text, jsonb, bigint, text) FROM PUBLIC, orderly_app;
