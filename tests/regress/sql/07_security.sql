-- Tenant isolation through SQL: roles bound to a tenant, the service role, row-level security.
SELECT openwop.create_tenant('regress_c');
SELECT count(*) AS fixtures FROM openwop.seed_fixtures('regress_c');
SELECT openwop.create_workspace('blue', 'regress_c');
CREATE ROLE regress_app_a;
CREATE ROLE regress_app_c;
CREATE ROLE regress_service IN ROLE openwop_service;
CREATE ROLE regress_nobody;
SELECT openwop.grant_tenant_role('regress_app_a', 'regress_a');
SELECT openwop.grant_tenant_role('regress_app_c', 'regress_c');

-- a run of tenant regress_c, started by its own role
SET ROLE regress_app_c;
SELECT openwop.current_tenant();
SELECT openwop.start_run('conformance-noop') AS c_run \gset
SELECT openwop.wait_for_run(:'c_run', '10 seconds')->>'status' AS c_status;
SELECT openwop.start_run('conformance-noop', '{}', '{"owner":{"workspace":"blue"}}') IS NOT NULL AS in_workspace;
SELECT try($$SELECT openwop.start_run('conformance-noop', '{}', '{"owner":{"workspace":"red"}}')$$);
RESET ROLE;

-- test_bound_role_sees_only_its_tenant
SET ROLE regress_app_a;
SELECT openwop.current_tenant();
SELECT count(*) AS foreign_runs FROM openwop.runs WHERE tenant_id <> 'regress_a';
SELECT count(*) AS foreign_events FROM openwop.events WHERE run_id = :'c_run';
SELECT count(*) AS foreign_in_views FROM openwop.run_summary WHERE run_id = :'c_run';
SELECT count(*) AS foreign_keys FROM openwop.api_keys WHERE tenant_id <> 'regress_a';
SELECT array_agg(id ORDER BY id) AS visible_tenants FROM openwop.tenants;
SELECT try(format('SELECT openwop.run(%L)', :'c_run'));
SELECT try(format('SELECT openwop.run(%L, %L)', :'c_run', 'regress_c'));
SELECT try(format('SELECT openwop.cancel_run(%L)', :'c_run'));
SELECT try(format('SELECT * FROM openwop.events(%L)', :'c_run'));
-- setting the tenant changes nothing for a bound role
SET openwop.tenant = 'regress_c';
SELECT count(*) AS still_foreign FROM openwop.runs WHERE tenant_id = 'regress_c';
RESET openwop.tenant;
-- it works in its own tenant, and cannot reach the workers' functions or manage tenants
SELECT openwop.start_run('conformance-noop') IS NOT NULL AS own_start;
SELECT try($$SELECT openwop._claim(10)$$);
SELECT try($$SELECT openwop.create_tenant('sneaky')$$);
SELECT try($$SELECT openwop.grant_tenant_role('regress_app_a', 'regress_c')$$);
SELECT try($$INSERT INTO openwop.runs (tenant_id, id, workflow_id, workflow_revision, owner, limits)
              VALUES ('regress_c', gen_random_uuid(), 'conformance-noop', 1, '{}', '{}')$$);
RESET ROLE;

-- test_service_role_acts_as_the_tenant_each_call_names
SET ROLE regress_service;
SELECT openwop.run(:'c_run', 'regress_c')->>'status' AS as_c;
SELECT count(*) AS c_rows_after_call FROM openwop.runs WHERE id = :'c_run';
SELECT try(format('SELECT openwop.run(%L, %L)', :'c_run', 'regress_a'));
SELECT openwop.create_tenant('regress_d') AS service_creates_tenants;
RESET ROLE;

-- test_unprivileged_roles_get_nothing
SET ROLE regress_nobody;
SELECT try($$SELECT openwop.start_run('conformance-noop')$$);
SELECT try($$SELECT count(*) FROM openwop.runs$$);
RESET ROLE;

SELECT openwop.revoke_tenant_role('regress_app_a') AS unbound;
SELECT pg_has_role('regress_app_a', 'openwop_user', 'MEMBER') AS still_member;
