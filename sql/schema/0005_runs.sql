-- openwop schema, part 5: starting, reading and cancelling runs.

-- Start a run: the engine's half. Checks the inputs against the workflow's variables and the
-- configurable overlay (the workflow's configurableSchema and the reserved keys), resolves
-- the run's limits, and inserts the run row; the workers are woken when the caller commits.
-- With dedup, refuses (run_already_active, 409) while an equivalent run is active: same
-- tenant, workspace and scopeId (or, without scopeId, same workflow).
CREATE FUNCTION openwop._start_run_core(
    workflow_id text, inputs jsonb, options jsonb, tenant text, dedup boolean
) RETURNS uuid
LANGUAGE plpgsql
SET search_path = ''
AS $$
#variable_conflict use_variable
DECLARE
    wf      record;
    run_id  uuid;
    bad     record;
    conf    jsonb;
    limits  jsonb;
    problem jsonb;
    scope   text;
    active  uuid;
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

    IF options->'owner'->>'workspace' IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM openwop.workspaces w
            WHERE w.tenant_id = tenant AND w.id = options->'owner'->>'workspace') THEN
        PERFORM openwop._raise(403, 'forbidden',
            format('%L is not a workspace of this tenant', options->'owner'->>'workspace'),
            jsonb_build_object('field', 'tenantId'));
    END IF;

    -- The configurable overlay: the workflow's own schema, then the reserved keys, which also
    -- give the run its limits (resolved once, here, and never changed).
    conf := options->'configurable';
    IF conf IS NOT NULL AND wf.input_spec ? 'configurableSchema' THEN
        problem := openwop._check_json_schema(wf.input_spec->'configurableSchema', conf);
        IF problem IS NOT NULL THEN
            PERFORM openwop._raise(400, 'validation_error', 'configurable: ' || (problem->>'message'),
                jsonb_build_object('field', 'configurable' || CASE WHEN problem->>'field' = '' THEN '' ELSE '.' || (problem->>'field') END,
                                   'key', nullif(split_part(problem->>'field', '.', 1), '')));
        END IF;
    END IF;
    limits := openwop._resolve_limits(conf, (wf.input_spec->>'timeoutMs')::bigint);
    IF limits ? 'code' THEN
        PERFORM openwop._raise((limits->>'status')::integer, limits->>'code', limits->>'message', limits->'details');
    END IF;

    IF dedup THEN
        scope := coalesce(options->>'scopeId', 'workflow:' || workflow_id);
        PERFORM pg_advisory_xact_lock(hashtextextended(
            'openwop.dedup:' || tenant || '/' || coalesce(options->'owner'->>'workspace', '') || '/' || scope, 0));
        SELECT r.id INTO active FROM openwop.runs r
        WHERE r.tenant_id = tenant
          AND r.status <> ALL (openwop._terminal_statuses())
          AND coalesce(r.options->>'scopeId', 'workflow:' || r.workflow_id) = scope
          AND coalesce(r.owner->>'workspace', '') = coalesce(options->'owner'->>'workspace', '')
        LIMIT 1;
        IF FOUND THEN
            PERFORM openwop._raise(409, 'run_already_active', format('an equivalent run (%s) is still active', active),
                jsonb_build_object('activeRunId', active,
                                   'activeHost', coalesce(nullif(current_setting('cluster_name'), ''), 'openwop-pg'),
                                   'retryAfter', 1));
        END IF;
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
            limits);
    -- Wake the workers when (and only if) this transaction commits.
    PERFORM openwop._wake_at_commit();
    RETURN run_id;
END
$$;
COMMENT ON FUNCTION openwop._start_run_core(text, jsonb, jsonb, text, boolean) IS
  'Internal: validate and insert a run (no idempotency); raises OpenWOP errors.';

-- Start a run, protocol-shaped: returns {"status", "headers", "body", "replayed"} where body is
-- {runId, status} on success (201). With an Idempotency-Key the exchange is recorded (see
-- openwop._idempotent): a repeat with the same request replays the stored response; a repeat
-- with a different request raises idempotency_key_mismatch (409). Without a key, errors are
-- raised as usual.
CREATE FUNCTION openwop.api_create_run(
    workflow_id     text,
    inputs          jsonb DEFAULT '{}',
    options         jsonb DEFAULT '{}',
    tenant          text DEFAULT openwop.current_tenant(),
    idempotency_key text DEFAULT NULL,
    dedup           boolean DEFAULT false
) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = ''
AS $$
#variable_conflict use_variable
BEGIN
    -- The digest covers what the caller asked for, not who relayed it (principal, transport).
    RETURN openwop._idempotent(tenant, 'runs.create', idempotency_key,
        jsonb_build_object('workflowId', workflow_id, 'inputs', coalesce(inputs, '{}'),
                           'options', coalesce(options, '{}') - 'owner' - 'transport',
                           'workspace', options->'owner'->'workspace', 'dedup', dedup),
        jsonb_build_object('workflowId', workflow_id, 'inputs', inputs, 'options', options, 'dedup', dedup));
END
$$;
COMMENT ON FUNCTION openwop.api_create_run(text, jsonb, jsonb, text, text, boolean) IS
  'Start a run and return the protocol response {status, headers, body, replayed}; honours an Idempotency-Key.';

-- Start a run of the tenant's current revision of a workflow and return its id.
--
-- Works inside any transaction: the run row becomes visible to the workers when that
-- transaction commits (they are woken at that moment), and it never existed if the
-- transaction rolls back. Inputs are checked against the workflow's variables here, so a
-- bad request fails now (validation_error, OW400), not later in the run. With an
-- idempotency_key, a repeated call returns the run the first call started (a duplicate is a
-- result, not an error).
--
-- options (all optional): {"configurable": {...}, "tags": [...], "metadata": {...},
--   "owner": {"workspace": "...", "principal": "..."}, "transport": "rest", "scopeId": "...",
--   "callbackUrl": "..."}
CREATE FUNCTION openwop.start_run(
    workflow_id     text,
    inputs          jsonb DEFAULT '{}',
    options         jsonb DEFAULT '{}',
    tenant          text  DEFAULT openwop.current_tenant(),
    idempotency_key text  DEFAULT NULL
) RETURNS uuid
LANGUAGE plpgsql
SET search_path = ''
AS $$
#variable_conflict use_variable
DECLARE
    response jsonb := openwop.api_create_run(workflow_id, inputs, options, tenant, idempotency_key, false);
BEGIN
    PERFORM openwop._raise_response(response);
    RETURN (response->'body'->>'runId')::uuid;
END
$$;
COMMENT ON FUNCTION openwop.start_run(text, jsonb, jsonb, text, text) IS
  'Start a run of a workflow; returns the run id. Transactional: the run exists only if the caller commits. A repeated idempotency_key returns the same run.';

-- The snapshot document (RunSnapshot shape) of a run row: the one renderer, used by run() for
-- the live projection and by state_at() for a row rebuilt from the log.
CREATE FUNCTION openwop._snapshot(r openwop.runs) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = ''
AS $$
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
$$;
COMMENT ON FUNCTION openwop._snapshot(openwop.runs) IS 'Internal: the RunSnapshot document of a run row.';

-- The run snapshot (RunSnapshot shape). Raises not_found (OW404) for an unknown run or a run of
-- another tenant.
CREATE FUNCTION openwop.run(run_id uuid, tenant text DEFAULT openwop.current_tenant())
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = ''
AS $$
#variable_conflict use_variable
DECLARE
    doc jsonb;
BEGIN
    tenant := openwop._act_as(tenant);
    SELECT openwop._snapshot(r) INTO doc
    FROM openwop.runs r
    WHERE r.tenant_id = tenant AND r.id = run_id;
    IF doc IS NULL THEN
        PERFORM openwop._run_not_found(run_id);
    END IF;
    RETURN doc;
END
$$;
COMMENT ON FUNCTION openwop.run(uuid, text) IS
  'The snapshot of a run as JSON (runId, status, nodeStates, variables, error, ...). Raises OW404 if unknown.';

-- Ask for a run to be cancelled: the engine's half. Returns the resulting status:
-- 'cancelling' (a worker records run.cancelled within moments), or 'cancelled' if that
-- already happened. A run that already completed or failed raises run_terminal (OW409).
CREATE FUNCTION openwop._cancel_run_core(run_id uuid, reason text, tenant text, cancelled_by text)
RETURNS text
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
        PERFORM openwop._run_not_found(run_id);
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
COMMENT ON FUNCTION openwop._cancel_run_core(uuid, text, text, text) IS
  'Internal: request cancellation (no idempotency); raises OpenWOP errors.';

-- Cancel a run, protocol-shaped: {"status": 200, "body": {runId, status}, "replayed"}; honours
-- an Idempotency-Key like api_create_run.
CREATE FUNCTION openwop.api_cancel_run(
    run_id          uuid,
    reason          text DEFAULT NULL,
    tenant          text DEFAULT openwop.current_tenant(),
    cancelled_by    text DEFAULT NULL,
    idempotency_key text DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = ''
AS $$
#variable_conflict use_variable
BEGIN
    RETURN openwop._idempotent(tenant, 'runs.cancel', idempotency_key,
        jsonb_build_object('runId', run_id, 'reason', reason),
        jsonb_build_object('runId', run_id, 'reason', reason, 'cancelledBy', cancelled_by));
END
$$;
COMMENT ON FUNCTION openwop.api_cancel_run(uuid, text, text, text, text) IS
  'Cancel a run and return the protocol response {status, headers, body, replayed}; honours an Idempotency-Key.';

-- Ask for a run to be cancelled. Returns 'cancelling' (a worker records run.cancelled within
-- moments) or 'cancelled'. A run that already completed or failed raises run_terminal (OW409);
-- an unknown run not_found (OW404).
CREATE FUNCTION openwop.cancel_run(
    run_id          uuid,
    reason          text DEFAULT NULL,
    tenant          text DEFAULT openwop.current_tenant(),
    cancelled_by    text DEFAULT NULL,
    idempotency_key text DEFAULT NULL
) RETURNS text
LANGUAGE plpgsql
SET search_path = ''
AS $$
#variable_conflict use_variable
DECLARE
    response jsonb := openwop.api_cancel_run(run_id, reason, tenant, cancelled_by, idempotency_key);
BEGIN
    PERFORM openwop._raise_response(response);
    RETURN response->'body'->>'status';
END
$$;
COMMENT ON FUNCTION openwop.cancel_run(uuid, text, text, text, text) IS
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
        EXIT WHEN doc->>'status' = ANY (openwop._terminal_statuses()) OR clock_timestamp() >= deadline;
        PERFORM pg_sleep(least(pause, greatest(extract(epoch FROM deadline - clock_timestamp()), 0)));
        pause := least(pause * 2, 0.1);
    END LOOP;
    RETURN doc;
END
$$;
COMMENT ON FUNCTION openwop.wait_for_run(uuid, interval, text) IS
  'Block until a run is terminal (or the timeout passes) and return its snapshot.';
