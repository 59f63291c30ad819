-- Versions of operations_log rows that grow (decision 1501). The table had no
-- pg_version, so every event of an operation carried version 1 (its delete 2):
--   - an UPDATE (a deleted user's user_id set NULL) emitted an upsert at the
--     version the graph already held, which the store's version guard skips:
--     the row's PERFORMED relationship stayed until something else removed it;
--   - a row deleted and inserted again with the same id came back at version
--     1, below its tombstone (2): it never reached the graph.
-- Now a row gets pg_version from a sequence, in steps of 1024, when inserted;
-- an UPDATE adds 1 (as cnx_bump_version does on the other tables); a delete is
-- projected at pg_version + 1. So an update outranks what the row had, and a
-- row inserted again outranks the delete of its predecessor (fewer than 1023
-- updates per row: the only UPDATE is the SET NULL of user_id). Rows of before
-- this migration keep version 1, which is what the graph holds for them.
--
-- The batch events of 0016 carry each row's pg_version (appended and
-- compacted rows), and the UPDATE event is keyed by the document like them
-- (aggregateid = document_id), so all events of an operation are in one
-- order on the bus. Its payload is the per-row event of cnx_outbox_event().

ALTER TABLE operations_log ADD COLUMN pg_version bigint NOT NULL DEFAULT 1;
CREATE SEQUENCE operations_log_version_seq;
GRANT USAGE, SELECT ON SEQUENCE operations_log_version_seq TO cnx_app;
ALTER TABLE operations_log ALTER COLUMN pg_version SET DEFAULT nextval('operations_log_version_seq') * 1024;

-- cnx_bump_version() also sets updated_at, which operations_log does not have.
CREATE FUNCTION cnx_bump_operation_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.pg_version := OLD.pg_version + 1;
  RETURN NEW;
END
$$;
CREATE TRIGGER operations_log_version BEFORE UPDATE ON operations_log
FOR EACH ROW EXECUTE FUNCTION cnx_bump_operation_version();

CREATE OR REPLACE FUNCTION cnx_outbox_operations_appended() RETURNS trigger
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
                                            'depends_on_id', r.depends_on_id, 'created_at', r.created_at,
                                            'pg_version', r.pg_version)
                         ORDER BY r.seq) AS rows
        FROM (SELECT n.id, n.seq, n.tenant_id, n.document_id, n.client_id, n.clock, n.user_id, n.session_id,
                     n.depends_on_id, n.created_at, n.pg_version,
                     (row_number() OVER (PARTITION BY n.document_id, n.tenant_id ORDER BY n.seq) - 1) / 1000 AS part
              FROM new_rows n) r
        GROUP BY r.document_id, r.tenant_id, r.part) p
  ORDER BY p.first_seq;
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION cnx_outbox_operations_compacted() RETURNS trigger
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
               jsonb_agg(jsonb_build_object('id', r.id, 'seq', r.seq, 'pg_version', r.pg_version)
                         ORDER BY r.seq) AS rows
        FROM (SELECT o.id, o.seq, o.tenant_id, o.document_id, o.pg_version,
                     (row_number() OVER (PARTITION BY o.document_id, o.tenant_id ORDER BY o.seq) - 1) / 1000 AS part
              FROM old_rows o) r
        GROUP BY r.document_id, r.tenant_id, r.part) p
  ORDER BY p.first_seq;
  RETURN NULL;
END
$$;

CREATE FUNCTION cnx_outbox_operations_updated() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v_row jsonb := to_jsonb(NEW) - 'update';
BEGIN
  INSERT INTO outbox (aggregatetype, aggregateid, type, payload, tenant_id)
  VALUES ('operations_log', NEW.document_id::text, 'operations_log.updated',
          jsonb_build_object(
            'op', 'u',
            'table', 'operations_log',
            'id', NEW.id,
            'tenant_id', NEW.tenant_id,
            'pg_version', NEW.pg_version,
            'schemaVersion', 1,
            'row', v_row,
            'old', NULL),
          NEW.tenant_id);
  RETURN NULL;
END
$$;

DROP TRIGGER operations_log_outbox ON operations_log;
CREATE TRIGGER operations_log_outbox
AFTER UPDATE ON operations_log
FOR EACH ROW EXECUTE FUNCTION cnx_outbox_operations_updated();

REVOKE ALL ON FUNCTION cnx_outbox_operations_updated() FROM PUBLIC;
