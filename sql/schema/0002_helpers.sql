-- openwop schema, part 2: small helpers every other part uses.

-- Roles the extension relies on (cluster-wide, so created only if missing):
--   openwop_user     may call the SQL API (granted to tenant roles and to the service role);
--   openwop_service  may act as any tenant by naming it (the edge connects with such a role);
--   openwop_engine   owns the SQL API functions, which run with its rights (SECURITY
--                    DEFINER): it alone writes the engine's tables, under row-level security
--                    keyed on the calling role. Nobody logs in as it or is a member of it.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'openwop_user') THEN
        CREATE ROLE openwop_user NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'openwop_service') THEN
        CREATE ROLE openwop_service NOLOGIN IN ROLE openwop_user;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'openwop_engine') THEN
        CREATE ROLE openwop_engine NOLOGIN NOINHERIT;
    END IF;
END
$$;

-- A text setting, NULL when unset or empty. Qualified throughout (no SET search_path) so it
-- can be inlined where it is used.
CREATE FUNCTION openwop._setting_text(name text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN pg_catalog.current_setting(name, true) OPERATOR(pg_catalog.<>) ''
                THEN pg_catalog.current_setting(name, true) END
$$;
COMMENT ON FUNCTION openwop._setting_text(text) IS 'Internal: a setting''s text, NULL when unset or empty.';

-- The tenant whose rows this session may see (row-level security keys on it): a role bound
-- to a tenant sees that tenant, whatever it sets; a member of openwop_service sees the tenant
-- named by the setting openwop.tenant (which every API call sets for its transaction);
-- anyone else sees nothing. The role asked about is the caller (openwop._caller()), not
-- current_user, so the answer is the same inside the API functions, which run as
-- openwop_engine. Superusers bypass row-level security.
-- Hot: every query under row-level security evaluates it once. PL/pgSQL keeps its plan for the
-- session (a SQL function with a sub-select is re-planned per call), and there is no SET
-- search_path (that alone cost ~30 us per call): every name and operator is qualified instead.
CREATE FUNCTION openwop.session_tenant() RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    caller name := openwop._caller();
    bound  text;
BEGIN
    SELECT r.tenant_id INTO bound FROM openwop.tenant_roles r
    WHERE r.role_name OPERATOR(pg_catalog.=) caller;
    IF bound IS NOT NULL THEN
        RETURN bound;
    END IF;
    IF pg_catalog.pg_has_role(caller, 'openwop_service', 'MEMBER') THEN
        RETURN coalesce(openwop._setting_text('openwop.tenant'), 'default');
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION openwop.session_tenant() IS
  'The tenant row-level security shows this session: its bound tenant, or openwop.tenant for the service role.';

-- The tenant a SQL session acts as by default: its bound tenant, else the setting
-- `openwop.tenant`, else 'default'. Every API function takes an explicit `tenant` defaulting
-- to this.
CREATE FUNCTION openwop.current_tenant() RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    bound text;
BEGIN
    SELECT r.tenant_id INTO bound FROM openwop.tenant_roles r
    WHERE r.role_name OPERATOR(pg_catalog.=) openwop._caller();
    RETURN coalesce(bound, openwop._setting_text('openwop.tenant'), 'default');
END
$$;
COMMENT ON FUNCTION openwop.current_tenant() IS
  'The tenant this session acts as by default: its bound tenant, else openwop.tenant, else ''default''.';

-- Raise an OpenWOP error. SQLSTATE is 'OW' + the HTTP status (OW400, OW404, OW409, ...), the
-- message is for people, and DETAIL is JSON {"code": <OpenWOP error code>, "details": {...}}
-- for the edge, which maps it to the wire envelope in one place.
CREATE FUNCTION openwop._raise(status integer, code text, message text, details jsonb DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = ''
AS $$
BEGIN
    RAISE EXCEPTION USING
        ERRCODE = 'OW' || pg_catalog.lpad(status::text, 3, '0'),
        MESSAGE = message,
        DETAIL  = pg_catalog.jsonb_build_object('code', code, 'details', details)::text;
END
$$;
COMMENT ON FUNCTION openwop._raise(integer, text, text, jsonb) IS
  'Internal: raise an OpenWOP error (SQLSTATE OW<status>, DETAIL {"code","details"}).';

-- The one "no such run" error: unknown runs and other tenants' runs look exactly alike.
CREATE FUNCTION openwop._run_not_found(run_id uuid) RETURNS void
LANGUAGE sql
SET search_path = ''
AS $$ SELECT openwop._raise(404, 'not_found', format('run %s not found', run_id), jsonb_build_object('runId', run_id)) $$;
COMMENT ON FUNCTION openwop._run_not_found(uuid) IS 'Internal: raise not_found (OW404) for a run.';

-- ISO 8601 UTC with milliseconds and a Z, the protocol's timestamp format.
CREATE FUNCTION openwop._iso(ts timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT pg_catalog.to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') $$;
COMMENT ON FUNCTION openwop._iso(timestamptz) IS 'Internal: ISO 8601 UTC rendering used on the wire.';

-- A setting of this extension as an integer, with a fallback when the library has not been
-- loaded into this backend yet (its GUCs are defined when openwop.so loads).
CREATE FUNCTION openwop._setting_int(name text, fallback bigint) RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT coalesce(nullif(pg_catalog.current_setting(name, true), '')::bigint, fallback) $$;
COMMENT ON FUNCTION openwop._setting_int(text, bigint) IS 'Internal: read an integer openwop.* setting.';

-- {key: value}, or {} when value is SQL NULL: builds documents without jsonb_strip_nulls,
-- which would also strip JSON nulls nested inside caller data.
CREATE FUNCTION openwop._field(key text, value jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN value IS NULL THEN '{}'::jsonb ELSE pg_catalog.jsonb_build_object(key, value) END $$;
COMMENT ON FUNCTION openwop._field(text, jsonb) IS 'Internal: {key: value}, or {} when value is NULL.';

-- Whether the caller is an operator: a superuser or a member of openwop_service that is not
-- bound to a tenant. Operators may act as any tenant, create tenants and seed fixtures.
-- (pg_has_role counts a superuser as a member of every role.)
CREATE FUNCTION openwop._is_operator() RETURNS boolean
LANGUAGE sql STABLE
SET search_path = ''
AS $$
    SELECT pg_catalog.pg_has_role(openwop._caller(), 'openwop_service', 'MEMBER')
       AND NOT EXISTS (SELECT 1 FROM openwop.tenant_roles t WHERE t.role_name = openwop._caller())
$$;
COMMENT ON FUNCTION openwop._is_operator() IS
  'Internal: is the caller an operator (superuser, or the service role) rather than a tenant role?';

-- Enter an API call as `tenant`. A role bound to another tenant is refused (forbidden, 403),
-- and so is a role that is neither bound to a tenant nor an operator; otherwise openwop.tenant
-- is set for the rest of the transaction, so row-level security shows the API functions
-- exactly that tenant's rows. Returns the tenant.
CREATE FUNCTION openwop._act_as(tenant text) RETURNS text
LANGUAGE plpgsql
SET search_path = ''
AS $$
#variable_conflict use_variable
DECLARE
    caller name := openwop._caller();
    bound  text;
BEGIN
    IF tenant IS NULL OR tenant = '' THEN
        PERFORM openwop._raise(400, 'validation_error', 'a tenant is required', jsonb_build_object('field', 'tenant'));
    END IF;
    SELECT r.tenant_id INTO bound FROM openwop.tenant_roles r WHERE r.role_name = caller;
    IF bound IS NOT NULL THEN
        IF bound <> tenant THEN
            PERFORM openwop._raise(403, 'forbidden', format('role %I acts only as its own tenant', caller),
                jsonb_build_object('tenant', tenant));
        END IF;
    ELSIF NOT pg_catalog.pg_has_role(caller, 'openwop_service', 'MEMBER') THEN
        PERFORM openwop._raise(403, 'forbidden', format('role %I is not bound to a tenant', caller),
            jsonb_build_object('tenant', tenant));
    END IF;
    PERFORM pg_catalog.set_config('openwop.tenant', tenant, true);
    RETURN tenant;
END
$$;
COMMENT ON FUNCTION openwop._act_as(text) IS
  'Internal: enter an API call as a tenant (refused for a role bound to another tenant, or bound to none).';
