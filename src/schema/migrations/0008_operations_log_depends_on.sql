-- Deleting operations (snapshot compaction deletes every operation a
-- snapshot covers) runs the self-reference's ON DELETE SET NULL action for
-- each deleted row: `... WHERE depends_on_id = $1`. Without an index that is
-- a scan of the whole table per deleted row, so compacting a document's
-- 100,000 operations took minutes. Only rows with a dependency are indexed.
CREATE INDEX operations_log_depends_on ON operations_log (depends_on_id) WHERE depends_on_id IS NOT NULL;
