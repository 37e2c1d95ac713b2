-- openwop schema, part 3: tenants and API keys.

-- Create a tenant (idempotent).
CREATE FUNCTION openwop.create_tenant(id text, name text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql
SET search_path = ''
AS $$
BEGIN
    IF id IS NULL OR id !~ '^[A-Za-z0-9._-]{1,64}$' THEN
        PERFORM openwop._raise(400, 'validation_error',
            'tenant id must be 1-64 characters of A-Z a-z 0-9 . _ -', jsonb_build_object('field', 'id'));
    END IF;
    INSERT INTO openwop.tenants (id, name) VALUES (create_tenant.id, create_tenant.name)
    ON CONFLICT ON CONSTRAINT tenants_pkey DO NOTHING;
    RETURN id;
END
$$;
COMMENT ON FUNCTION openwop.create_tenant(text, text) IS 'Create a tenant if it does not exist; returns its id.';

-- Every scope the protocol defines. A key gets all of them unless told otherwise.
CREATE FUNCTION openwop.all_scopes() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT ARRAY['manifest:read', 'runs:create', 'runs:read', 'runs:cancel', 'artifacts:read',
                   'webhooks:manage', 'approvals:respond', 'audit:read'] $$;
COMMENT ON FUNCTION openwop.all_scopes() IS 'Every API scope the protocol defines.';

-- Create an API key and return its plaintext token. This is the only time the plaintext
-- exists: only its SHA-256 is stored. Pass `token` to register a token chosen elsewhere
-- (at least 16 characters), e.g. a development key.
CREATE FUNCTION openwop.create_api_key(
    tenant     text DEFAULT openwop.current_tenant(),
    label      text DEFAULT NULL,
    scopes     text[] DEFAULT openwop.all_scopes(),
    expires_at timestamptz DEFAULT NULL,
    token      text DEFAULT NULL
) RETURNS text
LANGUAGE plpgsql
SET search_path = ''
AS $$
DECLARE
    plaintext text := coalesce(token,
        'owk_' || replace(gen_random_uuid()::text, '-', '') || replace(gen_random_uuid()::text, '-', ''));
    bad text;
BEGIN
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
    INSERT INTO openwop.api_keys (tenant_id, id, token_hash, prefix, label, scopes, expires_at)
    VALUES (tenant, openwop._uuid_v7(), sha256(convert_to(plaintext, 'UTF8')), left(plaintext, 8),
            label, scopes, create_api_key.expires_at)
    ON CONFLICT (token_hash) DO UPDATE
        SET revoked_at = NULL, scopes = EXCLUDED.scopes, expires_at = EXCLUDED.expires_at,
            label = coalesce(EXCLUDED.label, openwop.api_keys.label)
        WHERE openwop.api_keys.tenant_id = EXCLUDED.tenant_id;
    RETURN plaintext;
END
$$;
COMMENT ON FUNCTION openwop.create_api_key(text, text, text[], timestamptz, text) IS
  'Create an API key for a tenant and return the plaintext token (shown once; only its hash is stored).';

-- Revoke a key by id. Returns false if there was no such active key.
CREATE FUNCTION openwop.revoke_api_key(key_id uuid) RETURNS boolean
LANGUAGE sql
SET search_path = ''
AS $$
    WITH r AS (UPDATE openwop.api_keys SET revoked_at = now()
               WHERE id = key_id AND revoked_at IS NULL RETURNING 1)
    SELECT count(*) > 0 FROM r
$$;
COMMENT ON FUNCTION openwop.revoke_api_key(uuid) IS 'Revoke an API key; it is refused from then on.';

-- Look a bearer token up. No row: unknown token. Otherwise state is 'ok', 'expired' or 'revoked'.
-- The lookup is by hash, so the comparison never touches the secret itself.
CREATE FUNCTION openwop.authenticate(token text)
RETURNS TABLE (tenant_id text, key_id uuid, scopes text[], state text)
LANGUAGE sql STABLE
SET search_path = ''
AS $$
    SELECT k.tenant_id, k.id, k.scopes,
           CASE WHEN k.revoked_at IS NOT NULL THEN 'revoked'
                WHEN k.expires_at IS NOT NULL AND k.expires_at <= now() THEN 'expired'
                ELSE 'ok' END
    FROM openwop.api_keys k
    WHERE k.token_hash = sha256(convert_to(token, 'UTF8'))
$$;
COMMENT ON FUNCTION openwop.authenticate(text) IS
  'Resolve a bearer token to (tenant, key id, scopes, state); no row when unknown.';
