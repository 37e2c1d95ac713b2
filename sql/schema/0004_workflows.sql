-- openwop schema, part 4: workflow definitions.

-- Register (or update) a workflow definition for a tenant.
-- The definition is checked against the closed OpenWOP workflow-definition shape and every
-- typeId, edge, port reference and condition is checked too; a bad definition raises
-- validation_error (SQLSTATE OW400) naming the offending field. Registering an identical
-- definition again changes nothing; a changed definition becomes a new revision (runs in
-- flight keep the revision they started with).
CREATE FUNCTION openwop.register_workflow(
    definition jsonb,
    tenant     text DEFAULT openwop.current_tenant(),
    is_fixture boolean DEFAULT false
) RETURNS TABLE (workflow_id text, revision integer, changed boolean)
LANGUAGE plpgsql
SET search_path = ''
AS $$
#variable_conflict use_variable
DECLARE
    problem  jsonb := openwop._check_definition(definition);
    wf_id    text  := definition->>'id';
    cur      record;
    spec     jsonb;
BEGIN
    tenant := openwop._act_as(tenant);
    -- Fixtures are listed in the public discovery document: only an operator may mark one.
    IF is_fixture AND NOT openwop._is_operator() THEN
        PERFORM openwop._raise(403, 'forbidden', 'only an operator may register fixture workflows',
            jsonb_build_object('field', 'is_fixture'));
    END IF;
    IF problem IS NOT NULL THEN
        PERFORM openwop._raise(400, 'validation_error', problem->>'message', problem->'details');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM openwop.tenants t WHERE t.id = tenant) THEN
        PERFORM openwop._raise(404, 'not_found', format('tenant %L does not exist', tenant),
            jsonb_build_object('tenant', tenant));
    END IF;
    -- Serialise registrations of one workflow id so revisions stay dense.
    PERFORM pg_advisory_xact_lock(hashtextextended('openwop.workflow:' || tenant || '/' || wf_id, 0));

    SELECT w.revision, w.definition INTO cur
    FROM openwop.workflows w WHERE w.tenant_id = tenant AND w.id = wf_id
    ORDER BY w.revision DESC LIMIT 1;
    IF FOUND AND cur.definition = definition THEN
        RETURN QUERY SELECT wf_id, cur.revision, false;
        RETURN;
    END IF;

    SELECT jsonb_build_object(
        'required', coalesce(jsonb_agg(v->>'name') FILTER (
                        WHERE coalesce((v->>'required')::boolean, false) AND NOT v ? 'defaultValue'), '[]'),
        'types',    coalesce(jsonb_object_agg(v->>'name', v->>'type'), '{}'),
        'defaults', coalesce(jsonb_object_agg(v->>'name', v->'defaultValue') FILTER (WHERE v ? 'defaultValue'), '{}'),
        'timeoutMs', coalesce((definition->'settings'->>'timeout')::bigint, 0))
        || openwop._field('configurableSchema', definition->'configurableSchema')
    INTO spec
    FROM jsonb_array_elements(definition->'variables') v;

    INSERT INTO openwop.workflows (tenant_id, id, revision, version, definition, input_spec, is_fixture)
    VALUES (tenant, wf_id, coalesce(cur.revision, 0) + 1, definition->>'version', definition, spec, is_fixture);
    RETURN QUERY SELECT wf_id, coalesce(cur.revision, 0) + 1, true;
END
$$;
COMMENT ON FUNCTION openwop.register_workflow(jsonb, text, boolean) IS
  'Validate and store a workflow definition; returns (workflow_id, revision, changed).';

-- The current definition of a workflow, or NULL when the tenant has no such workflow.
CREATE FUNCTION openwop.workflow(workflow_id text, tenant text DEFAULT openwop.current_tenant())
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = ''
AS $$
#variable_conflict use_variable
BEGIN
    tenant := openwop._act_as(tenant);
    RETURN (SELECT w.definition FROM openwop.workflows w
            WHERE w.tenant_id = tenant AND w.id = workflow_id
            ORDER BY w.revision DESC LIMIT 1);
END
$$;
COMMENT ON FUNCTION openwop.workflow(text, text) IS 'The current definition of a workflow (NULL if unknown).';

-- Seed the conformance fixture workflows into a tenant. Idempotent: seeding again adds
-- nothing. Returns the fixture ids. Operators only (fixtures are public: see register_workflow).
CREATE FUNCTION openwop.seed_fixtures(tenant text DEFAULT openwop.current_tenant())
RETURNS SETOF text
LANGUAGE sql
SET search_path = ''
AS $$
    SELECT r.workflow_id
    FROM openwop._fixture_definitions() AS f(definition),
         LATERAL openwop.register_workflow(f.definition, tenant, true) AS r
    ORDER BY 1
$$;
COMMENT ON FUNCTION openwop.seed_fixtures(text) IS
  'Register the conformance fixture workflows for a tenant (idempotent); returns their ids.';

-- The fixture ids present in any tenant, for discovery's fixtures[] (public information, so
-- it reads past row-level security with the owner's rights). Only operators can mark a
-- workflow as a fixture, so no tenant's own workflow ids ever appear here.
CREATE FUNCTION openwop.fixture_ids() RETURNS text[]
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = ''
AS $$ SELECT coalesce(array_agg(DISTINCT w.id ORDER BY w.id), '{}') FROM openwop.workflows w WHERE w.is_fixture $$;
COMMENT ON FUNCTION openwop.fixture_ids() IS 'Ids of the seeded conformance fixtures (discovery fixtures[]).';

-- Internal, for the workers: one immutable revision of a definition.
CREATE FUNCTION openwop._definition(tenant text, workflow_id text, revision integer) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = ''
AS $$
    SELECT w.definition FROM openwop.workflows w
    WHERE w.tenant_id = tenant AND w.id = workflow_id AND w.revision = _definition.revision
$$;
COMMENT ON FUNCTION openwop._definition(text, text, integer) IS 'Internal: one revision of a workflow definition.';
