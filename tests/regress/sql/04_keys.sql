-- API keys: created once in plaintext, stored hashed, revocable, expiring.
SELECT openwop.create_api_key('regress_a', 'regress key', ARRAY['runs:read'], NULL,
                              'owk_regress_key_0123456789abcdef') AS token;
SELECT tenant_id, scopes, state FROM openwop.authenticate('owk_regress_key_0123456789abcdef');
SELECT count(*) AS plaintext_stored FROM openwop.api_keys WHERE prefix <> left('owk_regress_key_0123456789abcdef', 8)
    OR token_hash = convert_to('owk_regress_key_0123456789abcdef', 'UTF8');
SELECT count(*) AS unknown_rows FROM openwop.authenticate('owk_not_a_key_at_all_000000000000');
SELECT openwop.revoke_api_key(id, tenant_id) FROM openwop.api_keys WHERE tenant_id = 'regress_a' AND label = 'regress key';
SELECT state FROM openwop.authenticate('owk_regress_key_0123456789abcdef');
SELECT length(openwop.create_api_key('regress_b', 'expired', openwop.all_scopes(), now() - interval '1 minute',
                                     'owk_regress_expired_0123456789ab')) AS token_length;
SELECT state FROM openwop.authenticate('owk_regress_expired_0123456789ab');
SELECT length(openwop.create_api_key('regress_b')) > 40 AS generated_token_is_long;
SELECT try($$SELECT openwop.create_api_key('regress_b', NULL, ARRAY['runs:everything'])$$);
SELECT try($$SELECT openwop.create_api_key('regress_b', NULL, openwop.all_scopes(), NULL, 'short')$$);
SELECT try($$SELECT openwop.create_api_key('nobody')$$);
