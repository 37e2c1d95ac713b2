-- openwop schema, part 8: views for people who query with SQL.

-- One line per run: what it is, where it stands, how long it took.
CREATE VIEW openwop.run_summary WITH (security_invoker = true) AS
SELECT r.tenant_id, r.id AS run_id, r.workflow_id, r.workflow_revision, r.status,
       r.current_node_id, r.error->>'code' AS error_code, r.node_executions,
       r.next_seq AS event_count, r.created_at, r.started_at, r.completed_at,
       r.completed_at - r.started_at AS duration
FROM openwop.runs r;
COMMENT ON VIEW openwop.run_summary IS 'One row per run: status, error code, event count and timing.';

-- The event log, readable.
CREATE VIEW openwop.event_log WITH (security_invoker = true) AS
SELECT e.tenant_id, e.run_id, e.seq, e.ts, e.type, e.node_id, e.payload
FROM openwop.events e;
COMMENT ON VIEW openwop.event_log IS 'Every event of every run (order by run_id, seq).';

-- The current revision of every workflow.
CREATE VIEW openwop.current_workflows WITH (security_invoker = true) AS
SELECT DISTINCT ON (w.tenant_id, w.id) w.tenant_id, w.id AS workflow_id, w.revision, w.version,
       w.definition->>'name' AS name, w.is_fixture, w.created_at AS registered_at, w.definition
FROM openwop.workflows w
ORDER BY w.tenant_id, w.id, w.revision DESC;
COMMENT ON VIEW openwop.current_workflows IS 'The current revision of every workflow.';

-- Pending timers, with how long until each fires.
CREATE VIEW openwop.pending_timers WITH (security_invoker = true) AS
SELECT t.tenant_id, t.run_id, t.kind, nullif(t.node_id, '') AS node_id, t.due_at,
       t.due_at - now() AS due_in
FROM openwop.timers t;
COMMENT ON VIEW openwop.pending_timers IS 'Durable timers not yet fired.';
