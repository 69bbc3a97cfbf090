-- Orderly: what a customer login may see of a document (issue 11). Customers see customer
-- documents: never staff usernames or display names, internal notes, credit limits or approval
-- internals (rules, steps, approving roles, approvers, comments, due times, reminders). Staff
-- see every document whole.
--
-- Built one way: the staff document is made as before, then orderly.visible_doc keeps of it, for
-- a customer login, only the keys that orderly.customer_shape allows for its kind, recursively.
-- A key missing from the allow-list is left out, so a key added to a document later stays
-- hidden from customers until it is added here. Every reply a customer login can get passes
-- through it: ORDER SHOW, LIST, QUOTE, NOTE, DRAFT, UPDATE, LINE ADD/SET/REMOVE, CREATE and
-- SUBMIT (R__140_orders.sql, R__170_order_submission.sql), SHIPMENT SHOW, LIST, ROUTE, CREATE and
-- DELIVERED (R__190_shipments.sql), PRODUCT PRICE (R__120_pricing.sql),
-- CUSTOMER SHOW (R__100_customers.sql), and INBOX rows and pushed events addressed to a
-- customer (orderly.notification_doc, R__050_notifications.sql).
--
-- Who did something ("by", "created_by", "submitted_by", "override_by") is shown to a customer
-- by username only for its own logins; anybody else is "staff".

-- Who is a customer login: orderly.own_customer (R__010_helpers.sql: the registry and
-- authentication read it too).

-- The allow-list -------------------------------------------------------------------------------

-- The keys a customer may see of one kind of document, the one place they are listed: key →
-- "keep" (the value as it is), "actor" (a username: see orderly.customer_actor), "staff" (shown
-- as "staff"), "explanation" (a pricing explanation: see orderly.customer_explanation), "as:other"
-- (the value of the document's key other instead: a change's decision_reason is staff's, its
-- customer_reason what the customer is told), or the
-- kind of the object (or of each element of the array) under the key; a
-- kind "prefix@key" is the prefix and the value of the document's own key ("event:@kind"), and
-- a kind without an allow-list shows as {}. "$only": {key: [values]} keeps an object (an array
-- element) only when its key has one of the values. NULL: no such kind.
--
-- Left out on purpose: an order's "approval" (its pending step) and each history entry's
-- "reason" (rule names, step counts, approvers' reasons); approvers in events ("approved_by",
-- "rejected_by", "step", "of", "role", "reason", "due_at"); a hold's reason and the status it was
-- held from (order.on_hold: a credit limit is finance's business); the customer's credit limit
-- (CUSTOMER SHOW's "terms" keep only the payment terms), and the reason staff gave for a manual
-- price (its explanation step keeps the price, not the reason). Kept whole: the rest of the
-- pricing engine's explanation, options, params and bundle components, which name no user
-- (PRODUCT PRICE shows them to everybody). Note kinds: delivery, packaging and general are
-- instructions about the order, which customers write too; a new kind stays internal until it is
-- listed here.
CREATE OR REPLACE FUNCTION orderly.customer_shape(kind text) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT (CASE $1
    WHEN 'order' THEN '{"id":"keep", "status":"keep", "status_label":"keep", "type":"keep",
        "customer":"order_customer", "ship_to":"address", "requested_date":"keep", "coupon":"keep",
        "currency":"keep", "lines":"order_line", "totals":"order_totals", "notes":"order_note",
        "history":"order_history", "created_by":"actor", "created_at":"keep", "submitted_by":"actor",
        "submitted_at":"keep", "priced_at":"keep", "payment_terms":"keep", "payment_status":"keep", "paid":"keep", "refunded":"keep",
        "open_amount":"keep", "payments":"order_payment", "shipments":"order_shipment", "timeline":"order_milestone",
        "refund_due":"keep", "cancellations":"order_cancellation", "version":"keep", "pending_change":"keep"}'
    WHEN 'order_cancellation' THEN '{"id":"keep", "status":"keep", "reason":"keep", "fee":"keep", "lines":"keep",
        "requested_at":"keep", "decided_at":"keep"}'
    WHEN 'order_payment' THEN '{"id":"keep", "kind":"keep", "amount":"keep", "method":"keep", "reference":"keep",
        "received_at":"keep"}'
    WHEN 'order_shipment' THEN '{"id":"keep", "carrier":"shipment_carrier", "service":"keep", "tracking_no":"keep",
        "tracking_url":"keep", "parcels":"keep", "status":"keep", "shipped_at":"keep", "delivered_at":"keep",
        "signed_by":"keep", "tracking_code":"keep", "tracking_at":"keep", "eta":"keep", "lines":"shipment_line"}'
    WHEN 'order_milestone' THEN '{"event":"keep", "at":"keep", "shipment":"keep", "carrier":"keep",
        "tracking_no":"keep", "tracking_url":"keep", "signed_by":"keep"}'
    WHEN 'order_customer' THEN '{"id":"keep", "name":"keep", "email":"keep", "phone":"keep",
        "company":"keep", "segment":"keep"}'
    -- A product as a customer sees it: what it can buy now (available), not the stock the
    -- warehouse holds or what other customers' orders have reserved.
    WHEN 'product' THEN '{"code":"keep", "name":"keep", "kind":"keep", "category":"keep", "base_price":"keep",
        "currency":"keep", "active":"keep", "available":"keep", "id":"keep", "description":"keep", "formula":"keep",
        "params":"keep", "options":"keep", "skus":"product_sku", "components":"keep", "created_at":"keep", "updated_at":"keep"}'
    WHEN 'product_sku' THEN '{"sku":"keep", "sku_id":"keep", "options":"keep", "active":"keep", "available":"keep"}'
    WHEN 'address' THEN '{"id":"keep", "customer":"keep", "label":"keep", "recipient":"keep",
        "phone":"keep", "line1":"keep", "line2":"keep", "city":"keep", "region":"keep",
        "postal_code":"keep", "country":"keep", "default":"keep", "removed_at":"keep"}'
    WHEN 'order_line' THEN '{"line":"keep", "product":"keep", "sku":"keep", "name":"keep", "kind":"keep",
        "qty":"keep", "cancelled":"keep", "options":"keep", "params":"keep", "list_price":"keep", "gross":"keep",
        "discount":"keep", "net":"keep", "tax_rate":"keep", "tax":"keep", "override":"keep",
        "override_by":"actor", "components":"keep", "explanation":"explanation"}'
    WHEN 'order_totals' THEN '{"subtotal":"keep", "discount":"keep", "net":"keep", "tax":"keep", "total":"keep",
        "cancelled":"keep", "charges":"keep", "due":"keep"}'
    WHEN 'cancellation' THEN '{"id":"keep", "order":"keep", "status":"keep", "message":"keep", "reason":"keep",
        "lines":"cancel_line", "whole_order":"keep", "cancelled_value":"keep", "fee":"keep", "currency":"keep",
        "policy":"cancel_policy", "refund_due":"keep", "open_amount":"keep", "payment_status":"keep",
        "order_status":"keep", "requested_by":"actor", "requested_at":"keep", "decided_at":"keep",
        "decision_reason":"keep"}'
    WHEN 'cancellation_quote' THEN '{"status":"keep", "outcome":"keep", "message":"keep", "order":"keep",
        "order_status":"keep", "currency":"keep", "policy":"cancel_policy", "lines":"cancel_line",
        "whole_order":"keep", "cancelled_value":"keep", "fee":"keep", "owed_before":"keep", "owed_after":"keep",
        "paid":"keep", "open_amount":"keep", "refund_due":"keep"}'
    WHEN 'cancel_line' THEN '{"line":"keep", "product":"keep", "sku":"keep", "name":"keep", "kind":"keep",
        "qty":"keep", "of":"keep", "shipped":"keep", "value":"keep", "whole_line":"keep"}'
    WHEN 'cancel_policy' THEN '{"status":"keep", "fee_percent":"keep", "fee_basis":"keep", "fee_fixed":"keep",
        "fee_min":"keep", "fee_max":"keep", "currency":"keep", "note":"keep"}'
    WHEN 'order_note' THEN '{"id":"keep", "kind":"keep", "text":"keep", "by":"actor", "at":"keep",
        "$only":{"kind":["delivery", "packaging", "general"], "visibility":["customer"]}}'
    WHEN 'order_history' THEN '{"from":"keep", "to":"keep", "by":"actor", "at":"keep"}'
    WHEN 'order_summary' THEN '{"id":"keep", "status":"keep", "type":"keep", "customer":"keep",
        "customer_name":"keep", "lines":"keep", "total":"keep", "due":"keep", "currency":"keep", "requested_date":"keep",
        "created_by":"actor", "created_at":"keep", "submitted_at":"keep"}'
    WHEN 'shipment' THEN '{"id":"keep", "order":"keep", "order_status":"keep", "status":"keep",
        "carrier":"shipment_carrier", "service":"keep", "tracking_no":"keep", "tracking_url":"keep",
        "parcels":"keep", "lines":"shipment_line", "shipped_at":"keep", "shipped_by":"actor",
        "delivered_at":"keep", "signed_by":"keep", "tracking":"shipment_tracking", "eta":"keep", "eta_source":"keep"}'
    WHEN 'shipment_tracking' THEN '{"code":"keep", "at":"keep", "location":"keep"}'
    WHEN 'route' THEN '{"type":"keep", "features":"route_feature"}'
    WHEN 'route_feature' THEN '{"type":"keep", "geometry":"keep", "properties":"route_properties"}'
    WHEN 'route_properties' THEN '{"kind":"keep", "shipment":"keep", "carrier":"keep", "tracking_no":"keep", "status":"keep",
        "from":"keep", "to":"keep", "code":"keep", "at":"keep", "location":"keep"}'
    WHEN 'shipment_carrier' THEN '{"code":"keep", "name":"keep"}'
    WHEN 'shipment_line' THEN '{"line":"keep", "product":"keep", "sku":"keep", "name":"keep", "qty":"keep"}'
    WHEN 'quote' THEN '{"currency":"keep", "customer":"keep", "segment":"keep", "coupon":"keep",
        "ship_to":"keep", "tax":"keep", "lines":"quote_line", "subtotal":"keep", "discount_total":"keep",
        "tax_total":"keep", "total":"keep", "priced_at":"keep"}'
    WHEN 'quote_line' THEN '{"line":"keep", "product":"keep", "sku":"keep", "name":"keep", "kind":"keep",
        "qty":"keep", "options":"keep", "params":"keep", "list_price":"keep", "gross":"keep",
        "discount":"keep", "net":"keep", "tax_rate":"keep", "tax":"keep", "override":"keep",
        "components":"keep", "explanation":"explanation"}'
    WHEN 'customer' THEN '{"id":"keep", "name":"keep", "email":"keep", "phone":"keep", "company":"keep",
        "segment":"keep", "region":"keep", "language":"keep", "created_at":"keep", "updated_at":"keep",
        "addresses":"address", "orders":"customer_orders", "terms":"customer_terms"}'
    WHEN 'customer_terms' THEN '{"payment_terms":"keep"}'
    WHEN 'customer_orders' THEN '{"count":"keep", "drafts":"keep", "totals":"customer_totals", "last_order_at":"keep"}'
    WHEN 'customer_totals' THEN '{"currency":"keep", "orders":"keep", "amount":"keep"}'
    WHEN 'notification' THEN '{"id":"keep", "kind":"keep", "read":"keep", "payload":"event:@kind",
        "created_at":"keep", "recipient":"keep"}'
    WHEN 'event:approval.approved' THEN '{"order":"keep", "customer":"keep", "total":"keep", "currency":"keep", "type":"keep"}'
    WHEN 'event:approval.rejected' THEN '{"order":"keep", "customer":"keep", "total":"keep", "currency":"keep", "type":"keep"}'
    WHEN 'event:admin.notice' THEN '{"message":"keep", "from":"staff"}'
    WHEN 'payment' THEN '{"id":"keep", "order":"keep", "kind":"keep", "amount":"keep", "currency":"keep",
        "method":"keep", "reference":"keep", "received_at":"keep", "recorded_by":"actor", "recorded_at":"keep",
        "order_paid":"keep", "order_refunded":"keep", "open_amount":"keep", "payment_status":"keep"}'
    WHEN 'order_change' THEN '{"id":"keep", "order":"keep", "status":"keep", "message":"keep", "waiting_for":"keep",
        "version":"keep", "reason":"keep", "reprice":"keep", "diff":"order_diff", "total_before":"keep",
        "total_after":"keep", "currency":"keep", "requested_by":"actor", "requested_at":"keep", "decided_at":"keep",
        "decision_reason":"as:customer_reason"}'
    WHEN 'order_diff' THEN '{"order":"keep", "from":"keep", "to":"keep", "lines":"keep", "header":"keep",
        "notes":"diff_note", "totals":"keep"}'
    WHEN 'diff_note' THEN '{"id":"keep", "kind":"keep", "text":"keep", "$only":{"visibility":["customer"]}}'
    WHEN 'order_version' THEN '{"version":"keep", "change":"keep", "by":"actor", "at":"keep", "reason":"keep",
        "total_before":"keep", "total_after":"keep", "currency":"keep"}'
    WHEN 'event:order.changed' THEN '{"order":"keep", "change":"keep", "version":"keep", "reason":"keep",
        "lines":"keep", "header":"keep", "total_before":"keep", "total_after":"keep", "currency":"keep", "at":"keep"}'
    WHEN 'event:change.declined' THEN '{"order":"keep", "change":"keep", "reason":"as:customer_reason", "at":"keep"}'
    WHEN 'event:order.cancelled' THEN '{"order":"keep", "cancellation":"keep", "status":"keep", "whole_order":"keep",
        "lines":"event_cancel_line", "fee":"keep", "currency":"keep", "refund_due":"keep", "reason":"keep", "at":"keep"}'
    WHEN 'event_cancel_line' THEN '{"line":"keep", "qty":"keep", "name":"keep"}'
    WHEN 'event:cancel.rejected' THEN '{"order":"keep", "cancellation":"keep", "reason":"keep", "at":"keep"}'
    WHEN 'event:order.delay' THEN '{"order":"keep", "reason_text":"keep", "requested_date":"keep", "at":"keep"}'
    WHEN 'event:order.status' THEN '{"order":"keep", "status":"keep", "status_label":"keep", "at":"keep"}'
    WHEN 'event:order.on_hold' THEN '{"order":"keep", "at":"keep"}'
    WHEN 'event:payment.received' THEN '{"order":"keep", "payment":"keep", "amount":"keep", "currency":"keep",
        "method":"keep", "reference":"keep", "received_at":"keep", "payment_status":"keep", "open_amount":"keep"}'
    WHEN 'event:payment.refunded' THEN '{"order":"keep", "payment":"keep", "amount":"keep", "currency":"keep",
        "method":"keep", "reference":"keep", "received_at":"keep", "payment_status":"keep", "open_amount":"keep"}'
    END)::jsonb
$$;

-- Who did something, as a customer sees it: a login of its own customer by its username,
-- anybody else as "staff". NULL stays NULL.
CREATE OR REPLACE FUNCTION orderly.customer_actor(username text, customer_id bigint) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF username IS NULL THEN
        RETURN NULL;
    END IF;
    IF EXISTS (SELECT 1 FROM orderly.users u
               WHERE lower(u.username) = lower(customer_actor.username) AND u.customer_id = customer_actor.customer_id) THEN
        RETURN username;
    END IF;
    RETURN 'staff';
END
$$;

-- Whether customers receive events of this kind: those it has a view of (api.notify sends a
-- customer's login no other; INBOX lists it no other). An expression, inlined where it is used.
CREATE OR REPLACE FUNCTION orderly.customer_event(kind text) RETURNS boolean
LANGUAGE sql IMMUTABLE
AS $$ SELECT orderly.customer_shape('event:' || $1) IS NOT NULL $$;

-- A pricing explanation (orderly.explanation_doc's steps) as a customer sees it: a manual price's
-- step without the reason staff gave for it, in its key or at the end of its text (where
-- orderly.override_step puts it, after ": "); every other step as it is, in its own key order.
CREATE OR REPLACE FUNCTION orderly.customer_explanation(steps json) RETURNS json
LANGUAGE sql IMMUTABLE
AS $$
    SELECT CASE WHEN json_typeof($1) IS DISTINCT FROM 'array' THEN $1 ELSE coalesce((
        SELECT json_agg(CASE WHEN s.value ->> 'step' = 'override'
                             THEN (SELECT json_object_agg(k.key,
                                              CASE WHEN k.key = 'text' AND right(k.value #>> '{}', length(': ' || r.reason)) = ': ' || r.reason
                                                   THEN to_json(left(k.value #>> '{}', -length(': ' || r.reason)))
                                                   ELSE k.value END ORDER BY k.n)
                                   FROM json_each(s.value) WITH ORDINALITY AS k(key, value, n),
                                        (SELECT s.value ->> 'reason' AS reason) r
                                   WHERE k.key <> 'reason')
                             ELSE s.value END ORDER BY s.n)
        FROM json_array_elements($1) WITH ORDINALITY AS s(value, n)), '[]'::json) END
$$;

-- doc (a document of the given kind, or an array of them) as the viewer sees it: whole for
-- staff (own_customer NULL, see orderly.own_customer), else only what orderly.customer_shape
-- allows, in the document's own key order. An object that "$only" excludes is SQL NULL (left
-- out of an array). A kind without an allow-list is a bug, not something to show.
CREATE OR REPLACE FUNCTION orderly.visible_doc(kind text, doc json, own_customer bigint) RETURNS json
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_shape jsonb;
    v_out   json;
BEGIN
    IF own_customer IS NULL OR doc IS NULL OR json_typeof(doc) = 'null' THEN
        RETURN doc;
    END IF;
    v_shape := orderly.customer_shape(kind);
    IF v_shape IS NULL THEN
        RAISE EXCEPTION 'no customer view of % documents', kind;
    END IF;
    IF json_typeof(doc) = 'array' THEN
        RETURN (SELECT coalesce(json_agg(x.v ORDER BY x.n), '[]')
                FROM (SELECT orderly.visible_doc(kind, e.value, own_customer) AS v, e.n
                      FROM json_array_elements(doc) WITH ORDINALITY AS e(value, n)) x
                WHERE x.v IS NOT NULL);
    ELSIF json_typeof(doc) <> 'object' THEN
        RETURN NULL;
    END IF;
    IF EXISTS (SELECT 1 FROM jsonb_each(coalesce(v_shape -> '$only', '{}')) c
               WHERE NOT coalesce(c.value ? (doc ->> c.key), false)) THEN
        RETURN NULL;
    END IF;
    SELECT json_object_agg(e.key,
               CASE r.rule
               WHEN 'keep' THEN e.value
               WHEN 'actor' THEN to_json(orderly.customer_actor(e.value #>> '{}', own_customer))
               WHEN 'staff' THEN CASE WHEN json_typeof(e.value) = 'null' THEN e.value ELSE to_json('staff'::text) END
               WHEN 'explanation' THEN orderly.customer_explanation(e.value)
               WHEN 'as' THEN coalesce(doc -> r.sub, 'null'::json)
               ELSE CASE WHEN r.rule LIKE '%@%' AND orderly.customer_shape(r.sub) IS NULL THEN '{}'::json
                         ELSE orderly.visible_doc(r.sub, e.value, own_customer) END
               END ORDER BY e.n)
    INTO v_out
    FROM json_each(doc) WITH ORDINALITY AS e(key, value, n)
    CROSS JOIN LATERAL (SELECT CASE WHEN v_shape ->> e.key LIKE 'as:%' THEN 'as' ELSE v_shape ->> e.key END AS rule,
                               CASE WHEN v_shape ->> e.key LIKE 'as:%' THEN substr(v_shape ->> e.key, 4)
                                    WHEN v_shape ->> e.key LIKE '%@%'
                                    THEN split_part(v_shape ->> e.key, '@', 1) || (doc ->> split_part(v_shape ->> e.key, '@', 2))
                                    ELSE v_shape ->> e.key END AS sub) r
    WHERE r.rule IS NOT NULL AND left(e.key, 1) <> '$';
    RETURN coalesce(v_out, '{}'::json);
END
$$;
