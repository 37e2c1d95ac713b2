-- openwop.state_at: the snapshot as of any event, folded from the log by the engine's reducer.
SET openwop.tenant = 'regress_a';
SELECT openwop.start_run('conformance-multi-node') AS run \gset
SELECT openwop.wait_for_run(:'run', '10 seconds')->>'status' AS final_status;

-- test_each_event_moves_the_snapshot
SELECT e.seq, e.type, coalesce(e.node_id, '') AS node,
       s->>'status' AS status, coalesce(s->>'currentNodeId', '') AS current,
       (SELECT string_agg(k || ':' || (v->>'status'), ' ' ORDER BY k) FROM jsonb_each(s->'nodeStates') AS n(k, v)) AS nodes,
       s->>'lastSequence' AS last
FROM openwop.events(:'run') e, LATERAL openwop.state_at(:'run', e.seq) s
ORDER BY e.seq;
SELECT s->>'status' AS before_any_event, s->'nodeStates' AS nodes, s->>'lastSequence' AS last
FROM openwop.state_at(:'run', -1) s;

-- test_the_last_state_is_the_live_snapshot
SELECT openwop.state_at(:'run', (openwop.run(:'run')->>'lastSequence')::int) = openwop.run(:'run') AS fold_equals_projection;

-- test_bad_sequences_and_runs_are_refused
SELECT try(format('SELECT openwop.state_at(%L, 8)', :'run'));
SELECT try(format('SELECT openwop.state_at(%L, -2)', :'run'));
SELECT try(format('SELECT openwop.state_at(%L, NULL)', :'run'));
SELECT try($$SELECT openwop.state_at('00000000-0000-7000-8000-000000000000', 0)$$);
SELECT try(format('SELECT openwop.state_at(%L, 0, %L)', :'run', 'regress_b'));
RESET openwop.tenant;
