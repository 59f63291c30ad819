-- The vector index's catch-up reads what was written since its last position.
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
