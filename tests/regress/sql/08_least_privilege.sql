-- Least privilege: a tenant role writes nothing directly, fixtures are the operator's, and a
-- role that holds the API grant without a tenant binding acts as nobody.
SELECT openwop.create_tenant('regress_e');
SELECT openwop.create_tenant('regress_f');
CREATE ROLE regress_app_e;
CREATE ROLE regress_app_f;
CREATE ROLE regress_unbound IN ROLE openwop_user;
SELECT openwop.grant_tenant_role('regress_app_e', 'regress_e');
SELECT openwop.grant_tenant_role('regress_app_f', 'regress_f');
SELECT count(*) AS fixtures FROM openwop.seed_fixtures('regress_e');

-- test_tenant_roles_cannot_write_engine_tables
SET ROLE regress_app_e;
SELECT openwop.start_run('conformance-delay', '{}', '{"configurable":{}}') AS e_run \gset
SELECT openwop.run(:'e_run')->>'status' IN ('pending', 'running') AS started;
-- the counter that, set by hand, used to stall every worker
SELECT try(format('UPDATE openwop.runs SET next_seq = 0 WHERE id = %L', :'e_run'));
SELECT try(format('UPDATE openwop.runs SET status = %L WHERE id = %L', 'completed', :'e_run'));
SELECT try(format('DELETE FROM openwop.events WHERE run_id = %L', :'e_run'));
SELECT try(format('INSERT INTO openwop.events (tenant_id, run_id, seq, type, payload, ts) VALUES (%L, %L, 99, %L, %L, now())',
                  'regress_e', :'e_run', 'run.completed', '{}'));
SELECT try($$DELETE FROM openwop.timers$$);
SELECT try($$UPDATE openwop.workflows SET definition = '{}'$$);
SELECT try($$UPDATE openwop.api_keys SET revoked_at = NULL$$);
SELECT try($$INSERT INTO openwop.workspaces (tenant_id, id) VALUES ('regress_e', 'w')$$);
SELECT try($$UPDATE openwop.tenant_roles SET tenant_id = 'regress_f'$$);
SELECT try($$DELETE FROM openwop.idempotency_keys$$);
SELECT try($$SELECT token_hash FROM openwop.api_keys$$);
SELECT try($$SELECT count(*) FROM openwop.idempotency_keys$$);
-- reading its own rows still works, and writing through the API does
SELECT count(*) AS own_runs FROM openwop.runs WHERE id = :'e_run';
SELECT openwop.create_workspace('green') AS workspace_via_api;
SELECT length(openwop.create_api_key(label => 'e key')) > 16 AS key_via_api;
SELECT label, prefix LIKE 'owk_%' AS prefixed, revoked_at IS NULL AS active FROM openwop.api_keys;
SELECT openwop.cancel_run(:'e_run') AS cancel_via_api;
RESET ROLE;
SELECT openwop.wait_for_run(:'e_run', '10 seconds', 'regress_e')->>'status' AS e_status;
SET ROLE regress_app_e;
SELECT string_agg(type, ' ' ORDER BY seq) AS own_events FROM openwop.events WHERE run_id = :'e_run';
RESET ROLE;

-- test_only_operators_publish_fixtures
SET ROLE regress_app_e;
SELECT try($$SELECT * FROM openwop.register_workflow(wf('tenant-e-secret', jsonb_build_array(node('a', 'core.noop'))), is_fixture => true)$$);
SELECT try($$SELECT openwop.seed_fixtures()$$);
SELECT workflow_id, revision FROM openwop.register_workflow(wf('tenant-e-private', jsonb_build_array(node('a', 'core.noop'))));
SELECT 'tenant-e-private' = ANY (openwop.fixture_ids()) AS private_listed_for_e;
RESET ROLE;
SET ROLE regress_app_f;
SELECT 'tenant-e-private' = ANY (openwop.fixture_ids()) OR 'tenant-e-secret' = ANY (openwop.fixture_ids()) AS e_ids_seen_by_f;
SELECT openwop.host_info()->'fixtures' @> '["conformance-noop"]' AS operator_fixtures_listed;
RESET ROLE;
SELECT 'tenant-e-private' = ANY (openwop.fixture_ids()) OR 'tenant-e-secret' = ANY (openwop.fixture_ids()) AS e_ids_in_discovery;

-- test_unbound_roles_act_as_nobody
SET ROLE regress_unbound;
SELECT try($$SELECT openwop.start_run('conformance-noop', '{}', '{}', 'regress_e')$$);
SELECT try($$SELECT openwop.create_api_key('regress_e')$$);
SELECT count(*) AS visible_runs FROM openwop.runs;
RESET ROLE;

-- test_api_functions_run_as_the_engine_role
SELECT p.proname, pg_get_userbyid(p.proowner) AS owner, p.prosecdef AS definer
FROM pg_proc p
WHERE p.pronamespace = 'openwop'::regnamespace
  AND p.proname IN ('start_run', 'run', 'cancel_run', 'register_workflow', 'create_tenant', 'authenticate', '_claim')
ORDER BY 1;
-- nobody may log in as, or act through, the engine role
SELECT rolcanlogin, (SELECT count(*) FROM pg_auth_members m WHERE m.roleid = r.oid) AS members
FROM pg_roles r WHERE rolname = 'openwop_engine';
