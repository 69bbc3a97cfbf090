-- Orderly: customers and their addresses (CUSTOMER CREATE/UPDATE/SHOW/FIND, ADDRESS
-- ADD/UPDATE/REMOVE) and linking a customer's login to its customer (admin.link_customer).
--
-- Who sees which customer: staff with customer.read see all of them. A login linked to a
-- customer, and any holder of the "customer" role, sees only its own customer; another id is
-- "not found" for them (not "forbidden": they may not even learn that it exists). A customer
-- role without a link sees no customer at all. Who sees which order is here too
-- (orderly.order_visible): CUSTOMER SHOW's summary counts only the orders its caller sees.

-- Validation -----------------------------------------------------------------------------------

-- E.164: "+", country code, subscriber number; 7 to 15 digits. People type spaces, dashes, dots
-- and parentheses, and "00" for "+"; those are accepted and dropped.
CREATE OR REPLACE FUNCTION orderly.normalize_phone(field text, value text) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v text := regexp_replace(btrim(value), '[[:space:]().-]', '', 'g');
BEGIN
    IF v LIKE '00%' THEN
        v := '+' || substr(v, 3);
    END IF;
    IF v IS NULL OR v !~ '^\+[1-9][0-9]{6,14}$' THEN
        RAISE EXCEPTION '% must be an international phone number, like +49 30 1234567', field
            USING ERRCODE = 'OL400';
    END IF;
    RETURN v;
END
$$;

-- Deliberately simple: one "@", no spaces, a dot in the domain. Whether the mailbox exists is
-- not something a pattern can tell.
CREATE OR REPLACE FUNCTION orderly.normalize_email(value text) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v text := btrim(value);
BEGIN
    IF v IS NULL OR length(v) > 254
       OR v !~ '^[^@[:space:][:cntrl:]]+@[^@[:space:][:cntrl:]]+\.[^@[:space:][:cntrl:]]+$' THEN
        RAISE EXCEPTION 'email must be an e-mail address, like anna@example.com' USING ERRCODE = 'OL400';
    END IF;
    RETURN v;
END
$$;

-- A free-text field: trimmed, 1 to max_length characters, one line. NULL stays NULL.
CREATE OR REPLACE FUNCTION orderly.clean_text(field text, value text, max_length integer) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v text := btrim(value);
BEGIN
    IF v IS NULL THEN
        RETURN NULL;
    END IF;
    IF v = '' OR length(v) > max_length OR v ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION '% must be 1 to % characters on one line', field, max_length USING ERRCODE = 'OL400';
    END IF;
    -- Something one can see: a name of no-break spaces, fillers or joiners reads as blank.
    IF NOT orderly.shows_something(v) THEN
        RAISE EXCEPTION '% must have a character one can see', field USING ERRCODE = 'OL400';
    END IF;
    RETURN v;
END
$$;

CREATE OR REPLACE FUNCTION orderly.check_segment(value text) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v text := lower(btrim(value));
BEGIN
    IF v IS NOT NULL AND v !~ '^[a-z][a-z0-9_]{0,31}$' THEN
        RAISE EXCEPTION 'segment must be a lowercase word like "wholesale" (letters, digits, "_")'
            USING ERRCODE = 'OL400';
    END IF;
    RETURN v;
END
$$;

CREATE OR REPLACE FUNCTION orderly.check_country(value text) RETURNS char(2)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v text := upper(btrim(value));
BEGIN
    IF v IS NULL OR NOT EXISTS (SELECT 1 FROM orderly.countries c WHERE c.code = v) THEN
        RAISE EXCEPTION 'country must be an ISO 3166-1 code, like DE or US' USING ERRCODE = 'OL400';
    END IF;
    RETURN v;
END
$$;

CREATE OR REPLACE FUNCTION orderly.check_postal_code(value text) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v text := btrim(value);
BEGIN
    IF v IS NULL OR v !~ '^[A-Za-z0-9][A-Za-z0-9 -]{0,15}$' THEN
        RAISE EXCEPTION 'postal_code must be up to 16 letters, digits, spaces or "-"' USING ERRCODE = 'OL400';
    END IF;
    RETURN v;
END
$$;

-- One argument of CUSTOMER CREATE/UPDATE, checked and normalized: the one place each field's
-- rule is written, so that creating and updating cannot drift apart. company and region are
-- optional (blank clears them); a blank segment is "standard".
CREATE OR REPLACE FUNCTION orderly.customer_field(args jsonb, key text) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    CASE key
    WHEN 'name' THEN
        RETURN orderly.clean_text('name', orderly.arg_text(args, 'name', true), 200);
    WHEN 'email' THEN
        RETURN orderly.normalize_email(orderly.arg_text(args, 'email', true));
    WHEN 'phone' THEN
        RETURN orderly.normalize_phone('phone', orderly.arg_text(args, 'phone', true));
    WHEN 'company' THEN
        RETURN orderly.clean_text('company', nullif(btrim(orderly.arg_text(args, 'company')), ''), 200);
    WHEN 'segment' THEN
        RETURN coalesce(orderly.check_segment(nullif(btrim(orderly.arg_text(args, 'segment')), '')), 'standard');
    WHEN 'region' THEN
        RETURN orderly.clean_text('region', nullif(btrim(orderly.arg_text(args, 'region')), ''), 100);
    WHEN 'language' THEN
        -- The language of the customer's e-mail (orderly.message_templates); English by default.
        IF NOT orderly.is_language(coalesce(orderly.arg_text(args, 'language'), 'en')) THEN
            RAISE EXCEPTION 'language must be a two-letter ISO 639-1 code, like en or de' USING ERRCODE = 'OL400';
        END IF;
        RETURN coalesce(lower(btrim(orderly.arg_text(args, 'language'))), 'en');
    END CASE;
END
$$;

-- The same for ADDRESS ADD/UPDATE: label and line2 are optional (blank clears them), every other
-- field is required.
CREATE OR REPLACE FUNCTION orderly.address_field(args jsonb, key text) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    CASE key
    WHEN 'label' THEN
        RETURN orderly.clean_text('label', nullif(btrim(orderly.arg_text(args, 'label')), ''), 64);
    WHEN 'recipient' THEN
        RETURN orderly.clean_text('recipient', orderly.arg_text(args, 'recipient', true), 200);
    WHEN 'phone' THEN
        RETURN orderly.normalize_phone('phone', orderly.arg_text(args, 'phone', true));
    WHEN 'line1' THEN
        RETURN orderly.clean_text('line1', orderly.arg_text(args, 'line1', true), 200);
    WHEN 'line2' THEN
        RETURN orderly.clean_text('line2', nullif(btrim(orderly.arg_text(args, 'line2')), ''), 200);
    WHEN 'city' THEN
        RETURN orderly.clean_text('city', orderly.arg_text(args, 'city', true), 100);
    WHEN 'region' THEN
        RETURN orderly.clean_text('region', orderly.arg_text(args, 'region', true), 100);
    WHEN 'postal_code' THEN
        RETURN orderly.check_postal_code(orderly.arg_text(args, 'postal_code', true));
    WHEN 'country' THEN
        RETURN orderly.check_country(orderly.arg_text(args, 'country', true));
    END CASE;
END
$$;

-- Who may see which customer -------------------------------------------------------------------

-- Whether u is a customer login, and which customer's: orderly.own_customer (R__045_customer_view.sql).

-- No SET search_path (every name is qualified), so that it is inlined.
CREATE OR REPLACE FUNCTION orderly.customer_visible(u orderly.users, customer_id bigint) RETURNS boolean
LANGUAGE sql STABLE
AS $$
    SELECT coalesce(orderly.own_customer($1) = $2, true)
$$;

-- Who sees which order: a customer login its customer's orders, order.read_all every order,
-- order.read alone the orders one created (a sales rep's own). Here rather than with the
-- orders (R__140_orders.sql) because CUSTOMER SHOW's summary counts only the orders its caller
-- sees. NULL: u sees every order of each customer u sees (orderly.customer_visible); otherwise
-- u's id: u sees only the orders u created.
CREATE OR REPLACE FUNCTION orderly.order_creator_scope(u orderly.users) RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF orderly.own_customer(u) IS NOT NULL OR orderly.has_permission(u.id, 'order.read_all') THEN
        RETURN NULL;
    END IF;
    RETURN u.id;
END
$$;

-- The same rule for one order.
CREATE OR REPLACE FUNCTION orderly.order_visible(u orderly.users, o orderly.orders) RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_only bigint := orderly.order_creator_scope(u);
BEGIN
    RETURN orderly.customer_visible(u, o.customer_id)
       AND (v_only IS NULL OR o.created_by IS NOT DISTINCT FROM v_only);
END
$$;

-- The customer row for a command, locked when it is about to change. Unknown and invisible
-- customers get the same answer.
CREATE OR REPLACE FUNCTION orderly.customer_for(u orderly.users, customer_id bigint, for_update boolean)
RETURNS orderly.customers
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c orderly.customers;
BEGIN
    IF orderly.customer_visible(u, customer_for.customer_id) THEN
        IF for_update THEN
            -- NO KEY UPDATE: no key changes here, and it must not conflict with the KEY SHARE
            -- locks that order writes take on their customer (foreign keys).
            SELECT * INTO c FROM orderly.customers x WHERE x.id = customer_for.customer_id FOR NO KEY UPDATE;
        ELSE
            SELECT * INTO c FROM orderly.customers x WHERE x.id = customer_for.customer_id;
        END IF;
    END IF;
    IF c.id IS NULL THEN
        RAISE EXCEPTION 'customer % not found', customer_for.customer_id USING ERRCODE = 'OL404';
    END IF;
    RETURN c;
END
$$;

-- Documents ------------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION orderly.customer_doc(c orderly.customers) RETURNS json
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT json_build_object(
        'id', ($1).id,
        'name', ($1).name,
        'email', ($1).email,
        'phone', ($1).phone,
        'company', ($1).company,
        'segment', ($1).segment,
        'region', ($1).region,
        'language', ($1).language,
        'created_at', orderly.json_time(($1).created_at),
        'updated_at', orderly.json_time(($1).updated_at))
$$;

-- No SET search_path (every name is qualified), so that it is inlined into its callers.
CREATE OR REPLACE FUNCTION orderly.address_doc(a orderly.addresses) RETURNS json
LANGUAGE sql STABLE
AS $$
    SELECT json_build_object(
        'id', ($1).id,
        'customer', ($1).customer_id,
        'label', ($1).label,
        'recipient', ($1).recipient,
        'phone', ($1).phone,
        'line1', ($1).line1,
        'line2', ($1).line2,
        'city', ($1).city,
        'region', ($1).region,
        'postal_code', ($1).postal_code,
        'country', ($1).country,
        'default', ($1).is_default,
        'removed_at', orderly.json_time(($1).removed_at))
$$;

-- Active addresses, the default first.
CREATE OR REPLACE FUNCTION orderly.customer_addresses(customer_id bigint) RETURNS json
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(json_agg(orderly.address_doc(a) ORDER BY a.is_default DESC, a.id), '[]')
    FROM orderly.addresses a
    WHERE a.customer_id = $1 AND a.removed_at IS NULL
$$;

-- What the customer owes for an order: its total less what was cancelled, plus charges (a
-- cancellation fee), in the order's currency (V019__cancellation.sql). An expression over
-- qualified names without SET search_path, so that the planner inlines it (a SQL function with
-- SET is planned again at every call: issue 16). Payments and documents read it too (R__138 on).
CREATE OR REPLACE FUNCTION orderly.amount_owed(o orderly.orders) RETURNS numeric
LANGUAGE sql STABLE
AS $$ SELECT ($1).total - ($1).cancelled_total + ($1).charges_total $$;

-- CUSTOMER SHOW's order summary of customer c (one u sees), over the orders u sees: how many,
-- how many drafts, and per currency (money is never summed across currencies) the orders placed
-- — past draft, not rejected — and what they amount to after cancellations (amount_owed: a
-- cancelled order counts its fee only), the newest order's creation.
DROP FUNCTION IF EXISTS orderly.customer_order_summary(bigint);
CREATE OR REPLACE FUNCTION orderly.customer_order_summary(u orderly.users, customer_id bigint) RETURNS json
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_only bigint := orderly.order_creator_scope(u);
BEGIN
    RETURN (
        WITH seen AS (
            SELECT o.status, o.currency, orderly.amount_owed(o) AS owed, o.created_at
            FROM orderly.orders o
            WHERE o.customer_id = customer_order_summary.customer_id
              AND (v_only IS NULL OR o.created_by = v_only))
        SELECT json_build_object(
            'count', (SELECT count(*) FROM seen),
            'drafts', (SELECT count(*) FROM seen WHERE seen.status = 'draft'),
            'totals', (SELECT coalesce(json_agg(json_build_object('currency', t.currency, 'orders', t.orders,
                                                                  'amount', t.amount) ORDER BY t.currency), '[]')
                       FROM (SELECT seen.currency, count(*) AS orders, sum(seen.owed) AS amount
                             FROM seen WHERE seen.status NOT IN ('draft', 'rejected') GROUP BY seen.currency) t),
            'last_order_at', orderly.json_time((SELECT max(seen.created_at) FROM seen))));
END
$$;

-- Customers ------------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION api.customer_create(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u orderly.users := orderly.begin_command('CUSTOMER CREATE', customer_create.actor, customer_create.args);
    v_replay json := orderly.replay(u, customer_create.args);
    c orderly.customers;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    BEGIN
        INSERT INTO orderly.customers (name, email, phone, company, segment, region, language, created_by)
        VALUES (orderly.customer_field(args, 'name'),
                orderly.customer_field(args, 'email'),
                orderly.customer_field(args, 'phone'),
                orderly.customer_field(args, 'company'),
                orderly.customer_field(args, 'segment'),
                orderly.customer_field(args, 'region'),
                orderly.customer_field(args, 'language'),
                u.id)
        RETURNING * INTO c;
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'a customer with e-mail % already exists',
            orderly.for_message(orderly.arg_text(args, 'email')) USING ERRCODE = 'OL409';
    END;
    PERFORM orderly.audit(u.id, 'customer.create', 'customer', c.id::text, NULL, orderly.customer_doc(c)::jsonb);
    RETURN NEXT orderly.remember(u, args, orderly.customer_doc(c));
END
$$;

SELECT orderly.register_command('CUSTOMER CREATE', 'api.customer_create', 'customer.manage',
    staff_only => 'a customer account cannot create customers',
    arguments  => 'name:text! phone:text! email:text! company:text segment:code region:text language:code',
    usage      => 'CUSTOMER CREATE name= phone= email= [company=] [segment=] [region=] [language=en]',
    summary    => 'Create a customer. Phone in international form (+49 30 1234567); e-mail unique.',
    changes    => true);

-- Only the arguments given change; an empty company or region clears it. The segment decides
-- prices, so a customer's own login may not change it.
CREATE OR REPLACE FUNCTION api.customer_update(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.begin_command('CUSTOMER UPDATE', customer_update.actor, customer_update.args);
    v_replay json := orderly.replay(u, customer_update.args);
    id       bigint := orderly.arg_bigint(args, 'id', true);
    before   orderly.customers;
    c        orderly.customers;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    before := orderly.customer_for(u, id, true);
    c := before;
    IF NOT (args ?| ARRAY['name', 'phone', 'email', 'company', 'segment', 'region', 'language']) THEN
        RAISE EXCEPTION 'nothing to update: give name, phone, email, company, segment, region or language'
            USING ERRCODE = 'OL400';
    END IF;
    IF args ? 'name' THEN c.name := orderly.customer_field(args, 'name'); END IF;
    IF args ? 'email' THEN c.email := orderly.customer_field(args, 'email'); END IF;
    IF args ? 'phone' THEN c.phone := orderly.customer_field(args, 'phone'); END IF;
    IF args ? 'company' THEN c.company := orderly.customer_field(args, 'company'); END IF;
    IF args ? 'region' THEN c.region := orderly.customer_field(args, 'region'); END IF;
    IF args ? 'language' THEN c.language := orderly.customer_field(args, 'language'); END IF;
    IF args ? 'segment' THEN
        c.segment := orderly.customer_field(args, 'segment');
        IF c.segment IS DISTINCT FROM before.segment AND orderly.own_customer(u) IS NOT NULL THEN
            RAISE EXCEPTION 'a customer account cannot change its segment' USING ERRCODE = 'OL403';
        END IF;
    END IF;
    -- E-mail addresses are unique among customers, so a customer's login trying addresses would
    -- learn which ones other customers use (taken: refused; free: changed). Its own address is
    -- changed by staff, who see the customers anyway.
    IF c.email IS DISTINCT FROM before.email AND orderly.own_customer(u) IS NOT NULL THEN
        RAISE EXCEPTION 'a customer account cannot change its e-mail address; customer service changes it' USING ERRCODE = 'OL403';
    END IF;
    -- Who the customer is, as staff find it: a login renaming its customer after another (or a
    -- look-alike) had staff pick the wrong account. Its phone, region and language are its own.
    IF (c.name IS DISTINCT FROM before.name OR c.company IS DISTINCT FROM before.company) AND orderly.own_customer(u) IS NOT NULL THEN
        RAISE EXCEPTION 'a customer account cannot change its name or company; customer service changes them' USING ERRCODE = 'OL403';
    END IF;
    BEGIN
        UPDATE orderly.customers x
        SET name = c.name, email = c.email, phone = c.phone, company = c.company,
            segment = c.segment, region = c.region, language = c.language, updated_at = now()
        WHERE x.id = c.id
        RETURNING * INTO c;
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'a customer with e-mail % already exists', orderly.for_message(c.email)
            USING ERRCODE = 'OL409';
    END;
    PERFORM orderly.audit(u.id, 'customer.update', 'customer', c.id::text,
                          orderly.customer_doc(before)::jsonb, orderly.customer_doc(c)::jsonb);
    RETURN NEXT orderly.remember(u, args, orderly.customer_doc(c));
END
$$;

SELECT orderly.register_command('CUSTOMER UPDATE', 'api.customer_update', 'customer.manage',
    arguments  => 'id:id! name:text phone:text email:text company:text segment:code region:text language:code',
    positional => '{id}',
    usage      => 'CUSTOMER UPDATE id [name=] [phone=] [email=] [company=] [segment=] [region=] [language=]',
    summary    => 'Change the fields given; an empty company or region clears it.',
    changes    => true);

-- One document: the customer, its active addresses (default first), a summary of the orders
-- the caller sees and its terms (payment terms, credit limit); a customer login sees its
-- customer view (R__045_customer_view.sql).
CREATE OR REPLACE FUNCTION api.customer_show(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u orderly.users := orderly.begin_command('CUSTOMER SHOW', customer_show.actor, customer_show.args);
    c orderly.customers;
BEGIN
    c := orderly.customer_for(u, orderly.arg_bigint(args, 'id', true), false);
    RETURN NEXT orderly.visible_doc('customer',
                                    orderly.json_extend(orderly.customer_doc(c),
                                                        json_build_object('addresses', orderly.customer_addresses(c.id),
                                                                          'orders', orderly.customer_order_summary(u, c.id),
                                                                          -- Set by CUSTOMER TERMS (R__175_holds_and_terms.sql);
                                                                          -- a customer sees its payment terms only.
                                                                          'terms', json_build_object('payment_terms', c.payment_terms,
                                                                                                     'credit_limit', c.credit_limit,
                                                                                                     'credit_currency', c.credit_currency))),
                                    orderly.own_customer(u));
END
$$;

SELECT orderly.register_command('CUSTOMER SHOW', 'api.customer_show', 'customer.read',
    arguments  => 'id:id!',
    positional => '{id}',
    usage      => 'CUSTOMER SHOW id',
    summary    => 'A customer with its addresses (default first) and an order summary.');

-- Substring search over name, e-mail and phone, at least three characters (shorter patterns
-- cannot use a trigram index). Best matches first: the exact e-mail or phone, then names
-- starting with q, then every other match by name. Measured at 1 M customers: a common term
-- ("anna", "müller", a mail domain) takes 1-4 ms instead of the 150-270 ms of fetching and
-- sorting every match, because each tier is read from an index already in its order.
CREATE OR REPLACE FUNCTION api.customer_find(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u       orderly.users := orderly.begin_command('CUSTOMER FIND', customer_find.actor, customer_find.args);
    q       text := lower(btrim(orderly.arg_text(args, 'q', true)));
    lim     integer := orderly.arg_limit(args, 20, 100);
    own     bigint := orderly.own_customer(u);
    -- A phone number is searched without its spaces and dashes, as it is stored, and 00 for +
    -- as orderly.normalize_phone stores it (0049 40 … is +4940 …).
    digits  text := CASE WHEN q ~ '^[+0-9 ().-]+$' THEN regexp_replace(regexp_replace(q, '[^+0-9]', '', 'g'), '^00', '+') END;
    pattern text;
    prefix  text;
    phone_pattern text;
    phone_prefix  text;
    got     integer := 0;
    n       integer;
    need    integer;
BEGIN
    IF length(q) < 3 THEN
        RAISE EXCEPTION 'q must be at least 3 characters' USING ERRCODE = 'OL400';
    END IF;
    prefix := orderly.like_escape(q) || '%';
    pattern := '%' || prefix;
    -- Phones are stored as + and digits, so a fragment typed with its + can only match at the
    -- start: a range scan of customers_phone_c_idx rather than the trigram index, where every
    -- German number shares the trigrams of "+49".
    IF length(digits) >= 3 THEN
        IF digits LIKE '+%' THEN
            phone_prefix := orderly.like_escape(digits) || '%';
        ELSE
            phone_pattern := '%' || orderly.like_escape(digits) || '%';
        END IF;
    END IF;

    -- A customer login sees at most its own record.
    IF own IS NOT NULL THEN
        RETURN QUERY
        SELECT orderly.customer_doc(c)
        FROM orderly.customers c
        WHERE c.id = own
          AND (lower(c.name) LIKE pattern OR lower(c.email) LIKE pattern
               OR c.phone LIKE phone_pattern OR c.phone COLLATE "C" LIKE phone_prefix);
        RETURN;
    END IF;

    -- Results come in three tiers, each read in its final order from an index, so that a
    -- common term does not make us fetch and sort every match: (1) the exact e-mail or phone,
    -- (2) names starting with q, (3) any other match. Names are ordered bytewise (COLLATE "C",
    -- the order of the customers_name_c_idx index).

    -- 1. Exact e-mail (customers_email_lower_key) or phone (customers_phone_c_idx).
    RETURN QUERY
    SELECT orderly.customer_doc(c)
    FROM orderly.customers c
    WHERE lower(c.email) = q OR c.phone COLLATE "C" = digits
    ORDER BY (lower(c.name) LIKE prefix) DESC, lower(c.name) COLLATE "C", c.id
    LIMIT lim;
    GET DIAGNOSTICS n = ROW_COUNT;
    got := got + n;
    IF got >= lim THEN
        RETURN;
    END IF;

    -- 2. Names starting with q: a range scan of customers_name_c_idx, already in order.
    RETURN QUERY
    SELECT orderly.customer_doc(c)
    FROM orderly.customers c
    WHERE lower(c.name) COLLATE "C" LIKE prefix
      AND (lower(c.email) = q OR c.phone COLLATE "C" = digits) IS NOT TRUE
    ORDER BY lower(c.name) COLLATE "C", c.id
    LIMIT lim - got;
    GET DIAGNOSTICS n = ROW_COUNT;
    got := got + n;
    IF got >= lim THEN
        RETURN;
    END IF;

    -- 3. Any other match. A frequent term (a common surname, a mail domain) fills the page after
    -- a few hundred customers in name order, so walk customers_name_c_idx first, but only the
    -- first 100 * need customers: matches that are rare, or that all sort late (say "ohann"),
    -- would make the walk read most of the table.
    need := lim - got;
    n := 0;
    -- A phone fragment or a query that hit an exact e-mail/phone is rare: skip the walk.
    IF digits IS NULL AND got = 0 THEN
        RETURN QUERY
        SELECT orderly.customer_doc(w.c)
        FROM (SELECT c, lower(c.name) COLLATE "C" AS k, c.id
              FROM orderly.customers c
              ORDER BY lower(c.name) COLLATE "C", c.id
              LIMIT 100 * need) w
        WHERE (lower((w.c).name) LIKE pattern OR lower((w.c).email) LIKE pattern)
          AND w.k NOT LIKE prefix
          AND lower((w.c).email) IS DISTINCT FROM q
        ORDER BY w.k, w.id
        LIMIT need;
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n >= need THEN
            RETURN;
        END IF;
    END IF;

    -- Otherwise the trigram indexes find all matches (a bitmap OR of the three), and only their
    -- sort keys are sorted; the walk returned the first n. OFFSET 0 keeps the planner from
    -- walking the name index instead.
    RETURN QUERY
    SELECT orderly.customer_doc(c)
    FROM (SELECT m.id, m.k
          FROM (SELECT c.id, lower(c.name) COLLATE "C" AS k
                FROM orderly.customers c
                WHERE (lower(c.name) LIKE pattern OR lower(c.email) LIKE pattern
                       OR c.phone LIKE phone_pattern OR c.phone COLLATE "C" LIKE phone_prefix)
                  AND lower(c.name) COLLATE "C" NOT LIKE prefix
                  AND (lower(c.email) = q OR c.phone COLLATE "C" = digits) IS NOT TRUE
                OFFSET 0) m
          ORDER BY m.k, m.id
          OFFSET n
          LIMIT need - n) t
    JOIN orderly.customers c ON c.id = t.id
    ORDER BY t.k, t.id;
END
$$;

SELECT orderly.register_command('CUSTOMER FIND', 'api.customer_find', 'customer.read',
    arguments  => 'q:text! limit:integer',
    positional => '{q}',
    usage      => 'CUSTOMER FIND q= [limit=20]',
    summary    => 'Customers whose name, e-mail or phone contains q (at least 3 characters), best matches first.');

-- Addresses ------------------------------------------------------------------------------------

-- The customer's current default address is demoted before another is promoted, so that the
-- one-default index never sees two. Callers hold the customer's row lock, which serializes
-- address changes per customer. The move is audited on its own: it changes two addresses.
DROP FUNCTION IF EXISTS orderly.make_default_address(bigint, bigint);
CREATE OR REPLACE FUNCTION orderly.make_default_address(customer_id bigint, address_id bigint, actor_id bigint)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    previous bigint;
BEGIN
    UPDATE orderly.addresses x SET is_default = false, updated_at = now()
    WHERE x.customer_id = make_default_address.customer_id AND x.is_default AND x.id <> address_id
    RETURNING x.id INTO previous;
    UPDATE orderly.addresses x SET is_default = true, updated_at = now()
    WHERE x.id = address_id AND NOT x.is_default;
    IF FOUND THEN
        PERFORM orderly.audit(actor_id, 'address.default', 'customer', customer_id::text,
                              jsonb_build_object('default_address', previous),
                              jsonb_build_object('default_address', address_id));
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION orderly.address_for_update(u orderly.users, address_id bigint) RETURNS orderly.addresses
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a orderly.addresses;
BEGIN
    SELECT * INTO a FROM orderly.addresses x WHERE x.id = address_id AND x.removed_at IS NULL;
    IF NOT FOUND OR NOT orderly.customer_visible(u, a.customer_id) THEN
        RAISE EXCEPTION 'address % not found', address_id USING ERRCODE = 'OL404';
    END IF;
    -- Customer first, then address: the same lock order as ADDRESS ADD.
    PERFORM orderly.customer_for(u, a.customer_id, true);
    SELECT * INTO a FROM orderly.addresses x WHERE x.id = address_id AND x.removed_at IS NULL FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'address % not found', address_id USING ERRCODE = 'OL404';
    END IF;
    RETURN a;
END
$$;

-- Where a customer's order ships to: the address given, which must be the customer's and not
-- removed; none given, the customer's default address (no row if it has none). Pricing (for tax)
-- and orders (for their ship-to) both ask this.
CREATE OR REPLACE FUNCTION orderly.ship_to_address(customer_id bigint, address_id bigint) RETURNS orderly.addresses
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a orderly.addresses;
BEGIN
    IF address_id IS NULL THEN
        SELECT * INTO a FROM orderly.addresses x
        WHERE x.customer_id = ship_to_address.customer_id AND x.is_default AND x.removed_at IS NULL;
        RETURN a;
    END IF;
    SELECT * INTO a FROM orderly.addresses x
    WHERE x.id = address_id AND x.customer_id = ship_to_address.customer_id;
    IF a.removed_at IS NOT NULL THEN
        -- Also what an order whose address was removed since hears when it is priced again.
        RAISE EXCEPTION 'ship-to address % was removed; give another (ship_to)', address_id USING ERRCODE = 'OL404';
    ELSIF NOT FOUND THEN
        RAISE EXCEPTION 'unknown ship-to address %', address_id USING ERRCODE = 'OL404';
    END IF;
    RETURN a;
END
$$;

-- The first address of a customer becomes its default whatever default= says.
CREATE OR REPLACE FUNCTION api.address_add(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u orderly.users := orderly.begin_command('ADDRESS ADD', address_add.actor, address_add.args);
    v_replay json := orderly.replay(u, address_add.args);
    c orderly.customers;
    a orderly.addresses;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    c := orderly.customer_for(u, orderly.arg_bigint(args, 'customer', true), true);
    INSERT INTO orderly.addresses (customer_id, label, recipient, phone, line1, line2, city, region,
                                   postal_code, country)
    VALUES (c.id,
            orderly.address_field(args, 'label'),
            orderly.address_field(args, 'recipient'),
            orderly.address_field(args, 'phone'),
            orderly.address_field(args, 'line1'),
            orderly.address_field(args, 'line2'),
            orderly.address_field(args, 'city'),
            orderly.address_field(args, 'region'),
            orderly.address_field(args, 'postal_code'),
            orderly.address_field(args, 'country'))
    RETURNING * INTO a;
    IF coalesce(orderly.arg_bool(args, 'default'), false)
       OR NOT EXISTS (SELECT 1 FROM orderly.addresses x
                      WHERE x.customer_id = c.id AND x.is_default AND x.removed_at IS NULL) THEN
        PERFORM orderly.make_default_address(c.id, a.id, u.id);
        SELECT * INTO a FROM orderly.addresses x WHERE x.id = a.id;
    END IF;
    PERFORM orderly.audit(u.id, 'address.add', 'address', a.id::text, NULL, orderly.address_doc(a)::jsonb);
    RETURN NEXT orderly.remember(u, args, orderly.address_doc(a));
END
$$;

SELECT orderly.register_command('ADDRESS ADD', 'api.address_add', 'customer.manage',
    arguments  => 'customer:id! recipient:text! phone:text! line1:text! line2:text city:text! region:text! postal_code:text! country:code! label:text default:boolean',
    usage      => 'ADDRESS ADD customer= recipient= phone= line1= [line2=] city= region= postal_code= country= [label=] [default=true]',
    summary    => 'Add a ship-to address (ISO 3166-1 country code). A customer''s first address is its default.',
    changes    => true);

-- Only the fields given change. default=true moves the default here; a default is never simply
-- switched off (orders fall back to it), only moved to another address.
CREATE OR REPLACE FUNCTION api.address_update(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.begin_command('ADDRESS UPDATE', address_update.actor, address_update.args);
    v_replay json := orderly.replay(u, address_update.args);
    before   orderly.addresses;
    a        orderly.addresses;
    fields   text[] := ARRAY['recipient', 'phone', 'line1', 'line2', 'city', 'region', 'postal_code',
                             'country', 'label', 'default'];
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    before := orderly.address_for_update(u, orderly.arg_bigint(args, 'id', true));
    a := before;
    IF NOT (args ?| fields) THEN
        RAISE EXCEPTION 'nothing to update: give one of %', array_to_string(fields, ', ') USING ERRCODE = 'OL400';
    END IF;
    IF args ? 'recipient' THEN a.recipient := orderly.address_field(args, 'recipient'); END IF;
    IF args ? 'phone' THEN a.phone := orderly.address_field(args, 'phone'); END IF;
    IF args ? 'line1' THEN a.line1 := orderly.address_field(args, 'line1'); END IF;
    IF args ? 'line2' THEN a.line2 := orderly.address_field(args, 'line2'); END IF;
    IF args ? 'city' THEN a.city := orderly.address_field(args, 'city'); END IF;
    IF args ? 'region' THEN a.region := orderly.address_field(args, 'region'); END IF;
    IF args ? 'postal_code' THEN a.postal_code := orderly.address_field(args, 'postal_code'); END IF;
    IF args ? 'country' THEN a.country := orderly.address_field(args, 'country'); END IF;
    IF args ? 'label' THEN a.label := orderly.address_field(args, 'label'); END IF;
    IF orderly.arg_bool(args, 'default') IS false AND before.is_default THEN
        RAISE EXCEPTION 'address % is the default: make another address the default instead', before.id
            USING ERRCODE = 'OL409';
    END IF;
    -- An address a placed order ships to keeps what that order was agreed, taxed and shipped on
    -- (a change of where a placed order goes is ORDER AMEND ship_to, with its rules, new tax and
    -- version): the change becomes a new address, the customer's from now on (the default if this
    -- one was), and this one stays, hidden, for those orders. Drafts, priced live, move to the new
    -- one. A new label alone changes nothing an order is shipped on. By the customer's orders
    -- (orders_customer_idx), not a scan of every order.
    IF (a.recipient, a.phone, a.line1, a.line2, a.city, a.region, a.postal_code, a.country)
           IS DISTINCT FROM (before.recipient, before.phone, before.line1, before.line2, before.city, before.region, before.postal_code, before.country)
       AND EXISTS (SELECT 1 FROM orderly.orders o WHERE o.customer_id = before.customer_id AND o.ship_to_id = before.id AND o.status <> 'draft') THEN
        UPDATE orderly.addresses x SET removed_at = now(), is_default = false, updated_at = now() WHERE x.id = before.id;
        INSERT INTO orderly.addresses (customer_id, label, recipient, phone, line1, line2, city, region, postal_code, country, is_default)
        VALUES (a.customer_id, a.label, a.recipient, a.phone, a.line1, a.line2, a.city, a.region, a.postal_code, a.country, before.is_default)
        RETURNING * INTO a;
        UPDATE orderly.orders o SET ship_to_id = a.id, updated_at = now()
        WHERE o.customer_id = before.customer_id AND o.ship_to_id = before.id AND o.status = 'draft';
    ELSE
        UPDATE orderly.addresses x
        SET recipient = a.recipient, phone = a.phone, line1 = a.line1, line2 = a.line2, city = a.city,
            region = a.region, postal_code = a.postal_code, country = a.country, label = a.label,
            updated_at = now()
        WHERE x.id = a.id;
    END IF;
    IF orderly.arg_bool(args, 'default') THEN
        PERFORM orderly.make_default_address(a.customer_id, a.id, u.id);
    END IF;
    SELECT * INTO a FROM orderly.addresses x WHERE x.id = a.id;
    PERFORM orderly.audit(u.id, 'address.update', 'address', a.id::text,
                          orderly.address_doc(before)::jsonb, orderly.address_doc(a)::jsonb);
    RETURN NEXT orderly.remember(u, args, orderly.address_doc(a));
END
$$;

SELECT orderly.register_command('ADDRESS UPDATE', 'api.address_update', 'customer.manage',
    arguments  => 'id:id! recipient:text phone:text line1:text line2:text city:text region:text postal_code:text country:code label:text default:boolean',
    positional => '{id}',
    usage      => 'ADDRESS UPDATE id [recipient=] [phone=] [line1=] [line2=] [city=] [region=] [postal_code=] [country=] [label=] [default=true]',
    summary    => 'Change the fields given; default=true makes it the customer''s default address. An address a placed order ships to stays as it is for that order: the change is a new address (the reply''s id).',
    changes    => true);

-- Removed addresses are hidden, not deleted: orders that shipped there still show them. When the
-- default goes, the newest remaining address becomes the default.
CREATE OR REPLACE FUNCTION api.address_remove(actor bigint, args jsonb) RETURNS SETOF json
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.begin_command('ADDRESS REMOVE', address_remove.actor, address_remove.args);
    v_replay json := orderly.replay(u, address_remove.args);
    before   orderly.addresses;
    a        orderly.addresses;
    next_id  bigint;
    v_order  bigint;
    v_change bigint;
BEGIN
    IF v_replay IS NOT NULL THEN RETURN NEXT v_replay; RETURN; END IF;
    before := orderly.address_for_update(u, orderly.arg_bigint(args, 'id', true));
    -- A change waiting for a decision that would ship there, or that waits on an order shipping
    -- there, could then neither be confirmed nor approved (repricing needs an address that is not
    -- removed): it is decided first.
    SELECT c.order_id, c.id INTO v_order, v_change
    FROM orderly.order_changes c
    WHERE c.customer_id = before.customer_id AND c.status = 'pending'
      AND (EXISTS (SELECT 1 FROM jsonb_array_elements(c.actions) e
                   WHERE e ->> 'action' = 'ship_to' AND e ->> 'address' = before.id::text)
           OR EXISTS (SELECT 1 FROM orderly.orders o WHERE o.id = c.order_id AND o.ship_to_id = before.id))
    ORDER BY c.id LIMIT 1;
    IF v_change IS NOT NULL THEN
        RAISE EXCEPTION 'address % is where order % ships, or will with change %, which waits for a decision: decide that first',
            before.id, v_order, v_change USING ERRCODE = 'OL409';
    END IF;
    UPDATE orderly.addresses x SET removed_at = now(), is_default = false, updated_at = now()
    WHERE x.id = before.id
    RETURNING * INTO a;
    IF before.is_default THEN
        SELECT x.id INTO next_id FROM orderly.addresses x
        WHERE x.customer_id = a.customer_id AND x.removed_at IS NULL
        ORDER BY x.id DESC LIMIT 1;
        IF next_id IS NOT NULL THEN
            PERFORM orderly.make_default_address(a.customer_id, next_id, u.id);
        END IF;
    END IF;
    PERFORM orderly.audit(u.id, 'address.remove', 'address', a.id::text,
                          orderly.address_doc(before)::jsonb, orderly.address_doc(a)::jsonb);
    RETURN NEXT orderly.remember(u, args, orderly.json_extend(orderly.address_doc(a), json_build_object('new_default', next_id)));
END
$$;

SELECT orderly.register_command('ADDRESS REMOVE', 'api.address_remove', 'customer.manage',
    arguments  => 'id:id!',
    positional => '{id}',
    usage      => 'ADDRESS REMOVE id',
    summary    => 'Remove an address (orders that used it keep it); the newest other address becomes the default.',
    changes    => true);

-- Admin: link a customer's login -----------------------------------------------------------------

-- customer_id NULL unlinks. The login sees the new customer on its very next command (the api
-- functions read the link live).
CREATE OR REPLACE FUNCTION admin.link_customer(username text, customer_id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    u        orderly.users := orderly.user_for_update(link_customer.username);
    before   jsonb := orderly.user_snapshot(u.id);
BEGIN
    IF link_customer.customer_id IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM orderly.customers c WHERE c.id = link_customer.customer_id) THEN
        RAISE EXCEPTION 'customer % not found', link_customer.customer_id USING ERRCODE = 'OL404';
    END IF;
    IF link_customer.customer_id IS NOT NULL AND u.carrier IS NOT NULL THEN
        RAISE EXCEPTION 'user % is carrier %''s login; a customer''s login must be its own', u.username, u.carrier USING ERRCODE = 'OL409';
    END IF;
    UPDATE orderly.users x SET customer_id = link_customer.customer_id, updated_at = now() WHERE x.id = u.id;
    PERFORM orderly.check_customer_rights(ARRAY[u.id]);
    PERFORM orderly.user_changed('user.link_customer', u.id, before);
END
$$;

-- `orderlyd --demo`: one customer with a default address in Berlin, which the demo "customer"
-- login orders for. Idempotent (found by its e-mail); returns the customer id.
CREATE OR REPLACE FUNCTION admin.load_demo_customer() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    v_id bigint;
BEGIN
    INSERT INTO orderly.customers (name, email, phone, company, segment, region)
    VALUES ('Demo Customer GmbH', 'orders@demo-customer.example', '+493012345678', 'Demo Customer GmbH', 'standard', 'Berlin')
    ON CONFLICT DO NOTHING
    RETURNING id INTO v_id;
    IF v_id IS NULL THEN
        SELECT c.id INTO v_id FROM orderly.customers c WHERE lower(c.email) = 'orders@demo-customer.example';
        RETURN v_id;
    END IF;
    INSERT INTO orderly.addresses (customer_id, label, recipient, phone, line1, city, region, postal_code, country, is_default)
    VALUES (v_id, 'office', 'Erika Mustermann', '+493012345678', 'Friedrichstraße 1', 'Berlin', 'BE', '10117', 'DE', true);
    UPDATE orderly.users u SET customer_id = v_id WHERE lower(u.username) = 'customer' AND u.customer_id IS NULL;
    PERFORM orderly.check_customer_rights(ARRAY(SELECT u.id FROM orderly.users u WHERE lower(u.username) = 'customer'));
    PERFORM orderly.audit(NULL, 'customer.demo_load', 'customer', v_id::text, NULL,
                          orderly.customer_doc((SELECT c FROM orderly.customers c WHERE c.id = v_id))::jsonb,
                          actor_kind => 'admin_sql');
    RETURN v_id;
END
$$;

COMMENT ON FUNCTION admin.load_demo_customer() IS 'Create the demo customer with an address and link the demo customer login (idempotent)';
COMMENT ON FUNCTION admin.link_customer(text, bigint) IS 'Link a customer login to the customer it orders for (NULL unlinks)';
