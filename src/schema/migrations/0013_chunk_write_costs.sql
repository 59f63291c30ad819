-- Per-chunk costs of ingestion that buy nothing: two indexes no query reads,
-- pglz for the chunk's tsvector and its tenant key (decision 1170).
--
-- content_chunks_hash (content_item_id, content_hash): re-chunking reads an
-- item's chunks by content_item_id (the unique (content_item_id, chunk_index)
-- key serves that) and matches hashes in memory; every other reader of
-- content_hash joins by chunk id. pg_stat_user_indexes showed 0 scans over an
-- ingestion, the search and the embedding pipeline.
DROP INDEX IF EXISTS content_chunks_hash;

-- chunk_embeddings_model (tenant_id, model, model_version): the readers filter
-- by (model, model_version) without the tenant, which the leading columns of
-- chunk_embeddings_written (model, model_version, written_xid, chunk_id) serve;
-- per chunk, lookups go through (chunk_id, model, model_version). 0 scans too.
DROP INDEX IF EXISTS chunk_embeddings_model;

-- The generated search_tsv of a long chunk is what TOAST compresses when the
-- row passes 2 kB (it is often wider than the text), with pglz: ~1 % of the
-- REST backends' samples during ingestion. lz4 as for the text (0010).
DO $$
BEGIN
  ALTER TABLE content_chunks ALTER COLUMN search_tsv SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
  RAISE NOTICE 'lz4 is not available; search_tsv stays pglz';
END
$$;

-- The tenant foreign key of content_chunks, as 0011 did for the embedding
-- tables: a lookup and a KEY SHARE lock of the tenant's row per chunk (one
-- row that every concurrent ingestion request of the tenant locks, so the
-- locks become multixacts). A chunk references its content item ON DELETE
-- CASCADE and the item its tenant ON DELETE CASCADE, so a chunk cannot
-- outlive its tenant without it; the key never checked that the chunk's
-- tenant_id is its item's (the writer copies it). Deleting a tenant still
-- removes its chunks, their jobs and embeddings through its items. Row-level
-- security is unchanged.
ALTER TABLE content_chunks DROP CONSTRAINT content_chunks_tenant_id_fkey;
