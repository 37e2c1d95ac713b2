-- openwop schema, part 11: who may do what. Runs last, when every object exists.
--
-- Least privilege. Callers (tenant roles bound with grant_tenant_role, and the service role
-- the edge connects with) never write an engine table themselves: the SQL API functions are
-- their only way in, and those keep the invariants (gap-free event sequences, the run
-- projection, idempotency records). The API functions run as openwop_engine (SECURITY
-- DEFINER), which may write the tables but is itself subject to row-level security keyed on
-- openwop.session_tenant(): the caller's bound tenant, or for the service role the tenant the
-- current call named (openwop._act_as sets it for the transaction). Every lookup also filters
-- by tenant. Callers may read their own tenant's rows directly. The background workers run as
-- the bootstrap superuser and so see every tenant.

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['workspaces', 'api_keys', 'workflows', 'runs', 'events', 'timers', 'idempotency_keys'] LOOP
        EXECUTE format('ALTER TABLE openwop.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON openwop.%I
                        USING (tenant_id = (SELECT openwop.session_tenant()))
                        WITH CHECK (tenant_id = (SELECT openwop.session_tenant()))', t);
    END LOOP;
END
$$;

-- Tenants: a caller sees its own (create_tenant runs as the extension's owner).
ALTER TABLE openwop.tenants ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON openwop.tenants USING (id = (SELECT openwop.session_tenant()));

-- Tenant roles: each caller sees its own binding only.
ALTER TABLE openwop.tenant_roles ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_binding ON openwop.tenant_roles USING (role_name = openwop._caller());

-- The SQL API: these run as openwop_engine, with its rights and under row-level security.
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
             WHERE p.pronamespace = 'openwop'::regnamespace
               AND p.proname IN ('create_workspace', 'create_api_key', 'revoke_api_key',
                                 'register_workflow', 'workflow', 'seed_fixtures',
                                 'api_create_run', 'start_run', 'run', 'api_cancel_run',
                                 'cancel_run', 'wait_for_run', 'events', 'event_docs',
                                 'host_info', 'state_at') LOOP
        EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER', f);
        EXECUTE format('ALTER FUNCTION %s OWNER TO openwop_engine', f);
    END LOOP;
END
$$;
-- Operator functions that must see past any one tenant run as the extension's owner.
ALTER FUNCTION openwop.create_tenant(text, text) SECURITY DEFINER;

-- Nothing is public.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA openwop FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA openwop FROM PUBLIC;
GRANT USAGE ON SCHEMA openwop TO openwop_user, openwop_engine;

-- openwop_engine: the tables and the helpers the API functions use, not the workers' own
-- functions nor role administration.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA openwop TO openwop_engine;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA openwop TO openwop_engine;
REVOKE EXECUTE ON FUNCTION
    openwop._claim(integer), openwop._apply(jsonb), openwop._maintain(), openwop._next_ready(),
    openwop._quarantine(text, uuid, text, text), openwop._park(text, uuid, interval), openwop._definition(text, text, integer),
    openwop.grant_tenant_role(name, text), openwop.revoke_tenant_role(name),
    openwop.create_tenant(text, text), openwop.authenticate(text),
    openwop.worker_stats(), openwop.wake_stats()
FROM openwop_engine;

-- Callers (openwop_user): the API, plus what row-level security evaluates as them.
GRANT EXECUTE ON FUNCTION
    openwop.create_workspace(text, text, text),
    openwop.create_api_key(text, text, text[], timestamptz, text, text),
    openwop.revoke_api_key(uuid, text),
    openwop.register_workflow(jsonb, text, boolean), openwop.workflow(text, text),
    openwop.seed_fixtures(text), openwop.fixture_ids(), openwop.host_info(),
    openwop.api_create_run(text, jsonb, jsonb, text, text, boolean),
    openwop.start_run(text, jsonb, jsonb, text, text), openwop.run(uuid, text),
    openwop.api_cancel_run(uuid, text, text, text, text),
    openwop.cancel_run(uuid, text, text, text, text),
    openwop.wait_for_run(uuid, interval, text),
    openwop.events(uuid, integer, text), openwop.event_docs(uuid, integer, integer, integer, text),
    openwop.state_at(uuid, integer, text),
    openwop.current_tenant(), openwop.session_tenant(), openwop.all_scopes(),
    openwop._caller(), openwop._setting_text(text)
TO openwop_user;
-- The service role (the edge) also authenticates keys, creates tenants and reads the stats.
GRANT EXECUTE ON FUNCTION
    openwop.authenticate(text), openwop.create_tenant(text, text),
    openwop.worker_stats(), openwop.wake_stats()
TO openwop_service;

-- Read access to the caller's own tenant (row-level security filters every row). API keys
-- without their hashes; idempotency records not at all.
GRANT SELECT ON openwop.tenants, openwop.tenant_roles, openwop.workspaces, openwop.workflows,
                openwop.runs, openwop.events, openwop.timers
TO openwop_user;
GRANT SELECT (tenant_id, id, prefix, label, scopes, workspace_id, created_at, expires_at, revoked_at)
ON openwop.api_keys TO openwop_user;
GRANT SELECT ON openwop.run_summary, openwop.event_log, openwop.current_workflows, openwop.pending_timers
TO openwop_user;
