-- Inserting chunks: one trigger call per statement instead of one per row.
--
-- Ingestion inserts a document's chunks with multi-row INSERTs. The per-row
-- AFTER triggers of 0004 (the outbox event and the embedding job) ran a
-- PL/pgSQL call and a one-row INSERT for every chunk, about 40 % of
-- PostgreSQL's time during ingestion. For INSERT they become statement-level
-- triggers over the transition table: the same outbox rows (same payload,
-- same order) and the same embedding jobs, written by one INSERT ... SELECT
-- each. UPDATE and DELETE keep the per-row triggers of 0004 (an UPDATE still
-- re-queues the job when `content` is in its SET list, as before).

-- The outbox event of every inserted row; TG_ARGV lists columns left out of
-- the payload, as for cnx_outbox_event(). Needs REFERENCING NEW TABLE AS
-- new_rows.
CREATE FUNCTION cnx_outbox_insert_events() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  INSERT INTO outbox (aggregatetype, aggregateid, type, payload, tenant_id)
  SELECT TG_TABLE_NAME, r.v_row ->> 'id', TG_TABLE_NAME || '.created',
         jsonb_build_object(
           'op', 'c',
           'table', TG_TABLE_NAME,
           'id', r.v_row ->> 'id',
           'tenant_id', r.v_tenant,
           'pg_version', coalesce((r.v_row ->> 'pg_version')::bigint, 1),
           'schemaVersion', 1,
           'row', r.v_row,
           'old', NULL::jsonb),
         r.v_tenant
  FROM (SELECT x.v_row,
               CASE WHEN TG_TABLE_NAME = 'tenants' THEN (x.v_row ->> 'id')::uuid
                    ELSE (x.v_row ->> 'tenant_id')::uuid END AS v_tenant,
               x.ord
        FROM (SELECT to_jsonb(n) - coalesce(TG_ARGV, '{}'::text[]) AS v_row, row_number() OVER () AS ord
              FROM new_rows n) x) r
  ORDER BY r.ord;
  RETURN NULL;
END
$$;

-- The embedding job of every inserted chunk. Needs REFERENCING NEW TABLE AS
-- new_rows.
CREATE FUNCTION cnx_queue_embedding_jobs() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO embedding_jobs (tenant_id, content_chunk_id)
  SELECT n.tenant_id, n.id FROM new_rows n
  ON CONFLICT (content_chunk_id) DO UPDATE SET
    status = 'pending',
    attempt_count = 0,
    error_message = NULL,
    next_attempt_at = now(),
    locked_until = NULL,
    completed_at = NULL,
    updated_at = now();
  RETURN NULL;
END
$$;

DROP TRIGGER content_chunk_embedding ON content_chunks;
CREATE TRIGGER content_chunk_embedding
AFTER UPDATE OF content ON content_chunks
FOR EACH ROW EXECUTE FUNCTION cnx_queue_embedding_job();
CREATE TRIGGER content_chunk_embedding_insert
AFTER INSERT ON content_chunks
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION cnx_queue_embedding_jobs();

DROP TRIGGER content_chunks_outbox ON content_chunks;
CREATE TRIGGER content_chunks_outbox
AFTER UPDATE OR DELETE ON content_chunks
FOR EACH ROW EXECUTE FUNCTION cnx_outbox_event('search_tsv');
CREATE TRIGGER content_chunks_outbox_insert
AFTER INSERT ON content_chunks
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION cnx_outbox_insert_events('search_tsv');

-- TOAST compression with lz4 instead of pglz for the large values written on
-- every ingestion (the chunk text, its outbox payload, the document
-- snapshot): pglz was ~3 % of PostgreSQL's time. Only new values use it; a
-- server built without lz4 keeps pglz.
DO $$
BEGIN
  ALTER TABLE outbox ALTER COLUMN payload SET COMPRESSION lz4;
  ALTER TABLE content_chunks ALTER COLUMN content SET COMPRESSION lz4;
  ALTER TABLE document_snapshots ALTER COLUMN state SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
  RAISE NOTICE 'lz4 is not available; TOAST compression stays pglz';
END
$$;
