-- openwop schema, part 9: what the host advertises.

-- The engine facts discovery publishes: seeded fixtures and the enforced limits.
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
            'maxRunDurationMs', openwop._setting_int('openwop.max_run_duration_ms', 3600000)))
$$;
COMMENT ON FUNCTION openwop.host_info() IS
  'Facts for discovery: fixture ids, engine and event-log versions, enforced limits.';
