-- The run options overlay: configurableSchema, reserved keys, resolved limits.
SET openwop.tenant = 'regress_a';

-- test_configurable_schema_is_enforced
SELECT workflow_id FROM openwop.register_workflow(wf('tunable', jsonb_build_array(node('a', 'core.noop')))
    || '{"configurableSchema": {"type": "object", "properties": {"tone": {"enum": ["formal", "casual"]}}, "additionalProperties": true}}');
SELECT try($$SELECT openwop.start_run('tunable', '{}', '{"configurable": {"tone": "rude"}}')$$);
SELECT openwop.start_run('tunable', '{}', '{"configurable": {"tone": "casual", "extra": 1}}') IS NOT NULL AS accepted;
SELECT try($$SELECT openwop.register_workflow(wf('broken-schema', jsonb_build_array(node('a', 'core.noop')))
    || '{"configurableSchema": {"type": "no-such-type"}}')$$);

-- test_reserved_keys_are_checked_and_clamped
SELECT try($$SELECT openwop.start_run('conformance-noop', '{}', '{"configurable": {"temperature": 3}}')$$);
SELECT try($$SELECT openwop.start_run('conformance-noop', '{}', '{"configurable": {"runTimeoutMs": -5}}')$$);
SELECT try($$SELECT openwop.start_run('conformance-noop', '{}', '{"configurable": {"mockProvider": {"id": "m"}}}')$$);
SELECT try($$SELECT openwop.start_run('conformance-noop', '{}', '{"configurable": {"ai": {"credentialRef": "k"}}}')$$);
SELECT openwop.start_run('conformance-noop', '{}', '{"configurable": {"recursionLimit": 100000, "runTimeoutMs": 99999999999, "maxLoopIterations": 3}}') AS clamped \gset
SELECT limits FROM openwop.runs WHERE id = :'clamped';
SELECT openwop.start_run('conformance-noop', '{}', '{"configurable": {"runTimeoutMs": 2500}}') AS short \gset
SELECT limits->'runTimeoutMs' AS run_timeout_ms FROM openwop.runs WHERE id = :'short';

-- test_discovery_facts
SELECT openwop.host_info()->'configurable'->'recursionLimit' AS recursion_limit,
       openwop.host_info()->'idempotency' AS idempotency;
RESET openwop.tenant;
