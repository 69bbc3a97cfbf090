-- Orderly: when a shipment should arrive (issue 13, item 2). Tables in V018__tracking_and_risk.sql.
--
-- A shipment's lane is where it left from (orderly.shipping_settings) and where it goes (the
-- order's ship-to country and region), fixed when the shipment is created. Its ETA is, in this
-- order of preference:
--   carrier  the latest ETA its carrier gave in a tracking event (R__192_tracking.sql);
--   history  shipped_at + the median transit time (shipped → delivered) of the latest
--            deliveries of the same carrier on the same lane: first the same destination
--            region, else the same destination country. shipping_settings.history_sample says
--            how many of the latest deliveries are read and history_min how many are needed;
--   default  shipped_at + the configured transit time of the carrier and service
--            (orderly.transit_defaults; service '' is the carrier's fallback for any service).
-- A delivered shipment has no ETA (delivered_at says when it came); with nothing known the ETA
-- and its source are null. This file comes before the documents that show the ETA (R__138, R__190)
-- and the risk checks that read it (R__196).

-- The lane of a new shipment, from the order's ship-to address and the shipping origin.
CREATE OR REPLACE FUNCTION orderly.set_shipment_lane() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    SELECT x.origin_country INTO NEW.origin_country FROM orderly.shipping_settings x;
    SELECT a.country, a.region INTO NEW.dest_country, NEW.dest_region
    FROM orderly.orders o JOIN orderly.addresses a ON a.id = o.ship_to_id
    WHERE o.id = NEW.order_id;
    RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER shipments_lane BEFORE INSERT ON orderly.shipments
    FOR EACH ROW EXECUTE FUNCTION orderly.set_shipment_lane();

-- The median transit time of the latest deliveries of a carrier on a lane (dest_region NULL: any
-- region of the country), with how many it read; NULL when fewer than history_min were found.
CREATE OR REPLACE FUNCTION orderly.lane_transit(carrier text, origin_country char(2), dest_country char(2), dest_region text)
RETURNS TABLE (transit interval, deliveries integer)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH settings AS (SELECT x.history_sample, x.history_min FROM orderly.shipping_settings x),
    latest AS (
        SELECT s.delivered_at - s.shipped_at AS took
        FROM orderly.shipments s
        WHERE s.status = 'delivered' AND s.carrier = $1 AND s.dest_country = $3
          AND ($4 IS NULL OR s.dest_region = $4)
          AND s.origin_country IS NOT DISTINCT FROM $2
        ORDER BY s.delivered_at DESC
        LIMIT (SELECT history_sample FROM settings))
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM l.took)) * interval '1 second',
           count(*)::integer
    FROM latest l
    HAVING count(*) >= (SELECT history_min FROM settings)
$$;

-- The shipment's ETA, where it comes from (carrier | history | default | NULL) and, for history
-- and default, what it rests on: {"lane":"DE→AT/Tirol","deliveries":12} or {"transit":"2 days"}.
CREATE OR REPLACE FUNCTION orderly.shipment_eta(s orderly.shipments)
RETURNS TABLE (eta timestamptz, eta_source text, basis jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t record;
BEGIN
    IF s.status = 'delivered' THEN
        RETURN;
    END IF;
    IF s.carrier_eta IS NOT NULL THEN
        eta := s.carrier_eta; eta_source := 'carrier';
        basis := jsonb_build_object('given_at', orderly.json_time(s.carrier_eta_at));
        RETURN NEXT;
        RETURN;
    END IF;
    IF s.dest_country IS NOT NULL THEN
        SELECT * INTO t FROM orderly.lane_transit(s.carrier, s.origin_country, s.dest_country, s.dest_region);
        IF t.transit IS NULL THEN
            SELECT * INTO t FROM orderly.lane_transit(s.carrier, s.origin_country, s.dest_country, NULL);
            IF t.transit IS NOT NULL THEN
                basis := jsonb_build_object('lane', coalesce(s.origin_country, '?') || '→' || s.dest_country);
            END IF;
        ELSE
            basis := jsonb_build_object('lane', coalesce(s.origin_country, '?') || '→' || s.dest_country || '/' || s.dest_region);
        END IF;
        IF t.transit IS NOT NULL THEN
            eta := s.shipped_at + t.transit; eta_source := 'history';
            basis := basis || jsonb_build_object('deliveries', t.deliveries, 'median_transit', t.transit::text);
            RETURN NEXT;
            RETURN;
        END IF;
    END IF;
    SELECT d.transit INTO t
    FROM orderly.transit_defaults d
    -- A service is named by people (SHIPMENT CREATE service=, admin.set_transit_default): EXPRESS
    -- and express are one service.
    WHERE d.carrier = s.carrier AND lower(d.service) IN (lower(coalesce(s.service, '')), '')
    ORDER BY d.service = '', d.service  -- the service's own row before the carrier's ''
    LIMIT 1;
    IF t.transit IS NOT NULL THEN
        eta := s.shipped_at + t.transit; eta_source := 'default';
        basis := jsonb_build_object('transit', t.transit::text);
        RETURN NEXT;
    END IF;
END
$$;

-- Admin: the transit time assumed for a carrier (and service) with too little history. NULL
-- transit removes the row.
CREATE OR REPLACE FUNCTION admin.set_transit_default(carrier text, transit interval, service text DEFAULT '')
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    v_carrier text := lower(btrim(set_transit_default.carrier));
    v_service text := coalesce(btrim(set_transit_default.service), '');
    v_before  jsonb;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM orderly.carriers c WHERE c.code = v_carrier) THEN
        RAISE EXCEPTION 'carrier "%" not found', orderly.for_message(v_carrier) USING ERRCODE = 'OL404';
    END IF;
    IF transit IS NOT NULL AND (transit <= interval '0' OR transit > interval '180 days') THEN
        RAISE EXCEPTION 'transit must be more than 0 and at most 180 days' USING ERRCODE = 'OL400';
    END IF;
    -- As a shipment's service (SHIPMENT CREATE service=): it is shown, and audited by name.
    IF length(v_service) > 100 OR NOT orderly.shows_on_one_line(v_service) THEN
        RAISE EXCEPTION 'service must be one line of at most 100 characters, without characters that hide text' USING ERRCODE = 'OL400';
    END IF;
    SELECT jsonb_build_object('transit', d.transit::text) INTO v_before
    FROM orderly.transit_defaults d WHERE d.carrier = v_carrier AND d.service = v_service FOR UPDATE;
    IF transit IS NULL THEN
        DELETE FROM orderly.transit_defaults d WHERE d.carrier = v_carrier AND d.service = v_service;
    ELSE
        INSERT INTO orderly.transit_defaults AS d (carrier, service, transit) VALUES (v_carrier, v_service, transit)
        ON CONFLICT ON CONSTRAINT transit_defaults_pkey DO UPDATE SET transit = excluded.transit;
    END IF;
    -- Removing what is not there changed nothing: no audit row that says nothing.
    IF v_before IS NOT NULL OR transit IS NOT NULL THEN
        PERFORM orderly.audit(NULL, 'carrier.transit_default', 'carrier', v_carrier || coalesce('/' || nullif(v_service, ''), ''),
                              v_before, CASE WHEN transit IS NULL THEN NULL ELSE jsonb_build_object('transit', transit::text) END,
                              actor_kind => 'admin_sql');
    END IF;
END
$$;

COMMENT ON FUNCTION admin.set_transit_default(text, interval, text) IS
    'The transit time assumed for a carrier (and service; '''' = any) when its lane has too few deliveries; NULL removes it (audited)';

-- Admin: where shipments leave from (the lanes' origin) and how much history the ETA reads.
CREATE OR REPLACE FUNCTION admin.set_shipping_origin(country text, region text DEFAULT NULL,
                                                     history_sample integer DEFAULT NULL, history_min integer DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, orderly, pg_temp
AS $$
DECLARE
    v_before jsonb;
    x        orderly.shipping_settings;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM orderly.countries c WHERE c.code = upper(btrim(country))) THEN
        RAISE EXCEPTION 'unknown country "%"', orderly.for_message(country) USING ERRCODE = 'OL404';
    END IF;
    IF length(region) > 100 OR NOT orderly.shows_on_one_line(region) THEN
        RAISE EXCEPTION 'region must be at most 100 characters on one line, without control or direction-override characters'
            USING ERRCODE = 'OL400';
    END IF;
    SELECT to_jsonb(s) INTO v_before FROM orderly.shipping_settings s FOR UPDATE;
    UPDATE orderly.shipping_settings s
    SET origin_country = upper(btrim(set_shipping_origin.country)),
        origin_region = nullif(btrim(set_shipping_origin.region), ''),
        history_sample = coalesce(set_shipping_origin.history_sample, s.history_sample),
        history_min = coalesce(set_shipping_origin.history_min, s.history_min)
    RETURNING * INTO x;
    PERFORM orderly.audit(NULL, 'shipping.settings', 'shipping_settings', 'origin', v_before, to_jsonb(x),
                          actor_kind => 'admin_sql');
END
$$;

COMMENT ON FUNCTION admin.set_shipping_origin(text, text, integer, integer) IS
    'Where shipments leave from (lane origin) and how many past deliveries the ETA estimate reads and needs (audited)';
