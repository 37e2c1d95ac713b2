-- openwop schema, part 10: idempotency (layer 1) for caller-supplied Idempotency-Keys.
--
-- A record is scoped by (tenant from the credential, canonical endpoint, key) and holds the
-- request digest, a state and lease, and the final response. Only callers' keys live here;
-- keys the engine mints for its own effects never share this table.
--
-- For the endpoints served today (run create, cancel) the whole exchange is one transaction:
-- claim the key, execute, store the response, commit. A duplicate that arrives meanwhile
-- blocks on the uncommitted claim and then replays the stored response, so exactly one
-- executes. The lease exists for exchanges that must span transactions: a committed
-- 'pending' record whose lease is live answers idempotency_in_flight; a stale one is taken
-- over by compare-and-set.

CREATE TABLE openwop.idempotency_keys (
    tenant_id         text NOT NULL,
    endpoint          text NOT NULL,
    -- SHA-256 of the caller's key: raw keys are never stored (nor logged).
    key_hash          bytea NOT NULL,
    digest            text NOT NULL,
    state             text NOT NULL CHECK (state IN ('pending', 'completed')),
    lease_owner       text,
    lease_expires_at  timestamptz,
    response_status   integer,
    response_headers  jsonb,
    response_body     jsonb,
    created_at        timestamptz NOT NULL DEFAULT now(),
    expires_at        timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, endpoint, key_hash)
);
COMMENT ON TABLE openwop.idempotency_keys IS
  'Idempotency-Key records of callers (layer 1): digest, state, lease, stored response; swept after retention.';
CREATE INDEX idempotency_keys_expiry_idx ON openwop.idempotency_keys (expires_at);

-- The retention sweep is a durable engine timer, re-armed each time it runs.
INSERT INTO openwop.timers (tenant_id, run_id, kind, node_id, due_at)
VALUES ('', '00000000-0000-0000-0000-000000000000', 'sweep', 'idempotency_keys', now());

-- Check a caller's key (1..255 URL-safe characters) and return its hash.
CREATE FUNCTION openwop._idem_hash(idempotency_key text) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE
SET search_path = ''
AS $$
BEGIN
    IF idempotency_key IS NULL OR idempotency_key !~ '^[A-Za-z0-9._~:-]{1,255}$' THEN
        PERFORM openwop._raise(400, 'validation_error',
            'Idempotency-Key must be 1 to 255 characters of A-Z a-z 0-9 . _ ~ : -',
            jsonb_build_object('field', 'Idempotency-Key'));
    END IF;
    RETURN sha256(convert_to(idempotency_key, 'UTF8'));
END
$$;
COMMENT ON FUNCTION openwop._idem_hash(text) IS 'Internal: validate an Idempotency-Key and hash it.';

-- Claim a key for this transaction. NULL: execute now (the record is pending and held by this
-- transaction). Otherwise the stored response {status, headers, body} to replay. A different
-- digest raises idempotency_key_mismatch (409); a live foreign lease idempotency_in_flight (409).
CREATE FUNCTION openwop._idem_claim(tenant text, endpoint text, idempotency_key text, digest text)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = ''
AS $$
#variable_conflict use_variable
DECLARE
    h     bytea := openwop._idem_hash(idempotency_key);
    me    text := 'xact:' || pg_catalog.txid_current();
    lease interval := make_interval(secs => openwop._setting_int('openwop.idempotency_lease_ms', 30000) / 1000.0);
    keep  interval := make_interval(secs => openwop._setting_int('openwop.idempotency_retention_s', 86400));
    rec   record;
BEGIN
    INSERT INTO openwop.idempotency_keys AS k
        (tenant_id, endpoint, key_hash, digest, state, lease_owner, lease_expires_at, expires_at)
    VALUES (tenant, endpoint, h, digest, 'pending', me, clock_timestamp() + lease, now() + keep)
    ON CONFLICT ON CONSTRAINT idempotency_keys_pkey DO NOTHING;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    -- Someone else holds or held this key: their transaction has committed (the insert waited).
    SELECT k.* INTO rec FROM openwop.idempotency_keys k
    WHERE k.tenant_id = tenant AND k.endpoint = endpoint AND k.key_hash = h
    FOR UPDATE;
    IF rec.digest <> digest THEN
        PERFORM openwop._raise(409, 'idempotency_key_mismatch',
            'this Idempotency-Key was already used with a different request',
            jsonb_build_object('endpoint', endpoint));
    END IF;
    IF rec.state = 'completed' THEN
        RETURN jsonb_build_object('status', rec.response_status, 'headers', coalesce(rec.response_headers, '{}'),
                                  'body', rec.response_body);
    END IF;
    IF rec.lease_expires_at > clock_timestamp() THEN
        PERFORM openwop._raise(409, 'idempotency_in_flight',
            'a request with this Idempotency-Key is still being processed',
            jsonb_build_object('retryAfter',
                greatest(1, ceil(extract(epoch FROM rec.lease_expires_at - clock_timestamp())))::int));
    END IF;
    -- A stale lease: take it over, but only if nobody else did first (compare-and-set).
    UPDATE openwop.idempotency_keys k
    SET lease_owner = me, lease_expires_at = clock_timestamp() + lease
    WHERE k.tenant_id = tenant AND k.endpoint = endpoint AND k.key_hash = h AND k.state = 'pending'
      AND k.lease_owner IS NOT DISTINCT FROM rec.lease_owner AND k.lease_expires_at = rec.lease_expires_at;
    IF NOT FOUND THEN
        PERFORM openwop._raise(409, 'idempotency_in_flight',
            'a request with this Idempotency-Key is still being processed', jsonb_build_object('retryAfter', 1));
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION openwop._idem_claim(text, text, text, text) IS
  'Internal: claim an Idempotency-Key; NULL = execute, else the stored response. Raises on mismatch / in flight.';

-- Store the final response of a claimed key.
CREATE FUNCTION openwop._idem_store(tenant text, endpoint text, idempotency_key text, response jsonb)
RETURNS void
LANGUAGE sql
SET search_path = ''
AS $$
    UPDATE openwop.idempotency_keys k
    SET state = 'completed', lease_owner = NULL, lease_expires_at = NULL,
        response_status = (response->>'status')::integer,
        response_headers = coalesce(response->'headers', '{}'),
        response_body = response->'body'
    WHERE k.tenant_id = tenant AND k.endpoint = endpoint AND k.key_hash = openwop._idem_hash(idempotency_key)
$$;
COMMENT ON FUNCTION openwop._idem_store(text, text, text, jsonb) IS 'Internal: record the final response of a claimed key.';

-- The response an OpenWOP error becomes, or NULL when it must not be cached: only final
-- outcomes are replayed (never 429/5xx, nor a 409 that says "retry later").
CREATE FUNCTION openwop._cacheable_error(sqlstate text, message text, detail text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
SET search_path = ''
AS $$
DECLARE
    d jsonb;
BEGIN
    IF sqlstate !~ '^OW4[0-9][0-9]$' OR sqlstate = 'OW429' THEN
        RETURN NULL;
    END IF;
    d := coalesce(nullif(detail, '')::jsonb, '{}');
    IF d->>'code' IN ('run_already_active', 'idempotency_in_flight', 'rate_limited') THEN
        RETURN NULL;
    END IF;
    RETURN jsonb_build_object(
        'status', substr(sqlstate, 3)::integer,
        'headers', '{}'::jsonb,
        'body', jsonb_build_object('error', d->>'code', 'message', message)
                || openwop._field('details', nullif(d->'details', 'null'::jsonb)));
END
$$;
COMMENT ON FUNCTION openwop._cacheable_error(text, text, text) IS
  'Internal: the replayable response of a final 4xx OpenWOP error, NULL for errors that must re-execute.';

-- Raise a stored error response again (SQL callers replaying a cached failure).
CREATE FUNCTION openwop._raise_response(response jsonb) RETURNS void
LANGUAGE plpgsql
SET search_path = ''
AS $$
BEGIN
    IF (response->>'status')::integer >= 400 THEN
        PERFORM openwop._raise((response->>'status')::integer, response->'body'->>'error',
                               response->'body'->>'message', response->'body'->'details');
    END IF;
END
$$;
COMMENT ON FUNCTION openwop._raise_response(jsonb) IS 'Internal: re-raise a stored error response.';

-- Engine housekeeping, run by an idle worker: fire due 'sweep' timers. Today that is the
-- removal of idempotency records past their retention (in slices, so a backlog never holds a
-- long transaction). Returns the number of rows removed.
CREATE FUNCTION openwop._maintain() RETURNS integer
LANGUAGE plpgsql
SET search_path = ''
AS $$
DECLARE
    t       record;
    removed integer := 0;
    n       integer;
BEGIN
    FOR t IN SELECT x.tenant_id, x.run_id, x.kind, x.node_id FROM openwop.timers x
             WHERE x.kind = 'sweep' AND x.due_at <= clock_timestamp()
             FOR UPDATE SKIP LOCKED LOOP
        n := 0;
        IF t.node_id = 'idempotency_keys' THEN
            DELETE FROM openwop.idempotency_keys k
            WHERE k.ctid = ANY (ARRAY(SELECT i.ctid FROM openwop.idempotency_keys i
                                      WHERE i.expires_at < now() LIMIT 5000));
            GET DIAGNOSTICS n = ROW_COUNT;
        END IF;
        removed := removed + n;
        UPDATE openwop.timers x
        SET due_at = clock_timestamp() + CASE WHEN n >= 5000 THEN interval '0' ELSE interval '60 seconds' END
        WHERE x.tenant_id = t.tenant_id AND x.run_id = t.run_id AND x.kind = t.kind AND x.node_id = t.node_id;
    END LOOP;
    RETURN removed;
END
$$;
COMMENT ON FUNCTION openwop._maintain() IS
  'Internal (workers): run due housekeeping timers (idempotency retention sweep); returns rows removed.';

-- Perform one protocol operation and return its response {status, headers, body}. The one
-- place an endpoint's operation is named, so _idempotent can wrap any of them.
CREATE FUNCTION openwop._perform(endpoint text, tenant text, args jsonb) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = ''
AS $$
BEGIN
    CASE endpoint
    WHEN 'runs.create' THEN
        RETURN jsonb_build_object('status', 201, 'headers', '{}'::jsonb, 'body', jsonb_build_object(
            'runId', openwop._start_run_core(args->>'workflowId', args->'inputs', args->'options', tenant,
                                             coalesce((args->>'dedup')::boolean, false)),
            'status', 'pending'));
    WHEN 'runs.cancel' THEN
        RETURN jsonb_build_object('status', 200, 'headers', '{}'::jsonb, 'body', jsonb_build_object(
            'runId', args->'runId',
            'status', openwop._cancel_run_core((args->>'runId')::uuid, args->>'reason', tenant, args->>'cancelledBy')));
    END CASE;
END
$$;
COMMENT ON FUNCTION openwop._perform(text, text, jsonb) IS 'Internal: perform one protocol operation, by endpoint id.';

-- Perform an operation under an optional Idempotency-Key, as `tenant`: {"status", "headers",
-- "body", "replayed"}. With a key, the key is claimed (a duplicate in flight waits here for
-- the first to commit, then replays), the operation runs, and its final response is stored in
-- the same transaction; a final 4xx is stored too, other errors are raised and record nothing.
-- `request` is what the digest covers.
CREATE FUNCTION openwop._idempotent(tenant text, endpoint text, idempotency_key text, request jsonb, args jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = ''
AS $$
#variable_conflict use_variable
DECLARE
    stored   jsonb;
    response jsonb;
    st text; msg text; det text;
BEGIN
    tenant := openwop._act_as(tenant);
    IF idempotency_key IS NULL THEN
        RETURN openwop._perform(endpoint, tenant, args) || '{"replayed": false}';
    END IF;
    stored := openwop._idem_claim(tenant, endpoint, idempotency_key,
                                  encode(sha256(convert_to(request::text, 'UTF8')), 'hex'));
    IF stored IS NOT NULL THEN
        RETURN stored || '{"replayed": true}';
    END IF;
    BEGIN
        response := openwop._perform(endpoint, tenant, args);
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
        response := openwop._cacheable_error(st, msg, det);
        IF response IS NULL THEN
            RAISE;  -- not a final outcome: nothing is recorded, a retry executes again
        END IF;
    END;
    PERFORM openwop._idem_store(tenant, endpoint, idempotency_key, response);
    RETURN response || '{"replayed": false}';
END
$$;
COMMENT ON FUNCTION openwop._idempotent(text, text, text, jsonb, jsonb) IS
  'Internal: run an operation under an optional Idempotency-Key (claim, perform, store; replay or mismatch).';
