-- Every run's stored projection (the columns the engine maintains) equals the fold of its
-- event log (openwop._run_at at its last event, what openwop.state_at renders): a writer that
-- changed a run without recording an event breaks it. One snapshot for the whole check, so
-- runs still in flight compare consistently. A pending cancel request is not an event: the
-- status of a run being cancelled is left out.
BEGIN ISOLATION LEVEL REPEATABLE READ;
DO $$
DECLARE
    total integer;
    bad   integer;
    which text;
BEGIN
    SELECT count(*) INTO total FROM openwop.runs;
    SELECT count(*), string_agg(format('%s/%s (%s)', d.tenant_id, d.id, d.status), ', ')
    INTO bad, which
    FROM (SELECT r.tenant_id, r.id, r.status
          FROM openwop.runs r, LATERAL openwop._run_at(r, r.next_seq - 1) f
          WHERE (f.next_seq, f.node_states, f.node_executions, f.current_node_id, f.outputs,
                 f.error, f.started_at, f.completed_at)
                IS DISTINCT FROM
                (r.next_seq, r.node_states, r.node_executions, r.current_node_id, r.outputs,
                 r.error, r.started_at, r.completed_at)
             OR (r.status <> 'cancelling' AND f.status IS DISTINCT FROM r.status)
          ORDER BY r.created_at
          LIMIT 20) d;
    IF bad > 0 THEN
        RAISE EXCEPTION 'fold check: % of % runs differ from the fold of their log: %', bad, total, which;
    END IF;
    RAISE NOTICE 'fold check: % runs, each projection equals the fold of its log', total;
END
$$;
COMMIT;
