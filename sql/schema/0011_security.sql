-- openwop schema, part 11: who may do what. Runs last, when every object exists.
--
-- Row-level security on every table keyed on openwop.session_tenant(): a role bound to a
-- tenant sees only that tenant's rows; the service role sees the tenant the current API call
-- named (openwop._act_as sets it for the transaction). Every lookup also filters by tenant.
-- The background workers run as the bootstrap superuser and so see every tenant.

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

-- Tenants: a bound role sees its own; the service role manages them all.
ALTER TABLE openwop.tenants ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON openwop.tenants USING (id = (SELECT openwop.session_tenant()));
CREATE POLICY service_manages ON openwop.tenants TO openwop_service USING (true) WITH CHECK (true);

-- Tenant roles: each role sees its own binding only.
ALTER TABLE openwop.tenant_roles ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_binding ON openwop.tenant_roles USING (role_name = current_user);

-- Privileges. Nothing is public; openwop_user may call the API; the workers' functions and
-- tenant management stay with superusers (and the service role for tenants).
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA openwop FROM PUBLIC;
GRANT USAGE ON SCHEMA openwop TO openwop_user;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA openwop TO openwop_user;
REVOKE EXECUTE ON FUNCTION
    openwop._claim(integer), openwop._apply(jsonb), openwop._maintain(), openwop._next_ready(),
    openwop._quarantine(text, uuid, text), openwop._definition(text, text, integer),
    openwop.grant_tenant_role(name, text), openwop.revoke_tenant_role(name),
    openwop.create_tenant(text, text), openwop.worker_stats(), openwop.wake_stats()
FROM openwop_user;
GRANT EXECUTE ON FUNCTION openwop.create_tenant(text, text), openwop.worker_stats(), openwop.wake_stats()
TO openwop_service;

GRANT SELECT ON openwop.tenants, openwop.tenant_roles, openwop.events TO openwop_user;
GRANT SELECT, INSERT ON openwop.workspaces TO openwop_user;
GRANT SELECT, INSERT, UPDATE ON openwop.api_keys, openwop.workflows, openwop.runs, openwop.idempotency_keys
TO openwop_user;
GRANT SELECT ON openwop.run_summary, openwop.event_log, openwop.current_workflows, openwop.pending_timers
TO openwop_user;
GRANT SELECT ON openwop.timers TO openwop_user;
GRANT INSERT ON openwop.tenants TO openwop_service;
