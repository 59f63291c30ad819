-- The credential guard (docs/decisions/0004-credential-cache-and-guard.md):
-- a request served with a cached principal sends, in the same round trip as
-- its first statement,
--   SELECT cnx_refuse_credential() WHERE NOT EXISTS (<the credential still holds>)
-- under the principal's tenant. This function is called only when the
-- credential was revoked, expired, or its user deactivated or given another
-- role: the error (SQLSTATE 28000) aborts the statements sent after it.
CREATE FUNCTION cnx_refuse_credential() RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  RAISE EXCEPTION 'the token is unknown, expired or revoked' USING ERRCODE = '28000';
END
$$;

REVOKE ALL ON FUNCTION cnx_refuse_credential() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cnx_refuse_credential() TO cnx_app;
