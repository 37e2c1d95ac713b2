-- openwop schema, part 7: the workers' side. Called only by the background workers; one
-- claim and one apply per worker transaction, each a handful of set-based statements, however
-- many runs the batch holds.

-- Claim up to batch_size runs whose ready_at has come, lock them for this transaction (other
-- workers skip them), consume their due timers, and return their state as a JSON array:
-- one `ClaimedRun` (pgext/src/engine/contract.rs) per run.
-- A claim is the row lock itself: if the worker dies, the transaction aborts, the locks go,
-- and the run is claimable again with nothing half-written.
CREATE FUNCTION openwop._claim(batch_size integer) RETURNS jsonb
LANGUAGE sql
SET search_path = ''
AS $$
    WITH claimed AS (
        SELECT r.tenant_id, r.id, r.workflow_id, r.workflow_revision, r.status, r.next_seq,
               r.inputs, r.variables, r.node_states, r.node_executions, r.owner, r.options,
               r.limits, r.cancel_request, r.current_node_id, r.started_at
        FROM openwop.runs r
        WHERE r.ready_at <= clock_timestamp()
        ORDER BY r.ready_at
        LIMIT batch_size
        FOR UPDATE SKIP LOCKED
    ), fired AS (
        DELETE FROM openwop.timers t
        USING claimed c
        WHERE t.tenant_id = c.tenant_id AND t.run_id = c.id AND t.due_at <= clock_timestamp()
        RETURNING t.tenant_id, t.run_id, t.kind, t.node_id, t.due_at
    )
    SELECT coalesce(jsonb_agg(jsonb_build_object(
        'tenantId', c.tenant_id,
        'runId', c.id,
        'workflowId', c.workflow_id,
        'revision', c.workflow_revision,
        'status', c.status,
        'nextSeq', c.next_seq,
        -- What the log says the next sequence is: a run whose counter disagrees is quarantined,
        -- never stepped (it would collide with its own events, or leave a gap).
        'logNextSeq', (SELECT coalesce(max(e.seq) + 1, 0) FROM openwop.events e
                       WHERE e.tenant_id = c.tenant_id AND e.run_id = c.id),
        'inputs', c.inputs,
        'variables', c.variables,
        'nodeStates', c.node_states,
        'nodeExecutions', c.node_executions,
        'owner', c.owner,
        'options', c.options,
        'limits', c.limits,
        'cancelRequest', c.cancel_request,
        'startedAtUs', openwop._us(c.started_at),
        'currentNodeId', c.current_node_id,
        'firedTimers', coalesce((SELECT jsonb_agg(jsonb_build_object('kind', f.kind, 'nodeId', f.node_id,
                                                                     'dueAtUs', openwop._us(f.due_at)))
                                 FROM fired f WHERE f.tenant_id = c.tenant_id AND f.run_id = c.id), '[]'))),
        '[]')
    FROM claimed c
$$;
COMMENT ON FUNCTION openwop._claim(integer) IS 'Internal (workers): claim and lock a batch of ready runs.';

-- Microseconds since the epoch to timestamptz.
-- Exact to the microsecond (to_timestamp goes through a float and may not be): a log folded
-- again must reproduce the stored timestamps.
CREATE FUNCTION openwop._ts(us bigint) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT timestamptz '1970-01-01 00:00:00+00' OPERATOR(pg_catalog.+) (us OPERATOR(pg_catalog.*) interval '1 microsecond') $$;
COMMENT ON FUNCTION openwop._ts(bigint) IS 'Internal: epoch microseconds to timestamptz, exactly.';

-- Timestamptz to epoch microseconds, exactly.
CREATE FUNCTION openwop._us(ts timestamptz) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT (EXTRACT(epoch FROM ts) OPERATOR(pg_catalog.*) 1000000)::bigint $$;
COMMENT ON FUNCTION openwop._us(timestamptz) IS 'Internal: timestamptz to epoch microseconds.';

-- Write the outcome of one worker step for a batch of claimed runs: new events, new timers,
-- and the new projection of each run, then announce the new events. Events and projection
-- commit together, and NOTIFY is only delivered if they do.
-- step = {"events": [...], "timers": [...], "runs": [...], "notify": ["run:seq,run:seq", ...]}
-- (EventRow, TimerRow and RunRow of pgext/src/engine/contract.rs).
CREATE FUNCTION openwop._apply(step jsonb) RETURNS void
LANGUAGE plpgsql
SET search_path = ''
AS $$
DECLARE
    message text;
BEGIN
    INSERT INTO openwop.events (tenant_id, run_id, seq, type, node_id, payload, ts)
    SELECT e.tenant_id, e.run_id, e.seq, e.type, e.node_id, e.payload, openwop._ts(e.ts_us)
    FROM jsonb_to_recordset(step->'events')
         AS e(tenant_id text, run_id uuid, seq integer, type text, node_id text, payload jsonb, ts_us bigint);

    INSERT INTO openwop.timers (tenant_id, run_id, kind, node_id, due_at)
    SELECT t.tenant_id, t.run_id, t.kind, t.node_id, openwop._ts(t.due_us)
    FROM jsonb_to_recordset(step->'timers')
         AS t(tenant_id text, run_id uuid, kind text, node_id text, due_us bigint)
    ON CONFLICT (tenant_id, run_id, kind, node_id) DO UPDATE SET due_at = EXCLUDED.due_at;

    -- A finished run needs none of its timers.
    DELETE FROM openwop.timers t
    USING jsonb_to_recordset(step->'runs') AS u(tenant_id text, run_id uuid, terminal boolean)
    WHERE u.terminal AND t.tenant_id = u.tenant_id AND t.run_id = u.run_id;

    UPDATE openwop.runs r
    SET status          = u.status,
        next_seq        = u.next_seq,
        variables       = u.variables,
        node_states     = u.node_states,
        node_executions = u.node_executions,
        current_node_id = u.current_node_id,
        outputs         = coalesce(u.outputs, r.outputs),
        error           = coalesce(u.error, r.error),
        started_at      = openwop._ts(u.started_at_us),
        completed_at    = coalesce(openwop._ts(u.completed_at_us), r.completed_at),
        deadline_at     = openwop._ts(u.deadline_at_us),
        updated_at      = clock_timestamp(),
        ready_at        = CASE
            WHEN u.runnable THEN clock_timestamp()
            WHEN u.terminal THEN NULL
            ELSE (SELECT min(t.due_at) FROM openwop.timers t
                  WHERE t.tenant_id = r.tenant_id AND t.run_id = r.id) END
    FROM jsonb_to_recordset(step->'runs') AS u(
        tenant_id text, run_id uuid, status text, next_seq integer, variables jsonb,
        node_states jsonb, node_executions integer, current_node_id text, outputs jsonb, error jsonb,
        started_at_us bigint, completed_at_us bigint, deadline_at_us bigint,
        runnable boolean, terminal boolean)
    WHERE r.tenant_id = u.tenant_id AND r.id = u.run_id;

    -- One NOTIFY per chunk of "run_id:last_seq" pairs (normally one per transaction).
    FOR message IN SELECT jsonb_array_elements_text(step->'notify') LOOP
        PERFORM pg_notify('openwop_events', message);
    END LOOP;
END
$$;
COMMENT ON FUNCTION openwop._apply(jsonb) IS 'Internal (workers): write one step''s events, timers and projections.';

-- When the next run becomes ready (NULL: none waiting), so an idle worker sleeps just long enough.
CREATE FUNCTION openwop._next_ready() RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = ''
AS $$ SELECT min(r.ready_at) FROM openwop.runs r WHERE r.ready_at IS NOT NULL $$;
COMMENT ON FUNCTION openwop._next_ready() IS 'Internal (workers): the earliest ready_at, to size the idle sleep.';

-- Fail one run that the engine cannot step (its batch keeps failing even alone, or its row
-- breaks an invariant, e.g. next_seq out of step with its log): record run.failed with
-- internal_error so it stops being claimed and its callers learn why. Runs in its own
-- transaction. The worker names the event type (the engine's catalog is its one home). The event goes after the last one in the log, whatever the run row says:
-- the log is the truth, and the counter may be what is broken.
CREATE FUNCTION openwop._quarantine(tenant text, run_id uuid, message text, failed_event text) RETURNS boolean
LANGUAGE plpgsql
SET search_path = ''
AS $$
#variable_conflict use_variable
DECLARE
    r   openwop.runs;
    f   openwop.runs;
    seq integer;
    err jsonb := jsonb_build_object('code', 'internal_error', 'message', 'the engine could not execute this run',
                                    'details', jsonb_build_object('cause', left(message, 500)));
BEGIN
    SELECT * INTO r FROM openwop.runs x
    WHERE x.tenant_id = tenant AND x.id = run_id FOR UPDATE;
    IF NOT FOUND OR r.status = ANY (openwop._terminal_statuses()) THEN
        RETURN false;  -- already finished (perhaps by another worker): nothing to do
    END IF;
    SELECT coalesce(max(e.seq) + 1, 0) INTO seq FROM openwop.events e
    WHERE e.tenant_id = tenant AND e.run_id = run_id;
    INSERT INTO openwop.events (tenant_id, run_id, seq, type, node_id, payload, ts)
    VALUES (tenant, run_id, seq, failed_event, NULL,
            jsonb_build_object('error', err, 'durationMs',
                coalesce((extract(epoch FROM clock_timestamp() - r.started_at) * 1000)::bigint, 0)),
            clock_timestamp());
    -- The row becomes the fold of its log again, whatever it held.
    f := openwop._run_at(r, seq);
    UPDATE openwop.runs x
    SET status = f.status, next_seq = f.next_seq, node_states = f.node_states,
        node_executions = f.node_executions, current_node_id = f.current_node_id,
        outputs = f.outputs, error = f.error, started_at = f.started_at, completed_at = f.completed_at,
        ready_at = NULL, updated_at = clock_timestamp()
    WHERE x.tenant_id = tenant AND x.id = run_id;
    DELETE FROM openwop.timers t WHERE t.tenant_id = tenant AND t.run_id = run_id;
    PERFORM pg_notify('openwop_events', run_id || ':' || seq);
    RETURN true;
END
$$;
COMMENT ON FUNCTION openwop._quarantine(text, uuid, text, text) IS
  'Internal (workers): fail a run that cannot be stepped, with internal_error (failed_event: the run-failed event type, named by the engine), after the last event of its log. False if it had already finished.';

-- Take a run out of the queue for a while without writing anything (the last resort when
-- even _quarantine fails), so it cannot hold up the runs behind it.
CREATE FUNCTION openwop._park(tenant text, run_id uuid, pause interval) RETURNS void
LANGUAGE sql
SET search_path = ''
AS $$
    UPDATE openwop.runs x SET ready_at = clock_timestamp() + pause
    WHERE x.tenant_id = tenant AND x.id = run_id AND x.ready_at IS NOT NULL
$$;
COMMENT ON FUNCTION openwop._park(text, uuid, interval) IS
  'Internal (workers): postpone a run that cannot even be quarantined.';

-- A run row as it stood after event `seq` of its log: the events up to `seq` folded by the
-- engine's reducer (the same function the workers record events with) onto the run's first
-- state; the identity and configuration columns are the row's own. seq -1: before the first
-- event.
CREATE FUNCTION openwop._run_at(r openwop.runs, seq integer) RETURNS openwop.runs
LANGUAGE plpgsql STABLE
SET search_path = ''
AS $$
DECLARE
    u jsonb := openwop._fold(r.variables, coalesce((
        SELECT jsonb_agg(jsonb_build_object('seq', e.seq, 'type', e.type, 'nodeId', e.node_id,
                                            'payload', e.payload, 'tsUs', openwop._us(e.ts)) ORDER BY e.seq)
        FROM openwop.events e
        WHERE e.tenant_id = r.tenant_id AND e.run_id = r.id AND e.seq <= _run_at.seq), '[]'));
BEGIN
    r.status          := u->>'status';
    r.next_seq        := (u->>'next_seq')::integer;
    r.node_states     := u->'node_states';
    r.node_executions := (u->>'node_executions')::integer;
    r.current_node_id := u->>'current_node_id';
    r.outputs         := nullif(u->'outputs', 'null');
    r.error           := nullif(u->'error', 'null');
    r.started_at      := openwop._ts((u->>'started_at_us')::bigint);
    r.completed_at    := openwop._ts((u->>'completed_at_us')::bigint);
    RETURN r;
END
$$;
COMMENT ON FUNCTION openwop._run_at(openwop.runs, integer) IS
  'Internal: a run row rebuilt from its log up to a sequence (the reducer''s fold).';

-- The snapshot of a run as of any sequence of its log (-1: before the first event), rendered
-- like run(). A pending cancel request is not part of the log, so a run being cancelled reads
-- as it was before the request.
CREATE FUNCTION openwop.state_at(run_id uuid, seq integer, tenant text DEFAULT openwop.current_tenant())
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = ''
AS $$
#variable_conflict use_variable
DECLARE
    r openwop.runs;
BEGIN
    tenant := openwop._act_as(tenant);
    SELECT * INTO r FROM openwop.runs x WHERE x.tenant_id = tenant AND x.id = run_id;
    IF NOT FOUND THEN
        PERFORM openwop._run_not_found(run_id);
    END IF;
    IF seq IS NULL OR seq < -1 OR seq >= r.next_seq THEN
        PERFORM openwop._raise(400, 'validation_error',
            format('seq must be between -1 and %s (the last event of run %s)', r.next_seq - 1, run_id),
            jsonb_build_object('field', 'seq', 'min', -1, 'max', r.next_seq - 1));
    END IF;
    RETURN openwop._snapshot(openwop._run_at(r, seq));
END
$$;
COMMENT ON FUNCTION openwop.state_at(uuid, integer, text) IS
  'The snapshot of a run as of event sequence seq (-1: before the first), folded from its log.';
