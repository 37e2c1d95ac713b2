-- Idempotency-Key (layer 1): replay, mismatch, cached 4xx, leases, dedup, retention sweep.
SET openwop.tenant = 'regress_b';
SELECT count(*) AS fixtures FROM openwop.seed_fixtures();

-- test_same_key_same_request_returns_the_same_run
SELECT openwop.start_run('conformance-noop', '{}', '{}', 'regress_b', 'order-1001') AS first \gset
SELECT openwop.start_run('conformance-noop', '{}', '{}', 'regress_b', 'order-1001') = :'first' AS same_run;
SELECT count(*) AS runs_with_that_key FROM openwop.runs WHERE id = :'first';
SELECT r->>'status' AS status, r->'replayed' AS replayed, r->'body'->>'runId' = :'first' AS same_body
FROM openwop.api_create_run('conformance-noop', '{}', '{}', 'regress_b', 'order-1001') r;
-- the principal relaying the request is not part of it
SELECT (r->'replayed')::boolean AS replayed
FROM openwop.api_create_run('conformance-noop', '{}', '{"owner":{"principal":"someone-else"},"transport":"sql"}', 'regress_b', 'order-1001') r;

-- test_same_key_different_request_is_a_mismatch
SELECT try($$SELECT openwop.start_run('conformance-noop', '{}', '{"tags":["x"]}', 'regress_b', 'order-1001')$$);
SELECT try($$SELECT openwop.start_run('conformance-multi-node', '{}', '{}', 'regress_b', 'order-1001')$$);
-- the same key is independent on another endpoint and in another tenant
SELECT openwop.start_run('conformance-noop', '{}', '{}', 'regress_a', 'order-1001') <> :'first' AS other_tenant_new_run;

-- test_final_4xx_outcomes_are_replayed_retryable_ones_are_not
SELECT r->'status' AS status, r->'replayed' AS replayed, r->'body'->>'error' AS error
FROM openwop.api_create_run('no-such-workflow', '{}', '{}', 'regress_b', 'bad-request-1') r;
SELECT r->'status' AS status, r->'replayed' AS replayed, r->'body'->>'error' AS error
FROM openwop.api_create_run('no-such-workflow', '{}', '{}', 'regress_b', 'bad-request-1') r;
SELECT try($$SELECT openwop.start_run('no-such-workflow', '{}', '{}', 'regress_b', 'bad-request-1')$$);
SELECT count(*) AS records FROM openwop.idempotency_keys
WHERE tenant_id = 'regress_b' AND key_hash = sha256('bad-request-1'::bytea) AND response_status = 400;

-- test_key_grammar
SELECT try($$SELECT openwop.start_run('conformance-noop', '{}', '{}', 'regress_b', 'has spaces')$$);
SELECT try($$SELECT openwop.start_run('conformance-noop', '{}', '{}', 'regress_b', '')$$);
SELECT try(format($$SELECT openwop.start_run('conformance-noop', '{}', '{}', 'regress_b', %L)$$, repeat('k', 256)));

-- test_raw_keys_are_never_stored
SELECT count(*) AS raw_key_visible FROM openwop.idempotency_keys k
WHERE position('order-1001' IN k::text) > 0;

-- test_live_lease_is_in_flight_and_stale_lease_is_taken_over
INSERT INTO openwop.idempotency_keys (tenant_id, endpoint, key_hash, digest, state, lease_owner, lease_expires_at, expires_at)
VALUES ('regress_b', 'runs.create', sha256('held-elsewhere'::bytea),
        encode(sha256(convert_to(jsonb_build_object('workflowId', 'conformance-noop', 'inputs', '{}'::jsonb,
            'options', '{}'::jsonb, 'workspace', NULL, 'dedup', false)::text, 'UTF8')), 'hex'),
        'pending', 'edge-7', clock_timestamp() + interval '1 hour', now() + interval '1 day'),
       ('regress_b', 'runs.create', sha256('crashed-owner'::bytea),
        encode(sha256(convert_to(jsonb_build_object('workflowId', 'conformance-noop', 'inputs', '{}'::jsonb,
            'options', '{}'::jsonb, 'workspace', NULL, 'dedup', false)::text, 'UTF8')), 'hex'),
        'pending', 'edge-8', clock_timestamp() - interval '1 minute', now() + interval '1 day');
SELECT regexp_replace(try($$SELECT openwop.start_run('conformance-noop', '{}', '{}', 'regress_b', 'held-elsewhere')$$),
                      '"retryAfter": [0-9]+', '"retryAfter": N') AS in_flight;
SELECT openwop.start_run('conformance-noop', '{}', '{}', 'regress_b', 'crashed-owner') IS NOT NULL AS taken_over;
SELECT state, lease_owner IS NULL AS lease_released, response_status FROM openwop.idempotency_keys
WHERE tenant_id = 'regress_b' AND key_hash = sha256('crashed-owner'::bytea);

-- test_cancel_replays_its_first_answer
SELECT openwop.start_run('conformance-cancellable', '{"delayMs": 60000}') AS slow \gset
SELECT r->'body'->>'status' AS first_answer, r->'replayed' AS replayed
FROM openwop.api_cancel_run(:'slow', 'stop', 'regress_b', NULL, 'cancel-slow-1') r;
SELECT openwop.wait_for_run(:'slow', '5 seconds')->>'status' AS status;
SELECT r->'body'->>'status' AS replayed_answer, r->'replayed' AS replayed
FROM openwop.api_cancel_run(:'slow', 'stop', 'regress_b', NULL, 'cancel-slow-1') r;
SELECT try(format($$SELECT openwop.cancel_run(%L, 'another reason', 'regress_b', NULL, 'cancel-slow-1')$$, :'slow'));

-- test_dedup_refuses_an_equivalent_active_run
SELECT (openwop.api_create_run('conformance-cancellable', '{"delayMs": 60000}', '{"scopeId":"invoice-7"}', 'regress_b', NULL, true)
        ->'body'->>'runId') AS active \gset
SELECT try($$SELECT openwop.api_create_run('conformance-cancellable', '{}', '{"scopeId":"invoice-7"}', 'regress_b', NULL, true)$$);
SELECT openwop.api_create_run('conformance-cancellable', '{}', '{"scopeId":"invoice-8"}', 'regress_b', NULL, true)->'status' AS other_scope;
SELECT (openwop.api_create_run('conformance-cancellable', '{}', '{"scopeId":"invoice-7"}', 'regress_b', NULL, false)
        ->'body'->>'runId') AS twin \gset
SELECT openwop.cancel_run(:'active') AS cancel_active, openwop.cancel_run(:'twin') AS cancel_twin;
SELECT openwop.wait_for_run(:'active', '5 seconds')->>'status' AS active_status,
       openwop.wait_for_run(:'twin', '5 seconds')->>'status' AS twin_status;
SELECT openwop.api_create_run('conformance-noop', '{}', '{"scopeId":"invoice-7"}', 'regress_b', NULL, true)->'status' AS after_cancel;
SELECT count(*) AS cancelled FROM (
    SELECT openwop.cancel_run(r.id) FROM openwop.runs r
    WHERE r.tenant_id = 'regress_b' AND r.workflow_id = 'conformance-cancellable'
      AND r.status NOT IN ('completed', 'failed', 'cancelled')) c;

-- test_retention_sweep_runs_on_the_engine_timer
INSERT INTO openwop.idempotency_keys (tenant_id, endpoint, key_hash, digest, state, created_at, expires_at)
VALUES ('regress_b', 'runs.create', sha256('ancient'::bytea), 'x', 'completed', now() - interval '2 days', now() - interval '1 day');
UPDATE openwop.timers SET due_at = now() - interval '1 second' WHERE kind = 'sweep';
-- Whoever fires the due timer first (this call, or an idle worker) sweeps the record.
SELECT openwop._maintain() >= 0 AS maintained;
DO $$
BEGIN
    FOR i IN 1..100 LOOP
        EXIT WHEN NOT EXISTS (SELECT 1 FROM openwop.idempotency_keys WHERE key_hash = sha256('ancient'::bytea));
        PERFORM pg_sleep(0.05);
    END LOOP;
END
$$;
SELECT count(*) AS ancient_left FROM openwop.idempotency_keys WHERE key_hash = sha256('ancient'::bytea);
SELECT due_at > now() AS sweep_rearmed FROM openwop.timers WHERE kind = 'sweep';
RESET openwop.tenant;
