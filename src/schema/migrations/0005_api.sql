-- REST API support: cross-tenant credential look-ups and idempotency keys.
--
-- The application role sees only the rows of the tenant it has set, but two
-- look-ups happen before a tenant is known: login by email and bearer token ->
-- principal. They are SECURITY DEFINER functions with a pinned search_path,
-- returning only what the caller needs. They rely on their owner bypassing
-- row-level security (the superuser that runs migrations; see
-- docs/decisions/0700-rest-api-auth.md).

-- Every user with this email, in every tenant (at most 20), for password login.
CREATE FUNCTION cnx_login_candidates(p_email text)
RETURNS TABLE (tenant_id uuid, tenant_slug text, user_id uuid, password_hash text, is_active boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT u.tenant_id, t.slug, u.id, u.password_hash, u.is_active
  FROM users u JOIN tenants t ON t.id = u.tenant_id
  WHERE lower(u.email) = lower(p_email)
  ORDER BY u.created_at, u.id
  LIMIT 20
$$;

-- The principal behind a bearer token, given the SHA-256 of the token.
-- p_kind is 'session' or 'api_key'. No row when the token is unknown,
-- revoked, expired, or its user is inactive. last_seen_at / last_used_at is
-- written at most once per p_touch_after.
CREATE FUNCTION cnx_authenticate(p_kind text, p_hash bytea, p_touch_after interval)
RETURNS TABLE (credential_id uuid, tenant_id uuid, user_id uuid, user_role text, expires_at timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  r record;
BEGIN
  IF p_kind = 'session' THEN
    SELECT s.id, s.tenant_id, s.user_id, u.role, s.expires_at, s.last_seen_at AS seen INTO r
    FROM user_sessions s JOIN users u ON u.id = s.user_id
    WHERE s.token_hash = p_hash AND s.revoked_at IS NULL AND s.expires_at > now() AND u.is_active;
    IF NOT FOUND THEN RETURN; END IF;
    IF r.seen IS NULL OR r.seen < now() - p_touch_after THEN
      UPDATE user_sessions SET last_seen_at = now() WHERE id = r.id;
    END IF;
  ELSIF p_kind = 'api_key' THEN
    SELECT k.id, k.tenant_id, k.user_id, u.role, k.expires_at, k.last_used_at AS seen INTO r
    FROM api_keys k JOIN users u ON u.id = k.user_id
    WHERE k.key_hash = p_hash AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())
      AND u.is_active;
    IF NOT FOUND THEN RETURN; END IF;
    IF r.seen IS NULL OR r.seen < now() - p_touch_after THEN
      UPDATE api_keys SET last_used_at = now() WHERE id = r.id;
    END IF;
  ELSE
    RETURN;
  END IF;
  credential_id := r.id;
  tenant_id := r.tenant_id;
  user_id := r.user_id;
  user_role := r.role;
  expires_at := r.expires_at;
  RETURN NEXT;
END
$$;

REVOKE ALL ON FUNCTION cnx_login_candidates(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION cnx_authenticate(text, bytea, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cnx_login_candidates(text) TO cnx_app;
GRANT EXECUTE ON FUNCTION cnx_authenticate(text, bytea, interval) TO cnx_app;

-- Responses of POST requests that carried an Idempotency-Key, replayed for
-- 24 hours. response_status is NULL while the first request is running.
CREATE TABLE idempotency_keys (
  tenant_id         uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  user_id           uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  key               text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
  method            text NOT NULL,
  path              text NOT NULL,
  request_hash      text NOT NULL,
  response_status   integer,
  response_headers  jsonb NOT NULL DEFAULT '{}',
  response_body     text,
  created_at        timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, user_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
ALTER TABLE idempotency_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE idempotency_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON idempotency_keys USING (tenant_id = cnx_current_tenant())
  WITH CHECK (tenant_id = cnx_current_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON idempotency_keys TO cnx_app;
