-- The write path of collaboration: every accepted Yjs update is one
-- operations_log row, committed before it is broadcast. What PostgreSQL did
-- per row beyond storing it, and what is kept:
--
-- * The outbox event: a PL/pgSQL call and a one-row INSERT per row. The
--   server inserts the updates of one group commit with one multi-row INSERT,
--   so INSERT gets the statement-level trigger of 0010 over the transition
--   table (same payload, same order). A snapshot deletes the operations it
--   covers (up to `collab.snapshot_every_ops`, 1000) with one DELETE, which
--   gets a statement-level trigger of its own. UPDATE keeps the per-row one.
-- * Foreign keys. Each is a query and a FOR KEY SHARE lock on the referenced
--   row per inserted row.
--   - tenant_id → tenants: dropped. Deleting a tenant deletes its content
--     items, whose ON DELETE CASCADE deletes their operations; the row's
--     tenant is checked by row-level security (WITH CHECK) on insert.
--   - session_id → user_sessions: dropped. Purging expired sessions (the
--     maintenance task) ran its ON DELETE SET NULL as a scan of the whole
--     operations_log per purged session (no index on session_id); the column
--     keeps the id of the session that made the change, as history.
--   - depends_on_id → operations_log: dropped, with the index 0008 added for
--     it. A snapshot deletes the operations it covers; the key's ON DELETE
--     SET NULL then ran one query per deleted row: a DELETE of 1,000
--     operations took 36 ms with it and 14 ms without (test cluster), and
--     126 ms in the collaboration benchmark on a loaded machine, while the
--     writer's next commit waited to flush the WAL behind it. depends_on_id now names the operation an
--     update depended on even after that one was compacted away; the graph
--     drops the DEPENDS_ON relationship with the deleted Operation node, and
--     `cnx verify` expects no relationship to a missing row, as before.
--   - document_id and user_id keep theirs (the document's cascade, the
--     user's SET NULL).
-- * Indexes. The UNIQUE index on seq alone is dropped: seq is an identity
--   column, and every query reads by (document_id, seq), which has its own
--   index. The primary key and (document_id, seq) stay.
--
-- The relay reads only inserted (and, to warn about them, updated) outbox
-- rows: the publication no longer carries the DELETEs with which the relay
-- removes relayed rows, so they are neither sent nor parsed again.

-- The outbox event of every deleted row, as cnx_outbox_event() writes it for
-- a DELETE; TG_ARGV lists columns left out of the payload. Needs REFERENCING
-- OLD TABLE AS old_rows.
CREATE FUNCTION cnx_outbox_delete_events() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  INSERT INTO outbox (aggregatetype, aggregateid, type, payload, tenant_id)
  SELECT TG_TABLE_NAME, r.v_old ->> 'id', TG_TABLE_NAME || '.deleted',
         jsonb_build_object(
           'op', 'd',
           'table', TG_TABLE_NAME,
           'id', r.v_old ->> 'id',
           'tenant_id', r.v_tenant,
           'pg_version', coalesce((r.v_old ->> 'pg_version')::bigint, 1),
           'schemaVersion', 1,
           'row', NULL::jsonb,
           'old', r.v_old),
         r.v_tenant
  FROM (SELECT x.v_old,
               CASE WHEN TG_TABLE_NAME = 'tenants' THEN (x.v_old ->> 'id')::uuid
                    ELSE (x.v_old ->> 'tenant_id')::uuid END AS v_tenant,
               x.ord
        FROM (SELECT to_jsonb(o) - coalesce(TG_ARGV, '{}'::text[]) AS v_old, row_number() OVER () AS ord
              FROM old_rows o) x) r
  ORDER BY r.ord;
  RETURN NULL;
END
$$;

DROP TRIGGER operations_log_outbox ON operations_log;
CREATE TRIGGER operations_log_outbox
AFTER UPDATE ON operations_log
FOR EACH ROW EXECUTE FUNCTION cnx_outbox_event('update');
CREATE TRIGGER operations_log_outbox_insert
AFTER INSERT ON operations_log
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION cnx_outbox_insert_events('update');
CREATE TRIGGER operations_log_outbox_delete
AFTER DELETE ON operations_log
REFERENCING OLD TABLE AS old_rows
FOR EACH STATEMENT EXECUTE FUNCTION cnx_outbox_delete_events('update');

ALTER TABLE operations_log DROP CONSTRAINT IF EXISTS operations_log_tenant_id_fkey;
ALTER TABLE operations_log DROP CONSTRAINT IF EXISTS operations_log_session_id_fkey;
ALTER TABLE operations_log DROP CONSTRAINT IF EXISTS operations_log_depends_on_id_fkey;
DROP INDEX IF EXISTS operations_log_depends_on;
ALTER TABLE operations_log DROP CONSTRAINT IF EXISTS operations_log_seq_key;

ALTER PUBLICATION cnx_outbox SET (publish = 'insert, update');
