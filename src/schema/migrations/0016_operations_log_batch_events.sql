-- The outbox events of operations_log per statement and document (decision
-- 1470). Since 0012 a group commit's multi-row INSERT and a snapshot's
-- compaction DELETE each ran one statement-level trigger, but it still wrote
-- one outbox row per operations_log row, and each became a relayed event, a
-- bus delivery, a parsed payload and a sync_state row of its own: about half a
-- millisecond of PostgreSQL per operation in a burst, and a compaction of
-- 1,000 operations was 1,000 events in the middle of editing.
--
-- Now an INSERT writes one 'operations_log.appended' event and a DELETE one
-- 'operations_log.compacted' event per document the statement touched, keyed by
-- the document (aggregateid = document_id: the bus keeps a document's events in
-- order), with the rows in seq order:
--
--   {"op": "c" | "d", "table": "operations_log", "id": <document id>,
--    "tenant_id", "pg_version": <highest seq of the rows>, "schemaVersion": 2,
--    "batch": "appended" | "compacted", "part": k, "parts": n,
--    "shared": {"document_id": <document id>},
--    "rows": [{"id", "seq", "client_id", "clock", "user_id", "session_id",
--              "depends_on_id", "created_at"}, ...]}      (appended)
--    "rows": [{"id", "seq"}, ...]                           (compacted)
--
-- Each element of "rows" together with "shared" is the row the per-row event
-- carried (never the update bytes). A statement with more than 1,000 rows of
-- one document writes them as several events ("part" 1..n of "parts") of at
-- most 1,000 rows, in seq order, so no event outgrows what a consumer holds
-- comfortably. Rows of one statement and document share the tenant (a
-- document belongs to one tenant); events are grouped by both anyway.
--
-- A projector of before this migration cannot read these events (no "row"):
-- it dead-letters them, and they replay once it is upgraded. Events of the
-- per-row shape still in flight when a server upgrades are projected as before.
-- UPDATE keeps the per-row trigger of 0012 (rare: a deleted user's SET NULL).

CREATE FUNCTION cnx_outbox_operations_appended() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  INSERT INTO outbox (aggregatetype, aggregateid, type, payload, tenant_id)
  SELECT 'operations_log', p.document_id::text, 'operations_log.appended',
         jsonb_build_object(
           'op', 'c',
           'table', 'operations_log',
           'id', p.document_id,
           'tenant_id', p.tenant_id,
           'pg_version', p.last_seq,
           'schemaVersion', 2,
           'batch', 'appended',
           'part', p.part + 1,
           'parts', count(*) OVER (PARTITION BY p.document_id, p.tenant_id),
           'shared', jsonb_build_object('document_id', p.document_id),
           'rows', p.rows),
         p.tenant_id
  FROM (SELECT r.document_id, r.tenant_id, r.part, min(r.seq) AS first_seq, max(r.seq) AS last_seq,
               jsonb_agg(jsonb_build_object('id', r.id, 'seq', r.seq, 'client_id', r.client_id, 'clock', r.clock,
                                            'user_id', r.user_id, 'session_id', r.session_id,
                                            'depends_on_id', r.depends_on_id, 'created_at', r.created_at)
                         ORDER BY r.seq) AS rows
        FROM (SELECT n.id, n.seq, n.tenant_id, n.document_id, n.client_id, n.clock, n.user_id, n.session_id,
                     n.depends_on_id, n.created_at,
                     (row_number() OVER (PARTITION BY n.document_id, n.tenant_id ORDER BY n.seq) - 1) / 1000 AS part
              FROM new_rows n) r
        GROUP BY r.document_id, r.tenant_id, r.part) p
  ORDER BY p.first_seq;
  RETURN NULL;
END
$$;

CREATE FUNCTION cnx_outbox_operations_compacted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  INSERT INTO outbox (aggregatetype, aggregateid, type, payload, tenant_id)
  SELECT 'operations_log', p.document_id::text, 'operations_log.compacted',
         jsonb_build_object(
           'op', 'd',
           'table', 'operations_log',
           'id', p.document_id,
           'tenant_id', p.tenant_id,
           'pg_version', p.last_seq,
           'schemaVersion', 2,
           'batch', 'compacted',
           'part', p.part + 1,
           'parts', count(*) OVER (PARTITION BY p.document_id, p.tenant_id),
           'shared', jsonb_build_object('document_id', p.document_id),
           'rows', p.rows),
         p.tenant_id
  FROM (SELECT r.document_id, r.tenant_id, r.part, min(r.seq) AS first_seq, max(r.seq) AS last_seq,
               jsonb_agg(jsonb_build_object('id', r.id, 'seq', r.seq) ORDER BY r.seq) AS rows
        FROM (SELECT o.id, o.seq, o.tenant_id, o.document_id,
                     (row_number() OVER (PARTITION BY o.document_id, o.tenant_id ORDER BY o.seq) - 1) / 1000 AS part
              FROM old_rows o) r
        GROUP BY r.document_id, r.tenant_id, r.part) p
  ORDER BY p.first_seq;
  RETURN NULL;
END
$$;

DROP TRIGGER operations_log_outbox_insert ON operations_log;
DROP TRIGGER operations_log_outbox_delete ON operations_log;
CREATE TRIGGER operations_log_outbox_insert
AFTER INSERT ON operations_log
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION cnx_outbox_operations_appended();
CREATE TRIGGER operations_log_outbox_delete
AFTER DELETE ON operations_log
REFERENCING OLD TABLE AS old_rows
FOR EACH STATEMENT EXECUTE FUNCTION cnx_outbox_operations_compacted();

-- As for the trigger functions of 0014: attached by the application role to a
-- temporary table of its own, they would write events for any tenant.
REVOKE ALL ON FUNCTION cnx_outbox_operations_appended(), cnx_outbox_operations_compacted() FROM PUBLIC;

-- sync_state tracks operations per document from now on (aggregate_id = the
-- document id, applied_version = the highest seq applied). The rows of single
-- operations (aggregate_id = the operation's id) would stay behind for good:
-- nothing writes them again. Open failures keep their dead_letters row.
DELETE FROM sync_state WHERE target = 'graph' AND aggregate_type = 'operations_log';
