-- Runs executed by the real background workers: lifecycle, events, failure, delay, cancel.
SET openwop.tenant = 'regress_a';
SELECT count(*) AS fixtures FROM openwop.seed_fixtures();

-- test_noop_completes_with_gap_free_events
SELECT openwop.start_run('conformance-noop') AS run \gset
SELECT openwop.run(:'run')->>'status' IN ('pending', 'running', 'completed') AS fresh_status_ok;
SELECT r->>'status' AS status, r->'outputs' AS outputs, r->>'lastSequence' AS last_seq, r->'owner' AS owner
FROM openwop.wait_for_run(:'run', '10 seconds') r;
SELECT trail(:'run', 'regress_a');
SELECT array_agg(seq ORDER BY seq) = array(SELECT generate_series(0, max(seq)) FROM openwop.events(:'run')) AS gap_free
FROM openwop.events(:'run');

-- test_multi_node_runs_in_edge_order
SELECT openwop.start_run('conformance-multi-node') AS run \gset
SELECT openwop.wait_for_run(:'run', '10 seconds')->>'status' AS status;
SELECT trail(:'run', 'regress_a');

-- test_identity_echoes_payload
SELECT openwop.start_run('conformance-identity', '{"payload":{"a":[1,2,{"b":null}],"s":"x"}}') AS run \gset
SELECT r->>'status' AS status,
       r->'variables'->'payload' = '{"a":[1,2,{"b":null}],"s":"x"}' AS variable_equal,
       r->'outputs'->'payload' = '{"a":[1,2,{"b":null}],"s":"x"}' AS output_equal
FROM openwop.wait_for_run(:'run', '10 seconds') r;

-- test_failure_fails_with_structured_error
SELECT openwop.start_run('conformance-failure') AS run \gset
SELECT r->>'status' AS status, r->'error' AS error, r->>'currentNodeId' AS failed_node
FROM openwop.wait_for_run(:'run', '10 seconds') r;
SELECT trail(:'run', 'regress_a');
SELECT payload - 'durationMs' AS payload FROM openwop.events(:'run') WHERE type = 'run.failed';

-- test_delay_waits_on_a_durable_timer
SELECT openwop.start_run('conformance-delay', '{"delayMs": 2000}') AS run \gset
SELECT pg_sleep(0.2);
SELECT r->>'status' AS status_during_delay, r->>'currentNodeId' AS current
FROM openwop.run(:'run') r;
SELECT count(*) AS pending_timers FROM openwop.pending_timers WHERE run_id = :'run' AND kind = 'delay';
SELECT r->>'status' AS status, r->'outputs' AS outputs FROM openwop.wait_for_run(:'run', '10 seconds') r;
SELECT trail(:'run', 'regress_a');
SELECT count(*) AS timers_left FROM openwop.timers WHERE run_id = :'run';

-- test_cancel_mid_delay
SELECT openwop.start_run('conformance-cancellable', '{"delayMs": 60000}') AS run \gset
SELECT pg_sleep(0.1);
SELECT openwop.cancel_run(:'run', 'regress cancel') AS cancel_status;
SELECT r->>'status' AS status FROM openwop.wait_for_run(:'run', '5 seconds') r;
SELECT trail(:'run', 'regress_a');
SELECT payload->>'reason' AS reason FROM openwop.events(:'run') WHERE type = 'run.cancelled';
SELECT openwop.cancel_run(:'run') AS cancel_again;
SELECT count(*) AS timers_left FROM openwop.timers WHERE run_id = :'run';

-- test_cancel_errors
SELECT openwop.start_run('conformance-noop') AS done \gset
SELECT openwop.wait_for_run(:'done', '10 seconds')->>'status' AS status;
SELECT try(format('SELECT openwop.cancel_run(%L)', :'done'));
SELECT try($$SELECT openwop.cancel_run('00000000-0000-7000-8000-000000000000')$$);
SELECT try($$SELECT openwop.run('00000000-0000-7000-8000-000000000000')$$);
SELECT try($$SELECT * FROM openwop.events('00000000-0000-7000-8000-000000000000')$$);

-- test_start_run_input_errors
SELECT try($$SELECT openwop.start_run('no-such-workflow')$$);
SELECT try($$SELECT openwop.start_run('conformance-idempotent')$$);
SELECT try($$SELECT openwop.start_run('conformance-delay', '{"delayMs":"soon"}')$$);
SELECT try($$SELECT openwop.start_run('conformance-noop', '[1,2]')$$);
SELECT try($$SELECT openwop.start_run('conformance-noop', '{}', '{"configurable":{"recursionLimit":0}}')$$);

-- test_rolled_back_start_never_exists
BEGIN;
SELECT openwop.start_run('conformance-noop') AS ghost \gset
ROLLBACK;
SELECT pg_sleep(0.3);
SELECT count(*) AS ghost_rows FROM openwop.runs WHERE id = :'ghost';
SELECT count(*) AS ghost_events FROM openwop.event_log WHERE run_id = :'ghost';

-- test_committed_transaction_start_completes
BEGIN;
CREATE TEMP TABLE orders (id int, run uuid);
INSERT INTO orders VALUES (1, openwop.start_run('conformance-noop'));
COMMIT;
SELECT openwop.wait_for_run(run, '10 seconds')->>'status' AS status FROM orders;

-- test_savepoint_rollback_drops_only_that_run
BEGIN;
SELECT openwop.start_run('conformance-noop') AS kept \gset
SAVEPOINT s;
SELECT openwop.start_run('conformance-noop') AS dropped \gset
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT openwop.wait_for_run(:'kept', '10 seconds')->>'status' AS kept_status;
SELECT count(*) AS dropped_rows FROM openwop.runs WHERE id = :'dropped';

-- test_other_tenant_cannot_see_the_run
SELECT try(format('SELECT openwop.run(%L, %L)', :'kept', 'regress_b'));
SELECT try(format('SELECT openwop.cancel_run(%L, NULL, %L)', :'kept', 'regress_b'));
RESET openwop.tenant;
