-- Two costs of the embedding pipeline (decisions 1410 and 1412).
--
-- 1. The vector index's catch-up reads what was written since its last position.
--
-- The position used to be chunk_embeddings.created_at (a transaction's start
-- time, which may commit after a younger one), so every catch-up re-read the
-- last 120 s of embeddings, and walked the whole (chunk_id, model, version)
-- index to find them. Each row now records the transaction that last wrote it
-- (written_xid); a catch-up reads rows of the model with written_xid at or
-- above its position through the index below, and its next position is the
-- xmin of the snapshot it took before reading: every transaction below it had
-- ended, so nothing committed later can have a smaller written_xid.
--
-- Writers of chunk_embeddings that update a row (INSERT ... ON CONFLICT DO
-- UPDATE) set written_xid = pg_current_xact_id() themselves; inserts get it by
-- default. Rows written before this migration get 1 (a constant default: no
-- table rewrite); a checkpoint made before it carries a time position and is
-- caught up from the start once.
ALTER TABLE chunk_embeddings ADD COLUMN written_xid xid8 NOT NULL DEFAULT '1';
ALTER TABLE chunk_embeddings ALTER COLUMN written_xid SET DEFAULT pg_current_xact_id();
CREATE INDEX chunk_embeddings_written ON chunk_embeddings (model, model_version, written_xid, chunk_id);

-- 2. The tenant foreign keys of embedding_jobs and chunk_embeddings.
--
-- Every job row (one per new chunk, written by the statement-level trigger of
-- 0010 during the ingestion request) and every embedding row ran a referential
-- check against tenants: a lookup and a KEY SHARE row lock of the tenant's
-- row, per row. Both tables also reference content_chunks(id) ON DELETE
-- CASCADE, and content_chunks references tenants(id) ON DELETE CASCADE: a job
-- or an embedding cannot outlive its chunk, nor the chunk its tenant, so the
-- tenant key adds no guarantee (it never checked that the tenant_id is the
-- chunk's: the writers copy it from the chunk). Deleting a tenant still
-- removes both through its chunks. Row-level security (tenant_id =
-- cnx_current_tenant()) is unchanged.
ALTER TABLE embedding_jobs DROP CONSTRAINT embedding_jobs_tenant_id_fkey;
ALTER TABLE chunk_embeddings DROP CONSTRAINT chunk_embeddings_tenant_id_fkey;
