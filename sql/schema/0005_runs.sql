-- openwop schema, part 5: starting, reading and cancelling runs.

-- Start a run of the tenant's current revision of a workflow and return its id.
--
-- Works inside any transaction: the run row becomes visible to the workers when that
-- transaction commits (they are woken at that moment), and it never existed if the
-- transaction rolls back. Inputs are checked against the workflow's variables here, so a
-- bad request fails now (validation_error, OW400), not later in the run.
--
-- options (all optional): {"configurable": {...}, "tags": [...], "metadata": {...},
--   "owner": {"workspace": "...", "principal": "..."}, "transport": "rest", "scopeId": "...",
--   "callbackUrl": "..."}
CREATE FUNCTION openwop.start_run(
    workflow_id text,
    inputs      jsonb DEFAULT '{}',
    options     jsonb DEFAULT '{}',
    tenant      text  DEFAULT openwop.current_tenant()
) RETURNS uuid
LANGUAGE plpgsql
SET search_path = ''
AS $$
#variable_conflict use_variable
DECLARE
    wf        record;
    run_id    uuid;
    bad       record;
    conf      jsonb;
    max_nodes bigint := openwop._setting_int('openwop.max_node_executions', 100);
    max_ms    bigint := openwop._setting_int('openwop.max_run_duration_ms', 3600000);
    node_cap  bigint;
    time_cap  bigint;
BEGIN
    inputs  := coalesce(inputs, '{}');
    options := coalesce(options, '{}');
    IF jsonb_typeof(inputs) <> 'object' THEN
        PERFORM openwop._raise(400, 'validation_error', 'inputs must be a JSON object',
            jsonb_build_object('field', 'inputs'));
    END IF;
    IF jsonb_typeof(options) <> 'object' THEN
        PERFORM openwop._raise(400, 'validation_error', 'options must be a JSON object',
            jsonb_build_object('field', 'options'));
    END IF;

    SELECT w.revision, w.input_spec INTO wf
    FROM openwop.workflows w
    WHERE w.tenant_id = tenant AND w.id = workflow_id
    ORDER BY w.revision DESC LIMIT 1;
    IF NOT FOUND THEN
        PERFORM openwop._raise(400, 'validation_error', format('unknown workflowId %L', workflow_id),
            jsonb_build_object('field', 'workflowId', 'workflowId', workflow_id));
    END IF;

    -- Required variables without a default must be supplied.
    SELECT r.name INTO bad
    FROM jsonb_array_elements_text(wf.input_spec->'required') AS r(name)
    WHERE NOT inputs ? r.name LIMIT 1;
    IF FOUND THEN
        PERFORM openwop._raise(400, 'validation_error', format('missing required input %L', bad.name),
            jsonb_build_object('field', 'inputs.' || bad.name));
    END IF;
    -- Declared variables must have the declared JSON type.
    SELECT i.key, t.type, jsonb_typeof(i.value) AS got INTO bad
    FROM jsonb_each(inputs) AS i(key, value)
    JOIN jsonb_each_text(wf.input_spec->'types') AS t(name, type) ON t.name = i.key
    WHERE jsonb_typeof(i.value) <> t.type AND jsonb_typeof(i.value) <> 'null'
    LIMIT 1;
    IF FOUND THEN
        PERFORM openwop._raise(400, 'validation_error',
            format('input %L must be of type %s, got %s', bad.key, bad.type, bad.got),
            jsonb_build_object('field', 'inputs.' || bad.key, 'expected', bad.type, 'got', bad.got));
    END IF;

    -- Limits are resolved once, at create: the smaller of the host maximum, the workflow's own
    -- settings.timeout and the caller's configurable overlay.
    conf := coalesce(options->'configurable', '{}');
    node_cap := max_nodes;
    IF conf ? 'recursionLimit' THEN
        IF jsonb_typeof(conf->'recursionLimit') <> 'number' OR (conf->>'recursionLimit')::numeric < 1
           OR (conf->>'recursionLimit')::numeric <> trunc((conf->>'recursionLimit')::numeric) THEN
            PERFORM openwop._raise(400, 'validation_error', 'configurable.recursionLimit must be an integer >= 1',
                jsonb_build_object('key', 'recursionLimit', 'value', conf->'recursionLimit', 'min', 1, 'max', max_nodes));
        END IF;
        node_cap := least(max_nodes, (conf->>'recursionLimit')::numeric)::bigint;
    END IF;
    time_cap := max_ms;
    IF (wf.input_spec->>'timeoutMs')::bigint > 0 THEN
        time_cap := least(time_cap, (wf.input_spec->>'timeoutMs')::bigint);
    END IF;
    IF conf ? 'runTimeoutMs' THEN
        IF jsonb_typeof(conf->'runTimeoutMs') <> 'number' OR (conf->>'runTimeoutMs')::numeric < 1 THEN
            PERFORM openwop._raise(400, 'validation_error', 'configurable.runTimeoutMs must be a number >= 1',
                jsonb_build_object('key', 'runTimeoutMs', 'value', conf->'runTimeoutMs', 'min', 1, 'max', max_ms));
        END IF;
        time_cap := least(time_cap, (conf->>'runTimeoutMs')::numeric)::bigint;
    END IF;

    run_id := openwop._uuid_v7();
    INSERT INTO openwop.runs (tenant_id, id, workflow_id, workflow_revision, ready_at, inputs, variables,
                              owner, options, limits)
    VALUES (tenant, run_id, workflow_id, wf.revision, now(), inputs,
            (wf.input_spec->'defaults') || inputs,
            jsonb_strip_nulls(jsonb_build_object(
                'tenant', tenant,
                'workspace', options->'owner'->'workspace',
                'principal', options->'owner'->'principal')),
            options - 'owner',
            jsonb_build_object('maxNodeExecutions', node_cap, 'runTimeoutMs', time_cap));
    -- Wake the workers when (and only if) this transaction commits.
    PERFORM openwop._wake_at_commit();
    RETURN run_id;
END
$$;
COMMENT ON FUNCTION openwop.start_run(text, jsonb, jsonb, text) IS
  'Start a run of a workflow; returns the run id. Transactional: the run exists only if the caller commits.';

-- The run snapshot (RunSnapshot shape). Raises not_found (OW404) for an unknown run or a run of
-- another tenant.
CREATE FUNCTION openwop.run(run_id uuid, tenant text DEFAULT openwop.current_tenant())
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = ''
AS $$
#variable_conflict use_variable
DECLARE
    doc jsonb;
BEGIN
    SELECT jsonb_strip_nulls(jsonb_build_object(
               'runId', r.id,
               'workflowId', r.workflow_id,
               'status', r.status,
               'currentNodeId', r.current_node_id,
               'createdAt', openwop._iso(r.created_at),
               'startedAt', openwop._iso(r.started_at),
               'completedAt', openwop._iso(r.completed_at),
               'scopeId', r.options->>'scopeId',
               'engineVersion', 1,
               'eventLogSchemaVersion', r.era,
               'lastSequence', r.next_seq - 1))
           || jsonb_build_object('owner', r.owner, 'nodeStates', r.node_states,
                                 'variables', r.variables, 'channels', '{}'::jsonb)
           || openwop._field('error', r.error)
           || openwop._field('outputs', r.outputs)
           || openwop._field('tags', r.options->'tags')
           || openwop._field('metadata', r.options->'metadata')
           || openwop._field('configurable', r.options->'configurable')
    INTO doc
    FROM openwop.runs r
    WHERE r.tenant_id = tenant AND r.id = run_id;
    IF doc IS NULL THEN
        PERFORM openwop._raise(404, 'not_found', format('run %s not found', run_id),
            jsonb_build_object('runId', run_id));
    END IF;
    RETURN doc;
END
$$;
COMMENT ON FUNCTION openwop.run(uuid, text) IS
  'The snapshot of a run as JSON (runId, status, nodeStates, variables, error, ...). Raises OW404 if unknown.';

-- Ask for a run to be cancelled. Returns the resulting status: 'cancelling' (a worker will
-- record run.cancelled within moments), or 'cancelled' if that already happened. A run that
-- already completed or failed raises run_terminal (OW409).
CREATE FUNCTION openwop.cancel_run(
    run_id uuid,
    reason text DEFAULT NULL,
    tenant text DEFAULT openwop.current_tenant(),
    cancelled_by text DEFAULT NULL
) RETURNS text
LANGUAGE plpgsql
SET search_path = ''
AS $$
#variable_conflict use_variable
DECLARE
    st text;
BEGIN
    SELECT r.status INTO st FROM openwop.runs r
    WHERE r.tenant_id = tenant AND r.id = run_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM openwop._raise(404, 'not_found', format('run %s not found', run_id),
            jsonb_build_object('runId', run_id));
    END IF;
    IF st IN ('cancelled', 'cancelling') THEN
        RETURN st;
    END IF;
    IF st IN ('completed', 'failed') THEN
        PERFORM openwop._raise(409, 'run_terminal', format('run %s is already %s', run_id, st),
            jsonb_build_object('runId', run_id, 'runStatus', st));
    END IF;
    UPDATE openwop.runs r
    SET status = 'cancelling',
        cancel_request = jsonb_strip_nulls(jsonb_build_object(
            'reason', reason, 'cancelledBy', coalesce(cancelled_by, session_user::text),
            'requestedAt', openwop._iso(clock_timestamp()))),
        ready_at = now(),
        updated_at = clock_timestamp()
    WHERE r.tenant_id = tenant AND r.id = run_id;
    PERFORM openwop._wake_at_commit();
    RETURN 'cancelling';
END
$$;
COMMENT ON FUNCTION openwop.cancel_run(uuid, text, text, text) IS
  'Request cancellation of a run; returns cancelling/cancelled. Raises OW404 if unknown, OW409 run_terminal if finished.';

-- Wait (in this session) until a run is terminal or the timeout passes, then return its
-- snapshot. Each loop reads committed state, so call it outside the transaction that started
-- the run (in READ COMMITTED).
CREATE FUNCTION openwop.wait_for_run(
    run_id  uuid,
    timeout interval DEFAULT '30 seconds',
    tenant  text DEFAULT openwop.current_tenant()
) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = ''
AS $$
#variable_conflict use_variable
DECLARE
    deadline timestamptz := clock_timestamp() + timeout;
    pause    float8 := 0.002;
    doc      jsonb;
BEGIN
    LOOP
        doc := openwop.run(run_id, tenant);
        EXIT WHEN doc->>'status' IN ('completed', 'failed', 'cancelled') OR clock_timestamp() >= deadline;
        PERFORM pg_sleep(least(pause, greatest(extract(epoch FROM deadline - clock_timestamp()), 0)));
        pause := least(pause * 2, 0.1);
    END LOOP;
    RETURN doc;
END
$$;
COMMENT ON FUNCTION openwop.wait_for_run(uuid, interval, text) IS
  'Block until a run is terminal (or the timeout passes) and return its snapshot.';
