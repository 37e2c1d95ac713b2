-- openwop schema, part 9: what the host advertises.

-- The engine facts discovery publishes: seeded fixtures, versions, the enforced limits, the
-- reserved configurable keys with their bounds, and the idempotency record retention.
CREATE FUNCTION openwop.host_info() RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = ''
AS $$
    SELECT jsonb_build_object(
        'fixtures', to_jsonb(openwop.fixture_ids()),
        'engineVersion', 1,
        'eventLogSchemaVersion', 3,
        'limits', jsonb_build_object(
            'maxNodeExecutions', openwop._setting_int('openwop.max_node_executions', 100),
            'maxRunDurationMs', openwop._setting_int('openwop.max_run_duration_ms', 3600000),
            'maxLoopIterations', openwop._setting_int('openwop.max_loop_iterations', 100)),
        'configurable', openwop._advertised_configurable(),
        'idempotency', jsonb_build_object(
            'supported', true,
            'layer1RetentionSeconds', openwop._setting_int('openwop.idempotency_retention_s', 86400),
            'crossRegion', 'single-region'))
$$;
COMMENT ON FUNCTION openwop.host_info() IS
  'Facts for discovery: fixture ids, engine and event-log versions, limits, configurable bounds, idempotency.';
