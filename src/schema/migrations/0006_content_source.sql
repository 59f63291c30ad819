-- Upsert by source (POST /v1/projects/{id}/content with a sourceUrl, `cnx
-- ingest`): at most one content item per project and source. The API
-- serialises creates of one source with an advisory lock; this index is the
-- invariant behind it, and makes a PATCH that would duplicate a source a 409.
--
-- Before this index two items of one project could share a source URL. Such
-- rows are not rewritten here (they are user data): the migration stops with
-- a message saying how to find them, to be resolved by hand.
DO $$
DECLARE
  n bigint;
BEGIN
  SELECT count(*) INTO n FROM (
    SELECT 1 FROM content_items WHERE source_url IS NOT NULL
    GROUP BY project_id, source_url HAVING count(*) > 1) d;
  IF n > 0 THEN
    RAISE EXCEPTION 'migration 6: % source URL(s) are shared by several content items of one project', n
      USING HINT = 'list them with: SELECT project_id, source_url, array_agg(id) FROM content_items '
                   'WHERE source_url IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1; '
                   'then clear or change source_url on all but one of each';
  END IF;
END
$$;

CREATE UNIQUE INDEX content_items_source ON content_items (project_id, source_url) WHERE source_url IS NOT NULL;

-- The seed's embedding bookkeeping on content_chunks (vector_db_id,
-- embedding_model, embedding_version, last_embedded_at) is no longer written:
-- writing it back made one more outbox event per embedded chunk (decision
-- 1150). This view presents the same facts from chunk_embeddings: the newest
-- embedding of the chunk's current text. security_invoker: row-level security
-- of the caller applies.
CREATE VIEW content_chunk_embedding_status WITH (security_invoker = true) AS
  SELECT c.id AS chunk_id, c.tenant_id,
         CASE WHEN e.chunk_id IS NULL THEN NULL ELSE c.id::text END AS vector_db_id,
         e.model AS embedding_model, e.model_version AS embedding_version, e.created_at AS last_embedded_at
  FROM content_chunks c
  LEFT JOIN LATERAL (
    SELECT x.chunk_id, x.model, x.model_version, x.created_at FROM chunk_embeddings x
    WHERE x.chunk_id = c.id AND x.content_hash = c.content_hash
    ORDER BY x.created_at DESC LIMIT 1) e ON true;
GRANT SELECT ON content_chunk_embedding_status TO cnx_app;
