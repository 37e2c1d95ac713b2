-- register_workflow: the closed shape, semantic checks, revisions.
SET openwop.tenant = 'regress_a';

-- test_register_and_reregister
SELECT * FROM openwop.register_workflow(wf('w-one', jsonb_build_array(node('a', 'core.noop'))));
SELECT * FROM openwop.register_workflow(wf('w-one', jsonb_build_array(node('a', 'core.noop'))));
SELECT * FROM openwop.register_workflow(wf('w-one', jsonb_build_array(node('a', 'core.noop'), node('b', 'core.noop'))));
SELECT openwop.workflow('w-one')->'nodes'->1->>'id' AS second_node;
SELECT openwop.workflow('w-unknown') IS NULL AS unknown_is_null;

-- test_shape_errors_name_the_field
SELECT try($$SELECT openwop.register_workflow('{"id":"x"}')$$);
SELECT try($$SELECT openwop.register_workflow(wf('Bad Id', jsonb_build_array(node('a', 'core.noop'))))$$);
SELECT try($$SELECT openwop.register_workflow(wf('w', '[]'))$$);
SELECT try($$SELECT openwop.register_workflow(wf('w', jsonb_build_array(node('a', 'core.noop') || '{"extra":1}')))$$);
SELECT try($$SELECT openwop.register_workflow(wf('w', jsonb_build_array(node('a', 'core.noop')) ) || '{"surprise":true}')$$);
SELECT try($$SELECT openwop.register_workflow(wf('w', jsonb_build_array(node('a', 'core.noop', '{"p":{"type":"telepathy"}}'))))$$);

-- test_semantic_errors
SELECT try($$SELECT openwop.register_workflow(wf('w', jsonb_build_array(node('a', 'core.teleport'))))$$);
SELECT try($$SELECT openwop.register_workflow(wf('w', jsonb_build_array(node('a', 'core.noop'), node('a', 'core.noop'))))$$);
SELECT try($$SELECT openwop.register_workflow(wf('w', jsonb_build_array(node('a', 'core.noop')),
    '[{"id":"e","sourceNodeId":"a","targetNodeId":"ghost"}]'))$$);
SELECT try($$SELECT openwop.register_workflow(wf('w', jsonb_build_array(node('a', 'core.noop'), node('b', 'core.noop')),
    '[{"id":"e1","sourceNodeId":"a","targetNodeId":"b"},{"id":"e2","sourceNodeId":"b","targetNodeId":"a"}]'))$$);
SELECT try($$SELECT openwop.register_workflow(wf('w', jsonb_build_array(node('a', 'core.noop'), node('b', 'core.noop')),
    '[{"id":"e","sourceNodeId":"a","targetNodeId":"b","condition":{"type":"expression","expression":"a =="}}]'))$$);
SELECT try($$SELECT openwop.register_workflow(wf('w', jsonb_build_array(node('a', 'core.identity', '{"x":{"type":"variable","variableName":"nope"}}'))))$$);
SELECT try($$SELECT openwop.register_workflow(wf('w', jsonb_build_array(node('a', 'core.noop')), '[]',
    '[{"name":"v","type":"string"},{"name":"v","type":"number"}]'))$$);

-- test_unknown_tenant
SELECT try($$SELECT openwop.register_workflow(wf('w', jsonb_build_array(node('a', 'core.noop'))), 'no_such_tenant')$$);

-- test_seed_fixtures_is_idempotent
SELECT openwop.seed_fixtures();
SELECT count(*) AS revisions FROM openwop.workflows WHERE tenant_id = 'regress_a' AND is_fixture;
SELECT count(*) AS reseeded FROM openwop.seed_fixtures();
SELECT count(*) AS revisions_after_reseed FROM openwop.workflows WHERE tenant_id = 'regress_a' AND is_fixture;
SELECT 'conformance-noop' = ANY (openwop.fixture_ids()) AS listed;
RESET openwop.tenant;
