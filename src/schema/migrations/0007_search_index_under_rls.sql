-- Full-text search under row-level security.
--
-- A query of the application role carries the tenant policy of content_chunks
-- (tenant_id = cnx_current_tenant()). PostgreSQL evaluates a qual that is not
-- LEAKPROOF only after the policy, so `search_tsv @@ query` could not be a GIN
-- index condition: every search read all the tenant's chunks (about 40 ms per
-- 100,000 chunks, hundreds of ms under load). ts_match_vq (the operator `@@`
-- for tsvector/tsquery) only answers true or false from its two arguments and
-- raises no error that depends on the row, so seeing rows of other tenants
-- before the policy tells a caller nothing; marking it LEAKPROOF lets the
-- planner use the GIN index (decision 1103).
--
-- Only a superuser may change it. On an external database where the migrating
-- role is not one, the migration warns and search stays correct but slower.
DO $$
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    ALTER FUNCTION pg_catalog.ts_match_vq(tsvector, tsquery) LEAKPROOF;
  ELSE
    RAISE WARNING 'not a superuser: ts_match_vq stays non-leakproof, full-text search under row-level security '
                  'cannot use the GIN index (ask a superuser to run: ALTER FUNCTION '
                  'pg_catalog.ts_match_vq(tsvector, tsquery) LEAKPROOF)';
  END IF;
END
$$;
