-- Edge conditions, trigger rules, limits, disabled nodes, expressions (executed by workers).
SET openwop.tenant = 'regress_a';

-- test_conditions_and_trigger_rules
SELECT workflow_id, revision FROM openwop.register_workflow(wf('route',
    jsonb_build_array(
        node('src', 'core.identity', '{"n":{"type":"variable","variableName":"n"},"tag":{"type":"static","value":"blue"}}'),
        node('big', 'core.noop'),
        node('small', 'core.noop'),
        node('blue', 'core.noop'),
        node('join', 'core.identity', '{"n":{"type":"expression","expression":"variables.n"}}')),
    '[{"id":"to-big","sourceNodeId":"src","targetNodeId":"big","condition":{"type":"expression","expression":"output.n > 10"}},
      {"id":"to-small","sourceNodeId":"src","targetNodeId":"small","condition":{"type":"expression","expression":"output.n <= 10"}},
      {"id":"to-blue","sourceNodeId":"src","targetNodeId":"blue","condition":{"type":"regex","left":"tag","right":"^bl"}},
      {"id":"big-join","sourceNodeId":"big","targetNodeId":"join","triggerRule":"any_success"},
      {"id":"small-join","sourceNodeId":"small","targetNodeId":"join","triggerRule":"any_success"}]',
    '[{"name":"n","type":"number","required":true}]'));
SELECT openwop.start_run('route', '{"n": 3}') AS run \gset
SELECT r->>'status' AS status, r->'outputs' AS outputs FROM openwop.wait_for_run(:'run', '10 seconds') r;
SELECT trail(:'run', 'regress_a');
SELECT payload->>'reason' AS skip_reason FROM openwop.events(:'run') WHERE type = 'node.skipped';

-- test_failure_routed_by_any_failed
SELECT workflow_id FROM openwop.register_workflow(wf('recover',
    jsonb_build_array(node('boom', 'core.fail', '{}', '{"errorCode":"custom_failure","message":"boom"}'),
                      node('next', 'core.noop'), node('handler', 'core.noop')),
    '[{"id":"ok","sourceNodeId":"boom","targetNodeId":"next"},
      {"id":"bad","sourceNodeId":"boom","targetNodeId":"handler","triggerRule":"any_failed"}]'));
SELECT openwop.start_run('recover') AS run \gset
SELECT openwop.wait_for_run(:'run', '10 seconds')->>'status' AS status;
SELECT trail(:'run', 'regress_a');

-- test_node_execution_cap
SELECT workflow_id FROM openwop.register_workflow(wf('chain3',
    jsonb_build_array(node('a', 'core.noop'), node('b', 'core.noop'), node('c', 'core.noop')),
    '[{"id":"ab","sourceNodeId":"a","targetNodeId":"b"},{"id":"bc","sourceNodeId":"b","targetNodeId":"c"}]'));
SELECT openwop.start_run('chain3', '{}', '{"configurable":{"recursionLimit":2}}') AS run \gset
SELECT r->>'status' AS status, r->'error'->>'code' AS code FROM openwop.wait_for_run(:'run', '10 seconds') r;
SELECT trail(:'run', 'regress_a');
SELECT payload FROM openwop.events(:'run') WHERE type = 'cap.breached';

-- test_run_timeout
SELECT workflow_id FROM openwop.register_workflow(wf('slow',
    jsonb_build_array(node('wait', 'core.delay', '{}', '{"delayMs": 60000}'))));
SELECT openwop.start_run('slow', '{}', '{"configurable":{"runTimeoutMs":200}}') AS run \gset
SELECT r->>'status' AS status, r->'error'->>'code' AS code FROM openwop.wait_for_run(:'run', '10 seconds') r;
SELECT trail(:'run', 'regress_a');
SELECT payload->>'kind' AS kind, (payload->>'observed')::int > (payload->>'limit')::int AS over_limit
FROM openwop.events(:'run') WHERE type = 'cap.breached';

-- test_disabled_node_is_skipped
SELECT workflow_id FROM openwop.register_workflow(wf('disabled',
    jsonb_build_array(node('a', 'core.noop') || '{"disabled": true}', node('b', 'core.noop')),
    '[{"id":"ab","sourceNodeId":"a","targetNodeId":"b","triggerRule":"all_complete"}]'));
SELECT openwop.start_run('disabled') AS run \gset
SELECT openwop.wait_for_run(:'run', '10 seconds')->>'status' AS status;
SELECT trail(:'run', 'regress_a');
RESET openwop.tenant;
