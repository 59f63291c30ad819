-- sync_state rows of deleted aggregates: a delete event leaves the row with
-- status 'deleted' (bookkeeping: nothing reads it back but `cnx sync status`),
-- and nothing removed them. Collaboration compacts its operations after every
-- snapshot, so each edit left one such row for good. The maintenance task now
-- deletes them a day after the delete (domain::PurgeExpired); this index finds
-- them without a scan of the whole table. Its column never changes and its
-- predicate reads only `status`, which already blocks heap-only updates through
-- sync_state_failures, so sync_state's frequent updates stay as they were.
CREATE INDEX sync_state_deleted ON sync_state (aggregate_type) WHERE status = 'deleted';
