-- The change-capture pipeline: outbox, embedding jobs, sync state, dead letters,
-- token usage; then the triggers, row-level security and grants for every table.

-- Debezium outbox-event-router compatible columns, plus tenant_id and created_at.
CREATE TABLE outbox (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  aggregatetype  varchar(255) NOT NULL,      -- the table; the bus topic derives from it
  aggregateid    varchar(255) NOT NULL,      -- the row id; the bus key
  type           varchar(255) NOT NULL,      -- <table>.created | .updated | .deleted
  payload        jsonb NOT NULL,
  tenant_id      uuid,
  created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_created ON outbox (created_at);

CREATE TABLE embedding_jobs (
  id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id         uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  content_chunk_id  uuid NOT NULL UNIQUE REFERENCES content_chunks(id) ON DELETE CASCADE,
  model             text,                    -- NULL: the configured default model
  status            varchar(50) NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
  attempt_count     integer NOT NULL DEFAULT 0,
  last_attempt_at   timestamptz,
  next_attempt_at   timestamptz NOT NULL DEFAULT now(),
  locked_until      timestamptz,
  error_message     text,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  completed_at      timestamptz
);
CREATE INDEX embedding_jobs_claim ON embedding_jobs (next_attempt_at) WHERE status IN ('pending', 'processing');

-- One row per entity per projection target (graph, vector, ...). Written only by
-- projectors; never touches entity tables, so it cannot re-fire the outbox.
CREATE TABLE sync_state (
  target           text NOT NULL,
  aggregate_type   text NOT NULL,
  aggregate_id     text NOT NULL,
  tenant_id        uuid,
  applied_version  bigint NOT NULL DEFAULT 0,
  status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'synced', 'retrying', 'failed', 'deleted')),
  attempts         integer NOT NULL DEFAULT 0,
  last_error       text,
  last_synced_at   timestamptz,
  updated_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (target, aggregate_type, aggregate_id)
);
CREATE INDEX sync_state_failures ON sync_state (target, status) WHERE status IN ('retrying', 'failed');

CREATE TABLE dead_letters (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id       uuid,
  source          text NOT NULL,             -- 'graph', 'vector', 'embed', ...
  event_id        text,
  aggregate_type  text,
  aggregate_id    text,
  payload         jsonb NOT NULL,
  error           text NOT NULL,
  attempts        integer NOT NULL DEFAULT 0,
  created_at      timestamptz NOT NULL DEFAULT now(),
  replayed_at     timestamptz
);
CREATE INDEX dead_letters_open ON dead_letters (source, created_at) WHERE replayed_at IS NULL;

CREATE TABLE token_usage (
  id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id          uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  project_id         uuid REFERENCES projects(id) ON DELETE SET NULL,
  thread_id          uuid REFERENCES threads(id) ON DELETE SET NULL,
  message_id         uuid REFERENCES messages(id) ON DELETE SET NULL,
  user_id            uuid REFERENCES users(id) ON DELETE SET NULL,
  model              text NOT NULL,
  kind               text NOT NULL DEFAULT 'completion' CHECK (kind IN ('completion', 'context', 'embedding')),
  prompt_tokens      integer NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
  completion_tokens  integer NOT NULL DEFAULT 0 CHECK (completion_tokens >= 0),
  total_tokens       integer GENERATED ALWAYS AS (prompt_tokens + completion_tokens) STORED,
  created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX token_usage_tenant ON token_usage (tenant_id, created_at);

-- ---------------------------------------------------------------------------
-- Outbox trigger: one event per row change, in the same transaction.
-- TG_ARGV lists columns left out of the payload (secrets, large blobs).
CREATE FUNCTION cnx_outbox_event() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v_row  jsonb;
  v_old  jsonb;
  v_op   text;
  v_id   text;
  v_tenant uuid;
  i      integer;
BEGIN
  IF TG_OP = 'DELETE' THEN
    v_old := to_jsonb(OLD);
    v_row := NULL;
    v_op := 'd';
  ELSE
    v_row := to_jsonb(NEW);
    v_op := CASE TG_OP WHEN 'INSERT' THEN 'c' ELSE 'u' END;
    IF TG_OP = 'UPDATE' THEN v_old := to_jsonb(OLD); END IF;
  END IF;
  FOR i IN 0 .. TG_NARGS - 1 LOOP
    v_row := v_row - TG_ARGV[i];
    v_old := v_old - TG_ARGV[i];
  END LOOP;
  v_id := coalesce(v_row, v_old) ->> 'id';
  v_tenant := CASE WHEN TG_TABLE_NAME = 'tenants' THEN v_id::uuid
                   ELSE (coalesce(v_row, v_old) ->> 'tenant_id')::uuid END;
  INSERT INTO outbox (aggregatetype, aggregateid, type, payload, tenant_id)
  VALUES (TG_TABLE_NAME, v_id,
          TG_TABLE_NAME || CASE v_op WHEN 'c' THEN '.created' WHEN 'u' THEN '.updated' ELSE '.deleted' END,
          jsonb_build_object(
            'op', v_op,
            'table', TG_TABLE_NAME,
            'id', v_id,
            'tenant_id', v_tenant,
            'pg_version', coalesce((coalesce(v_row, v_old) ->> 'pg_version')::bigint, 1),
            'schemaVersion', 1,
            'row', v_row,
            'old', CASE WHEN v_op = 'd' THEN v_old ELSE NULL END),
          v_tenant);
  RETURN NULL;
END
$$;

-- A chunk whose text is new or changed needs (re-)embedding.
CREATE FUNCTION cnx_queue_embedding_job() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO embedding_jobs (tenant_id, content_chunk_id)
  VALUES (NEW.tenant_id, NEW.id)
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

CREATE TRIGGER content_chunk_embedding
AFTER INSERT OR UPDATE OF content ON content_chunks
FOR EACH ROW EXECUTE FUNCTION cnx_queue_embedding_job();

DO $$
DECLARE
  t record;
  projected text[] := ARRAY[
    'tenants', 'users', 'user_sessions', 'programs', 'projects', 'project_members', 'threads', 'messages',
    'content_items', 'content_chunks', 'tags', 'content_tags', 'thread_content', 'message_context',
    'knowledge_nodes', 'knowledge_edges', 'content_knowledge', 'knowledge_graph_configurations',
    'operations_log', 'resource_presence', 'realtime_annotations', 'collaborative_views', 'view_participants'];
  excluded jsonb := '{"users": ["password_hash"], "user_sessions": ["token_hash"],
                      "operations_log": ["update"], "content_chunks": ["search_tsv"]}';
  args text;
BEGIN
  -- Version trigger on every table that has pg_version.
  FOR t IN SELECT table_name FROM information_schema.columns
           WHERE table_schema = 'public' AND column_name = 'pg_version'
             AND table_name IN (SELECT table_name FROM information_schema.tables
                                WHERE table_schema = 'public' AND table_type = 'BASE TABLE')
  LOOP
    EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE ON %I FOR EACH ROW EXECUTE FUNCTION cnx_bump_version()',
                   t.table_name || '_version', t.table_name);
  END LOOP;

  -- Outbox trigger on every projected table.
  FOREACH args IN ARRAY projected LOOP
    EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE ON %I FOR EACH ROW '
                   'EXECUTE FUNCTION cnx_outbox_event(%s)',
                   args || '_outbox', args,
                   coalesce((SELECT string_agg(quote_literal(c), ', ')
                             FROM jsonb_array_elements_text(excluded -> args) AS c), ''));
  END LOOP;

  -- Row-level security on every tenant table, forced so owners obey it too.
  FOR t IN SELECT c.table_name FROM information_schema.columns c
           JOIN information_schema.tables tb ON tb.table_schema = c.table_schema AND tb.table_name = c.table_name
           WHERE c.table_schema = 'public' AND c.column_name = 'tenant_id' AND tb.table_type = 'BASE TABLE'
  LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t.table_name);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t.table_name);
    EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = cnx_current_tenant()) '
                   'WITH CHECK (tenant_id = cnx_current_tenant())', t.table_name);
  END LOOP;
END
$$;

ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants USING (id = cnx_current_tenant()) WITH CHECK (id = cnx_current_tenant());

-- ---------------------------------------------------------------------------
-- Materialised views, refreshed CONCURRENTLY by the server's scheduler and by
-- `cnx refresh-views`; each has the unique index CONCURRENTLY needs.

-- Members with activity (messages or presence) in a project in the last 30 days.
CREATE MATERIALIZED VIEW active_project_users AS
WITH activity AS (
  SELECT t.tenant_id, t.project_id, m.created_by AS user_id, max(m.created_at) AS last_active_at,
         count(*) AS messages
  FROM messages m JOIN threads t ON t.id = m.thread_id
  WHERE m.created_by IS NOT NULL AND m.created_at > now() - interval '30 days'
  GROUP BY 1, 2, 3
  UNION ALL
  SELECT rp.tenant_id, coalesce(ci.project_id, th.project_id, p.id), rp.user_id, max(rp.last_active_at), 0
  FROM resource_presence rp
  LEFT JOIN content_items ci ON rp.resource_type = 'content_item' AND ci.id = rp.resource_id
  LEFT JOIN threads th ON rp.resource_type = 'thread' AND th.id = rp.resource_id
  LEFT JOIN projects p ON rp.resource_type = 'project' AND p.id = rp.resource_id
  WHERE rp.last_active_at > now() - interval '30 days'
  GROUP BY 1, 2, 3
)
SELECT a.tenant_id, a.project_id, a.user_id, max(a.last_active_at) AS last_active_at,
       sum(a.messages)::bigint AS messages_30d
FROM activity a
WHERE a.project_id IS NOT NULL
GROUP BY a.tenant_id, a.project_id, a.user_id;
CREATE UNIQUE INDEX active_project_users_key ON active_project_users (project_id, user_id);

CREATE MATERIALIZED VIEW token_usage_summary AS
SELECT tenant_id,
       coalesce(project_id, '00000000-0000-0000-0000-000000000000') AS project_id,
       model,
       kind,
       date_trunc('day', created_at AT TIME ZONE 'UTC')::date AS day,
       count(*)::bigint AS calls,
       sum(prompt_tokens)::bigint AS prompt_tokens,
       sum(completion_tokens)::bigint AS completion_tokens,
       sum(total_tokens)::bigint AS total_tokens
FROM token_usage
GROUP BY 1, 2, 3, 4, 5;
CREATE UNIQUE INDEX token_usage_summary_key ON token_usage_summary (tenant_id, project_id, model, kind, day);

-- Materialised views cannot carry row-level security: the application reads
-- them only through these tenant-filtered views.
CREATE VIEW tenant_active_project_users WITH (security_barrier) AS
  SELECT * FROM active_project_users WHERE tenant_id = cnx_current_tenant();
CREATE VIEW tenant_token_usage_summary WITH (security_barrier) AS
  SELECT * FROM token_usage_summary WHERE tenant_id = cnx_current_tenant();

-- ---------------------------------------------------------------------------
-- Privileges of the application role (no BYPASSRLS, not an owner).
GRANT USAGE ON SCHEMA public TO cnx_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO cnx_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO cnx_app;
REVOKE ALL ON outbox, active_project_users, token_usage_summary FROM cnx_app;
REVOKE INSERT, UPDATE, DELETE ON tenant_active_project_users, tenant_token_usage_summary FROM cnx_app;
GRANT EXECUTE ON FUNCTION cnx_current_tenant() TO cnx_app;

-- The change-capture relay reads the outbox through this publication.
CREATE PUBLICATION cnx_outbox FOR TABLE outbox;
REVOKE ALL ON schema_migrations FROM cnx_app;
