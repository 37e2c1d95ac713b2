-- openwop schema, part 2: small helpers every other part uses.

-- The tenant a SQL session acts as: the setting `openwop.tenant`, else 'default'.
-- SQL users pick a tenant with `SET openwop.tenant = 'acme'`; the edge passes the tenant of the
-- authenticated key explicitly.
CREATE FUNCTION openwop.current_tenant() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT coalesce(nullif(pg_catalog.current_setting('openwop.tenant', true), ''), 'default') $$;
COMMENT ON FUNCTION openwop.current_tenant() IS
  'The tenant this session acts as: the openwop.tenant setting, else ''default''.';

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
