-- What one embedding job costs PostgreSQL (decision 1450).
--
-- A job row is written when its chunk is inserted (the statement-level trigger
-- of 0010) or its text changes, updated when a worker claims it, and, from
-- now on, deleted when the worker completes it: embedding_jobs holds the
-- pending, processing and failed jobs only. Rows completed before this
-- migration keep status 'completed' and completed_at; nothing reads them and
-- a change of their chunk's text re-queues them as before.

-- 1. The claim's update is HOT.
--
-- embedding_jobs_claim covered (next_attempt_at) WHERE status IN ('pending',
-- 'processing'): a column in an index's predicate is indexed as far as HOT is
-- concerned, so the claim (status -> processing) and the completion (->
-- completed) each wrote a new entry into all three indexes. The due index
-- below is on a column the claim leaves alone and on a predicate (completed_at
-- IS NULL) that only legacy completed rows fail; with room on the page
-- (fillfactor 50, new pages only) the claim is a heap-only update. The claim
-- still tests the status on the row: in-flight jobs (processing under a live
-- lease) stay in the index and are stepped over, and a failed job is moved
-- to next_attempt_at = 'infinity' (never due) by the worker.
DROP INDEX embedding_jobs_claim;
CREATE INDEX embedding_jobs_due ON embedding_jobs (next_attempt_at) WHERE completed_at IS NULL;
ALTER TABLE embedding_jobs SET (fillfactor = 50);
UPDATE embedding_jobs SET next_attempt_at = 'infinity' WHERE status = 'failed';

-- 2. A new chunk's job is a plain INSERT.
--
-- A chunk id is new when the row is inserted, and a job cannot outlive its
-- chunk (3. below), so no job exists for it: ON CONFLICT bought nothing but a
-- speculative insertion per row (arbiter probe, speculative lock, a second
-- WAL record). A text change still upserts (cnx_queue_embedding_job of 0004).
CREATE OR REPLACE FUNCTION cnx_queue_embedding_jobs() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO embedding_jobs (tenant_id, content_chunk_id)
  SELECT n.tenant_id, n.id FROM new_rows n;
  RETURN NULL;
END
$$;

-- 3. The job's foreign key to its chunk becomes a delete trigger.
--
-- Jobs are written only by the triggers above, in the transaction that
-- inserts the chunk or updates its text, i.e. while that transaction holds
-- the chunk's row: the key's check (a lookup and a KEY SHARE lock of the
-- chunk, per job) could never fail. What the key did on delete — remove the
-- jobs — this trigger does, before the chunk's row is deleted: the DELETE
-- has locked the chunk's row when the trigger runs, and the trigger waits for
-- a worker holding the job (the worker's store locks the chunk, FOR KEY SHARE,
-- before the job: same order, no deadlock), then the chunk_embeddings key
-- (kept: it is what makes a concurrent store safe, also for a SERIALIZABLE
-- deleter) removes the vector the worker stored. SECURITY DEFINER: the jobs go whatever the deleting
-- role's row-level security lets it see, as with the key's cascade.
ALTER TABLE embedding_jobs DROP CONSTRAINT embedding_jobs_content_chunk_id_fkey;

CREATE FUNCTION cnx_delete_embedding_job() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  DELETE FROM embedding_jobs WHERE content_chunk_id = OLD.id;
  RETURN OLD;
END
$$;
CREATE TRIGGER content_chunk_embedding_delete
BEFORE DELETE ON content_chunks
FOR EACH ROW EXECUTE FUNCTION cnx_delete_embedding_job();

-- TRUNCATE content_chunks (it needs CASCADE for its other references) empties
-- the queue too, as the key's TRUNCATE rule did.
CREATE FUNCTION cnx_truncate_embedding_jobs() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  TRUNCATE embedding_jobs;
  RETURN NULL;
END
$$;
CREATE TRIGGER content_chunk_embedding_truncate
AFTER TRUNCATE ON content_chunks
FOR EACH STATEMENT EXECUTE FUNCTION cnx_truncate_embedding_jobs();

-- Both functions run as the schema's owner. EXECUTE is what CREATE TRIGGER
-- asks of its creator (a firing trigger is not checked): granted to PUBLIC,
-- the application role could attach them to a temporary table of its own and
-- delete or truncate every tenant's jobs.
REVOKE ALL ON FUNCTION cnx_delete_embedding_job(), cnx_truncate_embedding_jobs() FROM PUBLIC;

-- The same holds for the outbox trigger functions of 0004, 0010 and 0012:
-- attached to a temporary table named like a projected one, they would write
-- events for any tenant_id the application role puts in a row.
REVOKE ALL ON FUNCTION cnx_outbox_event(), cnx_outbox_insert_events(), cnx_outbox_delete_events() FROM PUBLIC;
