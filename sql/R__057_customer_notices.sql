-- Orderly: customer e-mail through a transactional outbox (issue 13, item 5). Tables in
-- V018__tracking_and_risk.sql.
--
-- A notice for a customer is a row of orderly.outbox, written in the transaction of the change it
-- tells about (a status milestone, R__140; a delay warning, R__196), so it exists exactly when the
-- change does. Its text is rendered from orderly.message_templates (per event kind and the
-- customer's language, English when there is none in it). orderlyd delivers the rows over SMTP:
-- api.outbox_claim hands out due rows FOR UPDATE SKIP LOCKED with a lease, so two servers never
-- hold one row; api.outbox_result records the outcome: sent, tried again after a backoff that
-- doubles, or given up after max_attempts with the error kept. A server that dies mid-send leaves
-- its lease to run out, and the row is sent again (at least once; the Message-ID stays).

-- {{name}} → vals ->> name ('' when missing). Plain text: the e-mail is text/plain. One pass
-- from left to right, so a value that itself contains "{{…}}" (a customer named so) stays as it is.
CREATE OR REPLACE FUNCTION orderly.render_template(template text, vals jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rest text := template;
    v_out  text := '';
    m      text[];
BEGIN
    LOOP
        m := regexp_match(v_rest, '^(.*?)\{\{([a-z_]+)\}\}(.*)$', 's');
        EXIT WHEN m IS NULL;
        v_out := v_out || m[1] || coalesce(vals ->> m[2], '');
        v_rest := m[3];
    END LOOP;
    RETURN v_out || v_rest;
END
$$;

-- Queues the e-mail of kind about order o to its customer; dedupe_key names the fact (a second
-- call for it is a no-op). NULL when nothing was queued (no template, or already queued).
CREATE OR REPLACE FUNCTION orderly.queue_customer_email(kind text, o orderly.orders, vals jsonb, dedupe_key text,
                                                       actor_user_id bigint DEFAULT NULL, actor_kind text DEFAULT 'system')
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c     orderly.customers;
    t     orderly.message_templates;
    v_all jsonb;
    v_id  bigint;
BEGIN
    SELECT * INTO c FROM orderly.customers x WHERE x.id = o.customer_id;
    SELECT * INTO t FROM orderly.message_templates x
    WHERE x.kind = queue_customer_email.kind AND x.language IN (c.language, 'en')
    ORDER BY x.language = c.language DESC
    LIMIT 1;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    v_all := jsonb_build_object('order', o.id, 'customer', c.name) || coalesce(vals, '{}');
    -- An address the outbox cannot send to (one with "<" or ">", which SMTP's angle brackets
    -- cannot carry) is skipped, never allowed to fail the change being told about.
    IF c.email !~ '^[^@[:space:][:cntrl:]<>]+@[^@[:space:][:cntrl:]<>]+$' THEN
        PERFORM orderly.audit(actor_user_id, 'outbox.skipped', 'customer', c.id::text, NULL,
                              jsonb_build_object('kind', kind, 'order', o.id, 'reason', 'address cannot be sent to'),
                              actor_kind => queue_customer_email.actor_kind);
        RETURN NULL;
    END IF;
    INSERT INTO orderly.outbox (recipient, subject, body, kind, language, order_id, customer_id, dedupe_key)
    VALUES (c.email, left(regexp_replace(orderly.render_template(t.subject, v_all), '[[:cntrl:]]', ' ', 'g'), 200),
            orderly.render_template(t.body, v_all), kind, t.language, o.id, c.id, dedupe_key)
    ON CONFLICT ON CONSTRAINT outbox_dedupe_key DO NOTHING
    RETURNING id INTO v_id;
    IF v_id IS NOT NULL THEN
        PERFORM orderly.audit(actor_user_id, 'outbox.queue', 'outbox', v_id::text, NULL,
                              jsonb_build_object('kind', kind, 'order', o.id, 'recipient', c.email, 'dedupe_key', dedupe_key),
                              actor_kind => queue_customer_email.actor_kind);
    END IF;
    RETURN v_id;
END
$$;

-- orderlyd: the due rows for worker, each now claimed until now + lease.
CREATE OR REPLACE FUNCTION api.outbox_claim(worker text, now timestamptz, lease interval, max_rows integer) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
BEGIN
    RETURN QUERY
    WITH due AS (
        SELECT x.id FROM orderly.outbox x
        WHERE x.state IN ('pending', 'sending') AND x.next_attempt_at <= outbox_claim.now
          AND (x.state = 'pending' OR x.claimed_until < outbox_claim.now)
        ORDER BY x.next_attempt_at, x.id
        LIMIT greatest(1, least(max_rows, 100))
        FOR UPDATE SKIP LOCKED)
    UPDATE orderly.outbox x
    SET state = 'sending', claimed_by = worker, claimed_until = outbox_claim.now + lease, attempts = x.attempts + 1
    FROM due
    WHERE x.id = due.id
    RETURNING json_build_object('id', x.id, 'recipient', x.recipient, 'subject', x.subject, 'body', x.body,
                                'attempts', x.attempts);
END
$$;

-- orderlyd: how sending row id went (error NULL: sent). Only the worker holding the claim may say.
CREATE OR REPLACE FUNCTION api.outbox_result(id bigint, worker text, now timestamptz, error text, max_attempts integer,
                                             backoff interval) RETURNS json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    m orderly.outbox;
BEGIN
    SELECT * INTO m FROM orderly.outbox x WHERE x.id = outbox_result.id FOR UPDATE;
    IF NOT FOUND OR m.state <> 'sending' OR m.claimed_by IS DISTINCT FROM worker THEN
        RETURN json_build_object('id', outbox_result.id, 'state', 'not_claimed');
    END IF;
    UPDATE orderly.outbox x
    SET state = CASE WHEN error IS NULL THEN 'sent' WHEN m.attempts >= max_attempts THEN 'failed' ELSE 'pending' END,
        sent_at = CASE WHEN error IS NULL THEN outbox_result.now END,
        last_error = coalesce(left(error, 1000), x.last_error),
        next_attempt_at = CASE WHEN error IS NULL OR m.attempts >= max_attempts THEN x.next_attempt_at
                               ELSE outbox_result.now + least(backoff * power(2, m.attempts - 1), interval '1 day') END,
        claimed_by = NULL, claimed_until = NULL
    WHERE x.id = m.id
    RETURNING * INTO m;
    PERFORM orderly.audit(NULL, 'outbox.' || m.state, 'outbox', m.id::text, NULL,
                          jsonb_build_object('attempts', m.attempts, 'error', m.last_error, 'worker', worker),
                          actor_kind => 'system');
    RETURN json_build_object('id', m.id, 'state', m.state, 'attempts', m.attempts,
                             'next_attempt_at', orderly.json_time(m.next_attempt_at));
END
$$;

CREATE OR REPLACE VIEW admin.outbox AS
SELECT m.id, m.kind, m.language, m.recipient, m.subject, m.state, m.attempts, m.next_attempt_at, m.last_error,
       m.order_id, m.created_at, m.sent_at
FROM orderly.outbox m;

COMMENT ON VIEW admin.outbox IS 'Customer e-mail: queued, being sent, sent, or failed with its last error';

-- Admin: a failed (or pending) message is tried again at once, its attempts counted afresh.
CREATE OR REPLACE FUNCTION admin.retry_outbox(id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    m orderly.outbox;
BEGIN
    UPDATE orderly.outbox x SET state = 'pending', attempts = 0, next_attempt_at = now(), claimed_by = NULL, claimed_until = NULL
    WHERE x.id = retry_outbox.id AND x.state IN ('failed', 'pending')
    RETURNING * INTO m;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'outbox message % not found or not failed', retry_outbox.id USING ERRCODE = 'OL404';
    END IF;
    PERFORM orderly.audit(NULL, 'outbox.retry', 'outbox', m.id::text, NULL, jsonb_build_object('state', m.state),
                          actor_kind => 'admin_sql');
END
$$;

-- The {{names}} a template of each e-mailed kind may use: what its callers of
-- queue_customer_email put in (order.status: the order.status event's payload and the tracking
-- line, R__140_orders.sql; order.delay: R__196_risk.sql), and order and customer for every kind.
-- In schema admin: admin.message_templates shows it, and a view's functions run with the rights
-- of whoever reads the view (an admin may not execute orderly's).
DROP FUNCTION IF EXISTS orderly.template_placeholders(text);
CREATE OR REPLACE FUNCTION admin.template_placeholders(kind text) RETURNS text[]
LANGUAGE sql IMMUTABLE SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
    SELECT ARRAY['order', 'customer'] || CASE $1
        WHEN 'order.status' THEN ARRAY['status', 'status_label', 'at', 'tracking']
        WHEN 'order.cancelled' THEN ARRAY['status', 'status_label', 'at', 'fee']
        WHEN 'order.delay' THEN ARRAY['reason', 'requested_date']
        ELSE ARRAY[]::text[] END
$$;

-- Admin: a template for an event kind in a language ({{name}} placeholders; see the README).
CREATE OR REPLACE FUNCTION admin.set_message_template(kind text, language text, subject text, body text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    v_before  jsonb;
    v_unknown text;
BEGIN
    -- The kinds e-mailed are those the product ships templates for (order.status, order.delay):
    -- a template for another kind would never be sent.
    IF NOT EXISTS (SELECT 1 FROM orderly.message_templates t WHERE t.kind = set_message_template.kind) THEN
        RAISE EXCEPTION 'no e-mail is sent for "%"; templates are for: %', orderly.for_message(kind),
            (SELECT string_agg(DISTINCT t.kind, ', ' ORDER BY t.kind) FROM orderly.message_templates t) USING ERRCODE = 'OL400';
    END IF;
    IF language IS NULL OR NOT orderly.is_language(language) THEN
        RAISE EXCEPTION 'language must be a two-letter ISO 639-1 code (en, de, fr, …)' USING ERRCODE = 'OL400';
    END IF;
    IF subject IS NULL OR length(btrim(subject)) NOT BETWEEN 1 AND 200 OR NOT orderly.shows_on_one_line(subject) THEN
        RAISE EXCEPTION 'subject must be 1 to 200 characters on one line, without control or direction-override characters'
            USING ERRCODE = 'OL400';
    END IF;
    IF body IS NULL OR btrim(body) = '' OR length(body) > 20000 OR orderly.hides_text(body) THEN
        RAISE EXCEPTION 'body must be 1 to 20 000 characters, without control (line breaks and tabs excepted) or direction-override characters'
            USING ERRCODE = 'OL400';
    END IF;
    -- A misspelt placeholder would be sent as an empty string: refused, naming the ones there are.
    SELECT string_agg(DISTINCT m[1], ', ') INTO v_unknown
    FROM regexp_matches(subject || ' ' || body, '\{\{([^}]*)\}\}', 'g') m
    WHERE NOT m[1] = ANY (admin.template_placeholders(kind));
    IF v_unknown IS NOT NULL THEN
        RAISE EXCEPTION 'unknown placeholder(s) {{%}} for %; a % template may use: {{%}}', v_unknown, kind, kind,
            array_to_string(admin.template_placeholders(kind), '}}, {{') USING ERRCODE = 'OL400';
    END IF;
    SELECT to_jsonb(t) INTO v_before FROM orderly.message_templates t
    WHERE t.kind = set_message_template.kind AND t.language = lower(set_message_template.language) FOR UPDATE;
    INSERT INTO orderly.message_templates AS t (kind, language, subject, body)
    VALUES (set_message_template.kind, lower(set_message_template.language), set_message_template.subject, set_message_template.body)
    ON CONFLICT ON CONSTRAINT message_templates_pkey DO UPDATE SET subject = excluded.subject, body = excluded.body;
    PERFORM orderly.audit(NULL, 'message_template.set', 'message_template', kind || '/' || lower(language), v_before,
                          jsonb_build_object('subject', subject, 'body', body), actor_kind => 'admin_sql');
END
$$;

-- Admin: a language's template goes; English stays (the fallback for every customer).
CREATE OR REPLACE FUNCTION admin.remove_message_template(kind text, language text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    t orderly.message_templates;
BEGIN
    IF lower(language) = 'en' THEN
        RAISE EXCEPTION 'the English template is every customer''s fallback: change it (admin.set_message_template), do not remove it'
            USING ERRCODE = 'OL409';
    END IF;
    DELETE FROM orderly.message_templates x WHERE x.kind = remove_message_template.kind AND x.language = lower(remove_message_template.language)
    RETURNING * INTO t;
    IF t.kind IS NOT NULL THEN
        PERFORM orderly.audit(NULL, 'message_template.remove', 'message_template', t.kind || '/' || t.language, to_jsonb(t), NULL,
                              actor_kind => 'admin_sql');
    END IF;
    RETURN t.kind IS NOT NULL;
END
$$;

CREATE OR REPLACE VIEW admin.message_templates AS
SELECT t.kind, t.language, t.subject, t.body, admin.template_placeholders(t.kind) AS placeholders
FROM orderly.message_templates t;

COMMENT ON VIEW admin.message_templates IS 'Customer e-mail templates per event kind and language, with the {{placeholders}} each kind may use';

COMMENT ON FUNCTION admin.remove_message_template(text, text) IS
    'Remove an e-mail template in a language other than English (audited); customers of that language then get English';
COMMENT ON FUNCTION admin.retry_outbox(bigint) IS 'Send a failed customer e-mail again (audited)';
COMMENT ON FUNCTION admin.template_placeholders(text) IS 'The {{placeholders}} an e-mail template of an event kind may use';
COMMENT ON FUNCTION admin.set_message_template(text, text, text, text) IS
    'Create or change the e-mail template of an event kind in a language: {{order}}, {{customer}}, … (audited)';

-- Admin: what a customer's e-mail says beside its template, in a language other than English:
-- orderly.customer_wording (a status label, status.<code>; the line before a tracking URL,
-- tracking_link) and the delay reasons (orderly.risk_reason_texts). English is built in
-- (order_statuses.customer_label, risk_reasons.customer_text); a missing row reads English.
-- NULL text removes a row. Audited as the admin's.

-- The language such wording is set for: two letters, lower-cased, and not English (english: where
-- the English wording is, for the refusal).
CREATE OR REPLACE FUNCTION orderly.wording_language(language text, english text) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v text := lower(btrim(language));
BEGIN
    IF v IS NULL OR NOT orderly.is_language(v) THEN
        RAISE EXCEPTION 'language must be a two-letter ISO 639-1 code like de' USING ERRCODE = 'OL400';
    END IF;
    IF v = 'en' THEN
        RAISE EXCEPTION 'English is %; give another language', english USING ERRCODE = 'OL409';
    END IF;
    RETURN v;
END
$$;

CREATE OR REPLACE FUNCTION admin.set_customer_wording(key text, language text, text text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    v_lang   text;
    v_before orderly.customer_wording;
BEGIN
    IF key IS NULL OR NOT (key IN ('tracking_link', 'cancellation_fee')
                           OR EXISTS (SELECT 1 FROM orderly.order_statuses s WHERE 'status.' || s.code = set_customer_wording.key)) THEN
        RAISE EXCEPTION 'key must be tracking_link, cancellation_fee or status.<status>, like status.shipped' USING ERRCODE = 'OL400';
    END IF;
    v_lang := orderly.wording_language(set_customer_wording.language,
                                       'built in (the status labels of order_statuses, "Track your parcel:")');
    IF set_customer_wording.text IS NOT NULL
       AND (length(btrim(set_customer_wording.text)) NOT BETWEEN 1 AND 200 OR NOT orderly.shows_on_one_line(set_customer_wording.text)) THEN
        RAISE EXCEPTION 'text must be 1 to 200 characters on one line, without control or direction-override characters' USING ERRCODE = 'OL400';
    END IF;
    SELECT * INTO v_before FROM orderly.customer_wording w WHERE w.key = set_customer_wording.key AND w.language = v_lang FOR UPDATE;
    IF set_customer_wording.text IS NULL THEN
        DELETE FROM orderly.customer_wording w WHERE w.key = set_customer_wording.key AND w.language = v_lang;
    ELSE
        INSERT INTO orderly.customer_wording AS w (key, language, text) VALUES (set_customer_wording.key, v_lang, btrim(set_customer_wording.text))
        ON CONFLICT ON CONSTRAINT customer_wording_pkey DO UPDATE SET text = excluded.text;
    END IF;
    PERFORM orderly.audit(NULL, 'customer_wording.set', 'customer_wording', set_customer_wording.key || '/' || v_lang,
                          CASE WHEN v_before.key IS NOT NULL THEN to_jsonb(v_before) END,
                          CASE WHEN set_customer_wording.text IS NOT NULL THEN jsonb_build_object('text', btrim(set_customer_wording.text)) END,
                          actor_kind => 'admin_sql');
END
$$;

CREATE OR REPLACE FUNCTION admin.set_risk_reason_text(reason text, language text, customer_text text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    v_lang   text;
    v_before orderly.risk_reason_texts;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM orderly.risk_reasons r WHERE r.code = set_risk_reason_text.reason) THEN
        RAISE EXCEPTION 'reason must be one of: %', (SELECT string_agg(r.code, ', ' ORDER BY r.code) FROM orderly.risk_reasons r)
            USING ERRCODE = 'OL400';
    END IF;
    v_lang := orderly.wording_language(set_risk_reason_text.language, 'orderly.risk_reasons.customer_text');
    IF set_risk_reason_text.customer_text IS NOT NULL
       AND (length(btrim(set_risk_reason_text.customer_text)) NOT BETWEEN 1 AND 500
            OR NOT orderly.shows_on_one_line(set_risk_reason_text.customer_text)) THEN
        RAISE EXCEPTION 'customer_text must be 1 to 500 characters on one line, without control or direction-override characters'
            USING ERRCODE = 'OL400';
    END IF;
    SELECT * INTO v_before FROM orderly.risk_reason_texts t WHERE t.reason = set_risk_reason_text.reason AND t.language = v_lang FOR UPDATE;
    IF set_risk_reason_text.customer_text IS NULL THEN
        DELETE FROM orderly.risk_reason_texts t WHERE t.reason = set_risk_reason_text.reason AND t.language = v_lang;
    ELSE
        INSERT INTO orderly.risk_reason_texts AS t (reason, language, customer_text)
        VALUES (set_risk_reason_text.reason, v_lang, btrim(set_risk_reason_text.customer_text))
        ON CONFLICT ON CONSTRAINT risk_reason_texts_pkey DO UPDATE SET customer_text = excluded.customer_text;
    END IF;
    PERFORM orderly.audit(NULL, 'risk_reason_text.set', 'risk_reason', set_risk_reason_text.reason || '/' || v_lang,
                          CASE WHEN v_before.reason IS NOT NULL THEN to_jsonb(v_before) END,
                          CASE WHEN set_risk_reason_text.customer_text IS NOT NULL
                               THEN jsonb_build_object('customer_text', btrim(set_risk_reason_text.customer_text)) END,
                          actor_kind => 'admin_sql');
END
$$;

CREATE OR REPLACE VIEW admin.customer_wording AS
SELECT w.key, w.language, w.text FROM orderly.customer_wording w;
CREATE OR REPLACE VIEW admin.risk_reason_texts AS
SELECT t.reason, t.language, t.customer_text FROM orderly.risk_reason_texts t;

COMMENT ON VIEW admin.customer_wording IS 'What customer e-mails say beside their templates, per language other than English';
COMMENT ON VIEW admin.risk_reason_texts IS 'What customers are told of a delay reason, per language other than English';
COMMENT ON FUNCTION admin.set_customer_wording(text, text, text) IS
    'Set (or with NULL remove) a status label or the tracking line of customer e-mails in a language other than English (audited)';
COMMENT ON FUNCTION admin.set_risk_reason_text(text, text, text) IS
    'Set (or with NULL remove) what customers of a language other than English are told of a delay reason (audited)';
