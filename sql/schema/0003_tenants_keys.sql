-- openwop schema, part 3: tenants, workspaces, tenant roles and API keys.

-- Create a tenant (idempotent). Operators only. It runs as the extension's owner (see
-- 0011_security.sql): a new tenant is by definition outside the caller's row-level view.
CREATE FUNCTION openwop.create_tenant(id text, name text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql
SET search_path = ''
AS $$
BEGIN
    IF NOT openwop._is_operator() THEN
        PERFORM openwop._raise(403, 'forbidden', 'only an operator may create tenants');
    END IF;
    IF id IS NULL OR id !~ '^[A-Za-z0-9._-]{1,64}$' THEN
        PERFORM openwop._raise(400, 'validation_error',
            'tenant id must be 1-64 characters of A-Z a-z 0-9 . _ -', jsonb_build_object('field', 'id'));
    END IF;
    INSERT INTO openwop.tenants (id, name) VALUES (create_tenant.id, create_tenant.name)
    ON CONFLICT ON CONSTRAINT tenants_pkey DO NOTHING;
    RETURN id;
END
$$;
COMMENT ON FUNCTION openwop.create_tenant(text, text) IS 'Create a tenant if it does not exist; returns its id (operators only).';

-- Create a workspace of a tenant (idempotent).
CREATE FUNCTION openwop.create_workspace(id text, tenant text DEFAULT openwop.current_tenant(), name text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
SET search_path = ''
AS $$
#variable_conflict use_variable
BEGIN
    tenant := openwop._act_as(tenant);
    IF id IS NULL OR id !~ '^[A-Za-z0-9._-]{1,128}$' THEN
        PERFORM openwop._raise(400, 'validation_error',
            'workspace id must be 1-128 characters of A-Z a-z 0-9 . _ -', jsonb_build_object('field', 'id'));
    END IF;
    IF NOT EXISTS (SELECT 1 FROM openwop.tenants t WHERE t.id = tenant) THEN
        PERFORM openwop._raise(404, 'not_found', format('tenant %L does not exist', tenant),
            jsonb_build_object('tenant', tenant));
    END IF;
    INSERT INTO openwop.workspaces AS w (tenant_id, id, name) VALUES (tenant, id, name)
    ON CONFLICT ON CONSTRAINT workspaces_pkey DO NOTHING;
    RETURN id;
END
$$;
COMMENT ON FUNCTION openwop.create_workspace(text, text, text) IS 'Create a workspace of a tenant if it does not exist.';

-- Whether the calling role is a superuser (role administration needs one).
CREATE FUNCTION openwop._is_superuser() RETURNS boolean
LANGUAGE sql STABLE
SET search_path = ''
AS $$ SELECT coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user), false) $$;
COMMENT ON FUNCTION openwop._is_superuser() IS 'Internal: is the calling role a superuser?';

-- Bind a database role to a tenant: it may then use the SQL API, and row-level security
-- shows it that tenant's rows only. Superusers only (it grants openwop_user to the role).
CREATE FUNCTION openwop.grant_tenant_role(role_name name, tenant text) RETURNS void
LANGUAGE plpgsql
SET search_path = ''
AS $$
#variable_conflict use_variable
BEGIN
    IF NOT openwop._is_superuser() THEN
        PERFORM openwop._raise(403, 'forbidden', 'binding a role to a tenant needs a superuser');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = role_name) THEN
        PERFORM openwop._raise(404, 'not_found', format('role %I does not exist', role_name));
    END IF;
    IF NOT EXISTS (SELECT 1 FROM openwop.tenants t WHERE t.id = tenant) THEN
        PERFORM openwop._raise(404, 'not_found', format('tenant %L does not exist', tenant),
            jsonb_build_object('tenant', tenant));
    END IF;
    INSERT INTO openwop.tenant_roles AS tr (role_name, tenant_id) VALUES (role_name, tenant)
    ON CONFLICT ON CONSTRAINT tenant_roles_pkey DO UPDATE SET tenant_id = EXCLUDED.tenant_id;
    EXECUTE format('GRANT openwop_user TO %I', role_name);
END
$$;
COMMENT ON FUNCTION openwop.grant_tenant_role(name, text) IS
  'Bind a database role to a tenant: it may use the SQL API and sees only that tenant''s rows.';

-- Unbind a role from its tenant and take its API access away. Superusers only.
CREATE FUNCTION openwop.revoke_tenant_role(role_name name) RETURNS boolean
LANGUAGE plpgsql
SET search_path = ''
AS $$
#variable_conflict use_variable
BEGIN
    IF NOT openwop._is_superuser() THEN
        PERFORM openwop._raise(403, 'forbidden', 'unbinding a role needs a superuser');
    END IF;
    DELETE FROM openwop.tenant_roles tr WHERE tr.role_name = role_name;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    EXECUTE format('REVOKE openwop_user FROM %I', role_name);
    RETURN true;
END
$$;
COMMENT ON FUNCTION openwop.revoke_tenant_role(name) IS 'Unbind a role from its tenant and revoke its API access.';

-- Every scope the protocol defines. A key gets all of them unless told otherwise.
CREATE FUNCTION openwop.all_scopes() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT ARRAY['manifest:read', 'runs:create', 'runs:read', 'runs:cancel', 'artifacts:read',
                   'webhooks:manage', 'approvals:respond', 'audit:read'] $$;
COMMENT ON FUNCTION openwop.all_scopes() IS 'Every API scope the protocol defines.';

-- Create an API key and return its plaintext token. This is the only time the plaintext
-- exists: only its SHA-256 is stored. Pass `token` to register a token chosen elsewhere
-- (at least 16 characters), e.g. a development key; `workspace` binds the key to one.
CREATE FUNCTION openwop.create_api_key(
    tenant     text DEFAULT openwop.current_tenant(),
    label      text DEFAULT NULL,
    scopes     text[] DEFAULT openwop.all_scopes(),
    expires_at timestamptz DEFAULT NULL,
    token      text DEFAULT NULL,
    workspace  text DEFAULT NULL
) RETURNS text
LANGUAGE plpgsql
SET search_path = ''
AS $$
#variable_conflict use_variable
DECLARE
    plaintext text := coalesce(token,
        'owk_' || replace(gen_random_uuid()::text, '-', '') || replace(gen_random_uuid()::text, '-', ''));
    bad text;
BEGIN
    tenant := openwop._act_as(tenant);
    IF length(plaintext) < 16 OR plaintext ~ '\s' THEN
        PERFORM openwop._raise(400, 'validation_error',
            'an API key must be at least 16 characters without whitespace', jsonb_build_object('field', 'token'));
    END IF;
    SELECT s INTO bad FROM unnest(scopes) s WHERE NOT s = ANY (openwop.all_scopes()) LIMIT 1;
    IF bad IS NOT NULL THEN
        PERFORM openwop._raise(400, 'validation_error', format('unknown scope %L', bad),
            jsonb_build_object('field', 'scopes', 'scope', bad));
    END IF;
    IF NOT EXISTS (SELECT 1 FROM openwop.tenants t WHERE t.id = tenant) THEN
        PERFORM openwop._raise(404, 'not_found', format('tenant %L does not exist', tenant),
            jsonb_build_object('tenant', tenant));
    END IF;
    IF workspace IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM openwop.workspaces w WHERE w.tenant_id = tenant AND w.id = workspace) THEN
        PERFORM openwop._raise(404, 'not_found', format('workspace %L does not exist', workspace),
            jsonb_build_object('workspace', workspace));
    END IF;
    INSERT INTO openwop.api_keys AS k (tenant_id, id, token_hash, prefix, label, scopes, expires_at, workspace_id)
    VALUES (tenant, openwop._uuid_v7(), sha256(convert_to(plaintext, 'UTF8')), left(plaintext, 8),
            label, scopes, expires_at, workspace)
    ON CONFLICT ON CONSTRAINT api_keys_token_hash_key DO UPDATE
        SET revoked_at = NULL, scopes = EXCLUDED.scopes, expires_at = EXCLUDED.expires_at,
            workspace_id = EXCLUDED.workspace_id, label = coalesce(EXCLUDED.label, k.label)
        WHERE k.tenant_id = EXCLUDED.tenant_id;
    RETURN plaintext;
END
$$;
COMMENT ON FUNCTION openwop.create_api_key(text, text, text[], timestamptz, text, text) IS
  'Create an API key for a tenant and return the plaintext token (shown once; only its hash is stored).';

-- Revoke a key by id. Returns false if there was no such active key (in this tenant).
CREATE FUNCTION openwop.revoke_api_key(key_id uuid, tenant text DEFAULT openwop.current_tenant()) RETURNS boolean
LANGUAGE plpgsql
SET search_path = ''
AS $$
#variable_conflict use_variable
BEGIN
    tenant := openwop._act_as(tenant);
    UPDATE openwop.api_keys k SET revoked_at = now()
    WHERE k.tenant_id = tenant AND k.id = key_id AND k.revoked_at IS NULL;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION openwop.revoke_api_key(uuid, text) IS 'Revoke an API key; it is refused from then on.';

-- Look a bearer token up. No row: unknown token. Otherwise state is 'ok', 'expired' or
-- 'revoked'. The lookup is by hash, so the comparison never touches the secret itself. Runs
-- with the owner's rights: the caller does not know the key's tenant yet.
CREATE FUNCTION openwop.authenticate(token text)
RETURNS TABLE (tenant_id text, key_id uuid, scopes text[], state text, workspace_id text)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = ''
AS $$
    SELECT k.tenant_id, k.id, k.scopes,
           CASE WHEN k.revoked_at IS NOT NULL THEN 'revoked'
                WHEN k.expires_at IS NOT NULL AND k.expires_at <= now() THEN 'expired'
                ELSE 'ok' END,
           k.workspace_id
    FROM openwop.api_keys k
    WHERE k.token_hash = sha256(convert_to(token, 'UTF8'))
$$;
COMMENT ON FUNCTION openwop.authenticate(text) IS
  'Resolve a bearer token to (tenant, key id, scopes, state, workspace); no row when unknown.';
