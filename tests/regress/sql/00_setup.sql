-- Shared by every regression file: the extension, two tenants, and `try`, which runs a
-- statement and prints its outcome (SQLSTATE, message and the OpenWOP code in DETAIL)
-- instead of aborting the script, so error contracts are part of the expected output.
CREATE EXTENSION IF NOT EXISTS openwop;
SELECT openwop.create_tenant('regress_a');
SELECT openwop.create_tenant('regress_b');
CREATE OR REPLACE FUNCTION public.try(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    st text; msg text; det text;
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
    -- run ids are random: mask them so the expected output is stable
    RETURN regexp_replace(st || ' ' || msg || coalesce(' | ' || nullif(det, ''), ''),
                          '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<run-id>', 'g');
END
$$;
-- A minimal valid definition with one node, to edit in tests.
CREATE OR REPLACE FUNCTION public.wf(id text, nodes jsonb, edges jsonb DEFAULT '[]', variables jsonb DEFAULT '[]')
RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('id', id, 'name', id, 'version', '1', 'nodes', nodes, 'edges', edges,
                              'triggers', '[]'::jsonb, 'variables', variables, 'metadata', '{}'::jsonb,
                              'settings', '{}'::jsonb)
$$;
CREATE OR REPLACE FUNCTION public.node(id text, type_id text, inputs jsonb DEFAULT '{}', config jsonb DEFAULT '{}')
RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('id', id, 'typeId', type_id, 'name', id, 'position', '{"x":0,"y":0}'::jsonb,
                              'config', config, 'inputs', inputs)
$$;
-- The event types of a run, in order, as one line.
CREATE OR REPLACE FUNCTION public.trail(run uuid, tenant text) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(type || coalesce(':' || node_id, ''), ' ' ORDER BY seq) FROM openwop.events(run, -1, tenant)
$$;
