-- Orderly: the formula evaluator for the price formulas of custom products (products.formula and
-- formula_params, V006__catalog.sql). A formula is checked when a product is created or changed
-- (orderly.formula_check, from R__110_catalog.sql) and evaluated when a line is priced
-- (orderly.formula_param_values and orderly.formula_eval, from R__120_pricing.sql). It calls no
-- function of either, so it comes before both.
--
-- Grammar (a small recursive-descent parser over tokens; nothing is ever EXECUTEd):
--   expr    := term (("+" | "-") term)*
--   term    := unary (("*" | "/") unary)*
--   unary   := ("+" | "-") unary | primary
--   primary := number | parameter | function "(" expr ("," expr)* ")" | "(" expr ")"
--   number  := digits ["." digits], at most 12 integer and 6 decimal digits (no exponent)
--   function: min, max (2+ arguments), ceil, floor, round (1 argument)
-- Limits: 500 characters, nesting depth 20, any intermediate |value| <= 1e15. Parameters are
-- the declared ones only. vals maps each declared name to its value; a JSON null value means
-- "checking only" (at definition time): names and syntax are checked, nothing is computed.

CREATE OR REPLACE FUNCTION orderly.formula_error(message text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'invalid formula: %', formula_error.message USING ERRCODE = 'OL400';
END
$$;

CREATE OR REPLACE FUNCTION orderly.formula_tokens(formula text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_tokens text[];
    t        text;
BEGIN
    IF formula IS NULL OR btrim(formula) = '' THEN
        PERFORM orderly.formula_error('it is empty');
    END IF;
    IF length(formula) > 500 THEN
        PERFORM orderly.formula_error('at most 500 characters');
    END IF;
    IF formula ~ '[[:cntrl:]]' THEN
        PERFORM orderly.formula_error('control characters are not allowed');
    END IF;
    -- Every non-blank character lands in some token: the last alternative catches the rest.
    -- A number-like token swallows letters and dots after it, so "1e999" or "1.2.3" is refused
    -- as one bad number rather than read as "1" followed by something.
    SELECT array_agg(m[1] ORDER BY n) INTO v_tokens
    FROM regexp_matches(formula, '([0-9.][A-Za-z0-9_.]*|[A-Za-z_][A-Za-z0-9_]*|[-+*/(),]|[^[:space:]])', 'g')
         WITH ORDINALITY AS x(m, n);
    FOREACH t IN ARRAY coalesce(v_tokens, '{}') LOOP
        IF t ~ '^[0-9.]' AND t !~ '^[0-9]{1,12}(\.[0-9]{1,6})?$' THEN
            PERFORM orderly.formula_error(format('bad number "%s" (plain decimals, at most 12 digits before and 6 after the point)',
                                                 orderly.for_message(t)));
        ELSIF t !~ '^([0-9.]|[A-Za-z_]|[-+*/(),])' THEN
            PERFORM orderly.formula_error(format('unexpected character "%s"', orderly.for_message(t)));
        END IF;
    END LOOP;
    RETURN v_tokens;
END
$$;

-- Applies one operator; NULL (checking only) passes through.
CREATE OR REPLACE FUNCTION orderly.formula_apply(op text, a numeric, b numeric) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r numeric;
BEGIN
    IF a IS NULL OR b IS NULL THEN
        RETURN NULL;
    END IF;
    IF op = '/' AND b = 0 THEN
        RAISE EXCEPTION 'division by zero in the price formula' USING ERRCODE = 'OL400';
    END IF;
    r := CASE op WHEN '+' THEN a + b WHEN '-' THEN a - b WHEN '*' THEN a * b ELSE a / b END;
    IF abs(r) > 1e15 THEN
        RAISE EXCEPTION 'the price formula gives a number out of range' USING ERRCODE = 'OL400';
    END IF;
    -- Bounded scale: repeated products of decimals must not grow without end.
    RETURN round(r, 12);
END
$$;

CREATE OR REPLACE FUNCTION orderly.formula_expr(toks text[], pos integer, depth integer, vals jsonb,
                                                OUT value numeric, OUT next_pos integer)
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    op text;
    r  record;
BEGIN
    SELECT * INTO r FROM orderly.formula_term(toks, pos, depth, vals);
    value := r.value;
    next_pos := r.next_pos;
    WHILE toks[next_pos] IN ('+', '-') LOOP
        op := toks[next_pos];
        SELECT * INTO r FROM orderly.formula_term(toks, next_pos + 1, depth, vals);
        value := orderly.formula_apply(op, value, r.value);
        next_pos := r.next_pos;
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION orderly.formula_term(toks text[], pos integer, depth integer, vals jsonb,
                                                OUT value numeric, OUT next_pos integer)
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    op text;
    r  record;
BEGIN
    SELECT * INTO r FROM orderly.formula_unary(toks, pos, depth, vals);
    value := r.value;
    next_pos := r.next_pos;
    WHILE toks[next_pos] IN ('*', '/') LOOP
        op := toks[next_pos];
        SELECT * INTO r FROM orderly.formula_unary(toks, next_pos + 1, depth, vals);
        value := orderly.formula_apply(op, value, r.value);
        next_pos := r.next_pos;
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION orderly.formula_unary(toks text[], pos integer, depth integer, vals jsonb,
                                                 OUT value numeric, OUT next_pos integer)
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    IF toks[pos] IN ('+', '-') THEN
        IF depth >= 20 THEN
            PERFORM orderly.formula_error('nested too deeply (at most 20 levels)');
        END IF;
        SELECT * INTO r FROM orderly.formula_unary(toks, pos + 1, depth + 1, vals);
        value := CASE WHEN toks[pos] = '-' THEN -r.value ELSE r.value END;
        next_pos := r.next_pos;
    ELSE
        SELECT * INTO r FROM orderly.formula_primary(toks, pos, depth, vals);
        value := r.value;
        next_pos := r.next_pos;
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION orderly.formula_primary(toks text[], pos integer, depth integer, vals jsonb,
                                                   OUT value numeric, OUT next_pos integer)
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t      text := toks[pos];
    r      record;
    args   numeric[] := '{}';
    n_args integer := 0;
BEGIN
    IF t IS NULL THEN
        PERFORM orderly.formula_error('it ends too early');
    END IF;
    IF t ~ '^[0-9]' THEN
        value := t::numeric;
        next_pos := pos + 1;
    ELSIF t ~ '^[A-Za-z_]' AND toks[pos + 1] = '(' THEN
        IF t NOT IN ('min', 'max', 'ceil', 'floor', 'round') THEN
            PERFORM orderly.formula_error(format('unknown function "%s"', orderly.for_message(t)));
        END IF;
        IF depth >= 20 THEN
            PERFORM orderly.formula_error('nested too deeply (at most 20 levels)');
        END IF;
        next_pos := pos + 2;
        LOOP
            SELECT * INTO r FROM orderly.formula_expr(toks, next_pos, depth + 1, vals);
            args := args || r.value;
            n_args := n_args + 1;
            next_pos := r.next_pos;
            EXIT WHEN toks[next_pos] IS DISTINCT FROM ',';
            next_pos := next_pos + 1;
        END LOOP;
        IF toks[next_pos] IS DISTINCT FROM ')' THEN
            PERFORM orderly.formula_error('missing ")"');
        END IF;
        next_pos := next_pos + 1;
        IF t IN ('min', 'max') AND n_args < 2 THEN
            PERFORM orderly.formula_error(format('%s needs at least 2 arguments', t));
        ELSIF t IN ('ceil', 'floor', 'round') AND n_args <> 1 THEN
            PERFORM orderly.formula_error(format('%s takes 1 argument', t));
        END IF;
        IF array_position(args, NULL) IS NULL THEN
            value := CASE t WHEN 'min' THEN (SELECT min(a) FROM unnest(args) a)
                            WHEN 'max' THEN (SELECT max(a) FROM unnest(args) a)
                            WHEN 'ceil' THEN ceil(args[1])
                            WHEN 'floor' THEN floor(args[1])
                            ELSE round(args[1]) END;
        END IF;
    ELSIF t ~ '^[A-Za-z_]' THEN
        IF vals IS NULL OR NOT vals ? t THEN
            PERFORM orderly.formula_error(format('unknown parameter "%s"', orderly.for_message(t)));
        END IF;
        value := (vals ->> t)::numeric;
        next_pos := pos + 1;
    ELSIF t = '(' THEN
        IF depth >= 20 THEN
            PERFORM orderly.formula_error('nested too deeply (at most 20 levels)');
        END IF;
        SELECT * INTO r FROM orderly.formula_expr(toks, pos + 1, depth + 1, vals);
        IF toks[r.next_pos] IS DISTINCT FROM ')' THEN
            PERFORM orderly.formula_error('missing ")"');
        END IF;
        value := r.value;
        next_pos := r.next_pos + 1;
    ELSE
        PERFORM orderly.formula_error(format('unexpected "%s"', orderly.for_message(t)));
    END IF;
END
$$;

-- The whole formula; vals as above.
CREATE OR REPLACE FUNCTION orderly.formula_eval(formula text, vals jsonb) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    toks text[] := orderly.formula_tokens(formula);
    r    record;
BEGIN
    SELECT * INTO r FROM orderly.formula_expr(toks, 1, 0, vals);
    IF r.next_pos <= coalesce(array_length(toks, 1), 0) THEN
        PERFORM orderly.formula_error(format('unexpected "%s"', orderly.for_message(toks[r.next_pos])));
    END IF;
    RETURN r.value;
END
$$;

-- At definition time: the parameter declarations ({"name": {"min": n, "max": n}}, at most 10,
-- both bounds required) and the formula's syntax and names. Returns the declarations with the
-- bounds as numbers.
CREATE OR REPLACE FUNCTION orderly.formula_check(formula text, params jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k      text;
    d      jsonb;
    v_min  numeric;
    v_max  numeric;
    v_out  jsonb := '{}';
    v_null jsonb := '{}';
BEGIN
    IF params IS NULL OR jsonb_typeof(params) <> 'object' THEN
        RAISE EXCEPTION 'params must be an object like {"width_cm": {"min": 5, "max": 60}}' USING ERRCODE = 'OL400';
    END IF;
    IF (SELECT count(*) FROM jsonb_object_keys(params)) > 10 THEN
        RAISE EXCEPTION 'a formula may declare at most 10 parameters' USING ERRCODE = 'OL400';
    END IF;
    FOR k, d IN SELECT * FROM jsonb_each(params) LOOP
        IF k !~ '^[a-z][a-z0-9_]{0,31}$' OR k IN ('min', 'max', 'ceil', 'floor', 'round') THEN
            RAISE EXCEPTION 'invalid parameter name "%": use lowercase letters, digits and "_"', orderly.for_message(k)
                USING ERRCODE = 'OL400';
        END IF;
        IF jsonb_typeof(d) <> 'object' OR jsonb_typeof(d -> 'min') IS DISTINCT FROM 'number'
           OR jsonb_typeof(d -> 'max') IS DISTINCT FROM 'number' THEN
            RAISE EXCEPTION 'parameter % needs numeric "min" and "max"', k USING ERRCODE = 'OL400';
        END IF;
        v_min := (d -> 'min')::numeric;
        v_max := (d -> 'max')::numeric;
        IF v_min > v_max OR abs(v_min) > 1e9 OR abs(v_max) > 1e9 THEN
            RAISE EXCEPTION 'parameter %: min must not exceed max, both within +/-1000000000', k USING ERRCODE = 'OL400';
        END IF;
        v_out := v_out || jsonb_build_object(k, jsonb_build_object('min', v_min, 'max', v_max));
        v_null := v_null || jsonb_build_object(k, NULL);
    END LOOP;
    PERFORM orderly.formula_eval(formula, v_null);
    RETURN v_out;
END
$$;

-- A line's parameters against the product's declarations: every declared one present, a plain
-- number (a JSON number or a decimal string; no NaN, Infinity or exponent) within its bounds,
-- nothing else. Returns name -> numeric value.
CREATE OR REPLACE FUNCTION orderly.formula_param_values(declared jsonb, given jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k     text;
    d     jsonb;
    v     jsonb;
    n     numeric;
    v_out jsonb := '{}';
BEGIN
    given := coalesce(given, '{}');
    IF jsonb_typeof(given) <> 'object' THEN
        RAISE EXCEPTION 'params must be an object of numbers' USING ERRCODE = 'OL400';
    END IF;
    FOR k IN SELECT jsonb_object_keys(given) LOOP
        IF NOT declared ? k THEN
            RAISE EXCEPTION 'unknown parameter "%"', orderly.for_message(k) USING ERRCODE = 'OL400';
        END IF;
    END LOOP;
    FOR k, d IN SELECT * FROM jsonb_each(declared) ORDER BY 1 LOOP
        v := given -> k;
        IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
            RAISE EXCEPTION 'parameter % is required', k USING ERRCODE = 'OL400';
        ELSIF jsonb_typeof(v) = 'number' THEN
            n := v::numeric;
        ELSIF jsonb_typeof(v) = 'string' AND length(v #>> '{}') <= 30
              AND btrim(v #>> '{}') ~ '^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$' THEN
            n := btrim(v #>> '{}')::numeric;
        ELSE
            RAISE EXCEPTION 'parameter % must be a number', k USING ERRCODE = 'OL400';
        END IF;
        IF n < (d ->> 'min')::numeric OR n > (d ->> 'max')::numeric THEN
            RAISE EXCEPTION 'parameter % must be between % and %', k, d ->> 'min', d ->> 'max' USING ERRCODE = 'OL400';
        END IF;
        v_out := v_out || jsonb_build_object(k, n);
    END LOOP;
    RETURN v_out;
END
$$;
