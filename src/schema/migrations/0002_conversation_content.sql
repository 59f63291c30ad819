-- Conversations, content, tags, and the links between them.

CREATE TABLE threads (
  id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id          uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  project_id         uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  parent_thread_id   uuid REFERENCES threads(id) ON DELETE CASCADE,
  relationship_type  text CHECK (relationship_type IN ('contains', 'branches_from', 'continues', 'references')),
  position           integer NOT NULL DEFAULT 0,
  title              text NOT NULL DEFAULT '' CHECK (length(title) <= 500),
  summary            text,
  metadata           jsonb NOT NULL DEFAULT '{}',
  created_by         uuid REFERENCES users(id) ON DELETE SET NULL,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  pg_version         bigint NOT NULL DEFAULT 1,
  CHECK (parent_thread_id IS NULL OR parent_thread_id <> id),
  CHECK ((parent_thread_id IS NULL) = (relationship_type IS NULL))
);
CREATE INDEX threads_project ON threads (tenant_id, project_id, created_at);
CREATE INDEX threads_parent ON threads (parent_thread_id) WHERE parent_thread_id IS NOT NULL;

CREATE TABLE messages (
  id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id          uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  thread_id          uuid NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
  parent_message_id  uuid REFERENCES messages(id) ON DELETE CASCADE,
  reply_type         text CHECK (reply_type IN ('response', 'alternative', 'clarification', 'followup')),
  position           integer NOT NULL DEFAULT 0,
  role               text NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
  content            text NOT NULL,
  model              text,
  token_count        integer CHECK (token_count >= 0),
  metadata           jsonb NOT NULL DEFAULT '{}',
  created_by         uuid REFERENCES users(id) ON DELETE SET NULL,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  pg_version         bigint NOT NULL DEFAULT 1
);
CREATE INDEX idx_messages_thread_created ON messages (tenant_id, thread_id, created_at);
CREATE INDEX messages_parent ON messages (parent_message_id) WHERE parent_message_id IS NOT NULL;

CREATE TABLE content_items (
  id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id           uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  project_id          uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  title               text NOT NULL CHECK (length(title) BETWEEN 1 AND 500),
  content_type        text NOT NULL CHECK (length(content_type) BETWEEN 1 AND 200),
  source_url          text,
  metadata            jsonb NOT NULL DEFAULT '{}',
  current_version_id  uuid,                  -- FK added below (content_versions references us)
  created_by          uuid REFERENCES users(id) ON DELETE SET NULL,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  pg_version          bigint NOT NULL DEFAULT 1
);
CREATE INDEX content_items_project ON content_items (tenant_id, project_id, created_at);
CREATE INDEX idx_content_items_source_url ON content_items (source_url) WHERE source_url IS NOT NULL;

-- Collaborative document state. A content item's text lives in snapshots (Yjs
-- state or plain text) plus the operations after them, never in content_versions.
CREATE TABLE document_snapshots (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id     uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  document_id   uuid NOT NULL REFERENCES content_items(id) ON DELETE CASCADE,
  format        text NOT NULL DEFAULT 'yjs-v1' CHECK (format IN ('yjs-v1', 'text')),
  state         bytea NOT NULL,
  state_vector  bytea,
  upto_op       bigint NOT NULL DEFAULT 0,   -- operations_log.seq included in this snapshot
  created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX document_snapshots_doc ON document_snapshots (document_id, upto_op DESC);

CREATE TABLE content_versions (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id        uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  content_item_id  uuid NOT NULL REFERENCES content_items(id) ON DELETE CASCADE,
  version_number   integer NOT NULL CHECK (version_number > 0),
  snapshot_id      uuid REFERENCES document_snapshots(id) ON DELETE SET NULL,
  content_hash     text NOT NULL,
  byte_size        bigint NOT NULL DEFAULT 0,
  token_count      integer,
  change_summary   text,
  created_by       uuid REFERENCES users(id) ON DELETE SET NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  UNIQUE (content_item_id, version_number)
);
ALTER TABLE content_items ADD CONSTRAINT content_items_current_version
  FOREIGN KEY (current_version_id) REFERENCES content_versions(id) ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED;

CREATE TABLE content_chunks (
  id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id          uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  content_item_id    uuid NOT NULL REFERENCES content_items(id) ON DELETE CASCADE,
  version_id         uuid REFERENCES content_versions(id) ON DELETE SET NULL,
  chunk_index        integer NOT NULL CHECK (chunk_index >= 0),
  content            text NOT NULL,
  token_count        integer NOT NULL DEFAULT 0,
  start_offset       integer NOT NULL DEFAULT 0,
  end_offset         integer NOT NULL DEFAULT 0,
  content_hash       text NOT NULL,
  metadata           jsonb NOT NULL DEFAULT '{}',
  vector_db_id       varchar(255),
  embedding_model    text,
  embedding_version  varchar(50),
  last_embedded_at   timestamptz,
  search_tsv         tsvector GENERATED ALWAYS AS (to_tsvector('english'::regconfig, content)) STORED,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  pg_version         bigint NOT NULL DEFAULT 1,
  CHECK (end_offset >= start_offset),
  UNIQUE (content_item_id, chunk_index) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX content_chunks_item ON content_chunks (tenant_id, content_item_id, chunk_index);
CREATE INDEX content_chunks_tsv ON content_chunks USING gin (search_tsv);
CREATE INDEX content_chunks_hash ON content_chunks (content_item_id, content_hash);

-- Vectors are kept in PostgreSQL too, so an index can be rebuilt without the embedder.
CREATE TABLE chunk_embeddings (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id      uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  chunk_id       uuid NOT NULL REFERENCES content_chunks(id) ON DELETE CASCADE,
  model          text NOT NULL,
  model_version  text NOT NULL,
  dimension      integer NOT NULL CHECK (dimension > 0),
  embedding      bytea NOT NULL,             -- dimension × float32, little-endian
  content_hash   text NOT NULL,              -- hash of the chunk text that was embedded
  created_at     timestamptz NOT NULL DEFAULT now(),
  UNIQUE (chunk_id, model, model_version),
  CHECK (length(embedding) = 4 * dimension)
);
CREATE INDEX chunk_embeddings_model ON chunk_embeddings (tenant_id, model, model_version);

CREATE TABLE tags (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  project_id  uuid REFERENCES projects(id) ON DELETE CASCADE,
  name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  color       text,
  created_by  uuid REFERENCES users(id) ON DELETE SET NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  pg_version  bigint NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX tags_name ON tags (tenant_id, coalesce(project_id, '00000000-0000-0000-0000-000000000000'), lower(name));

CREATE TABLE content_tags (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id        uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  content_item_id  uuid NOT NULL REFERENCES content_items(id) ON DELETE CASCADE,
  tag_id           uuid NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
  created_by       uuid REFERENCES users(id) ON DELETE SET NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  pg_version       bigint NOT NULL DEFAULT 1,
  UNIQUE (content_item_id, tag_id)
);
CREATE INDEX content_tags_tag ON content_tags (tenant_id, tag_id);

-- INCLUDES (Thread -> ContentItem) with every property of the graph model.
CREATE TABLE thread_content (
  id                         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id                  uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  thread_id                  uuid NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
  content_item_id            uuid NOT NULL REFERENCES content_items(id) ON DELETE CASCADE,
  relevance_score            real CHECK (relevance_score BETWEEN 0 AND 1),
  position                   integer NOT NULL DEFAULT 0,
  is_pinned                  boolean NOT NULL DEFAULT false,
  inclusion_method           text NOT NULL DEFAULT 'manual'
                             CHECK (inclusion_method IN ('manual', 'auto', 'semantic', 'recommended')),
  token_budget               integer CHECK (token_budget > 0),
  added_at                   timestamptz NOT NULL DEFAULT now(),
  added_by                   uuid REFERENCES users(id) ON DELETE SET NULL,
  current_editor_id          uuid REFERENCES users(id) ON DELETE SET NULL,
  current_editor_session_id  uuid,
  editing_started_at         timestamptz,
  created_at                 timestamptz NOT NULL DEFAULT now(),
  updated_at                 timestamptz NOT NULL DEFAULT now(),
  pg_version                 bigint NOT NULL DEFAULT 1,
  UNIQUE (thread_id, content_item_id)
);
CREATE INDEX thread_content_item ON thread_content (tenant_id, content_item_id);

-- USED_CONTEXT (Message -> ContentItem): what a call's context window held.
CREATE TABLE message_context (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id        uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  message_id       uuid NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
  content_item_id  uuid NOT NULL REFERENCES content_items(id) ON DELETE CASCADE,
  relevance_score  real,
  tokens_used      integer NOT NULL DEFAULT 0 CHECK (tokens_used >= 0),
  position         integer NOT NULL DEFAULT 0,
  chunk_ids        uuid[] NOT NULL DEFAULT '{}',
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  pg_version       bigint NOT NULL DEFAULT 1,
  UNIQUE (message_id, content_item_id)
);
CREATE INDEX message_context_item ON message_context (tenant_id, content_item_id);
