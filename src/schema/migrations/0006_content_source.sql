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
