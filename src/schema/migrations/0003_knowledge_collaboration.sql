-- Knowledge graph tables and real-time collaboration.

CREATE TABLE knowledge_nodes (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id    uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  project_id   uuid REFERENCES projects(id) ON DELETE CASCADE,
  name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 500),
  node_type    text NOT NULL DEFAULT 'concept',
  description  text NOT NULL DEFAULT '',
  properties   jsonb NOT NULL DEFAULT '{}',
  created_by   uuid REFERENCES users(id) ON DELETE SET NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  pg_version   bigint NOT NULL DEFAULT 1
);
CREATE INDEX knowledge_nodes_project ON knowledge_nodes (tenant_id, project_id);
CREATE INDEX knowledge_nodes_name ON knowledge_nodes (tenant_id, lower(name));

-- CONNECTED_TO (KnowledgeNode -> KnowledgeNode)
CREATE TABLE knowledge_edges (
  id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id          uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  source_node_id     uuid NOT NULL REFERENCES knowledge_nodes(id) ON DELETE CASCADE,
  target_node_id     uuid NOT NULL REFERENCES knowledge_nodes(id) ON DELETE CASCADE,
  relationship_type  text NOT NULL DEFAULT 'related-to',
  strength           real,
  description        text,
  properties         jsonb NOT NULL DEFAULT '{}',
  created_by         text,                   -- user id or process name
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  pg_version         bigint NOT NULL DEFAULT 1
);
CREATE INDEX knowledge_edges_source ON knowledge_edges (tenant_id, source_node_id);
CREATE INDEX knowledge_edges_target ON knowledge_edges (tenant_id, target_node_id);

-- RELATES_TO (ContentItem -> KnowledgeNode)
CREATE TABLE content_knowledge (
  id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id          uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  content_item_id    uuid NOT NULL REFERENCES content_items(id) ON DELETE CASCADE,
  knowledge_node_id  uuid NOT NULL REFERENCES knowledge_nodes(id) ON DELETE CASCADE,
  relationship_type  text NOT NULL DEFAULT 'mentions',
  confidence         real CHECK (confidence BETWEEN 0 AND 1),
  created_by         text,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  pg_version         bigint NOT NULL DEFAULT 1,
  UNIQUE (content_item_id, knowledge_node_id, relationship_type)
);
CREATE INDEX content_knowledge_node ON content_knowledge (tenant_id, knowledge_node_id);

CREATE TABLE knowledge_graph_configurations (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id      uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  project_id     uuid REFERENCES projects(id) ON DELETE CASCADE,
  name           text NOT NULL DEFAULT 'default',
  configuration  jsonb NOT NULL DEFAULT '{}',
  is_active      boolean NOT NULL DEFAULT true,
  created_by     uuid REFERENCES users(id) ON DELETE SET NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  pg_version     bigint NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX kg_config_active ON knowledge_graph_configurations
  (tenant_id, coalesce(project_id, '00000000-0000-0000-0000-000000000000')) WHERE is_active;

-- Every accepted Yjs update, in arrival order (seq). Append-only.
CREATE TABLE operations_log (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  seq            bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  tenant_id      uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  document_id    uuid NOT NULL REFERENCES content_items(id) ON DELETE CASCADE,
  client_id      bigint NOT NULL,            -- Yjs client id
  clock          bigint NOT NULL,            -- first clock of the update for that client
  update         bytea NOT NULL,
  user_id        uuid REFERENCES users(id) ON DELETE SET NULL,
  session_id     uuid REFERENCES user_sessions(id) ON DELETE SET NULL,
  depends_on_id  uuid REFERENCES operations_log(id) ON DELETE SET NULL,  -- DEPENDS_ON
  created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX operations_log_doc ON operations_log (document_id, seq);

CREATE TABLE resource_presence (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id       uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  user_id         uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  session_id      uuid REFERENCES user_sessions(id) ON DELETE CASCADE,
  resource_type   text NOT NULL CHECK (resource_type IN ('content_item', 'thread', 'project', 'view')),
  resource_id     uuid NOT NULL,
  status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'idle', 'away')),
  client_info     jsonb NOT NULL DEFAULT '{}',
  last_active_at  timestamptz NOT NULL DEFAULT now(),
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  pg_version      bigint NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX resource_presence_unique ON resource_presence
  (resource_type, resource_id, user_id, coalesce(session_id, '00000000-0000-0000-0000-000000000000'));
CREATE INDEX resource_presence_resource ON resource_presence (tenant_id, resource_type, resource_id);

CREATE TABLE collaborative_selections (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id       uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  document_id     uuid NOT NULL REFERENCES content_items(id) ON DELETE CASCADE,
  user_id         uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  session_id      uuid REFERENCES user_sessions(id) ON DELETE CASCADE,
  anchor          jsonb,                     -- Yjs relative positions
  head            jsonb,
  selection_data  jsonb NOT NULL DEFAULT '{}',
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  pg_version      bigint NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX collaborative_selections_unique ON collaborative_selections
  (document_id, user_id, coalesce(session_id, '00000000-0000-0000-0000-000000000000'));

CREATE TABLE realtime_annotations (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id      uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  document_id    uuid NOT NULL REFERENCES content_items(id) ON DELETE CASCADE,
  parent_id      uuid REFERENCES realtime_annotations(id) ON DELETE CASCADE,   -- HAS_REPLY
  chunk_id       uuid REFERENCES content_chunks(id) ON DELETE SET NULL,
  start_offset   integer,
  end_offset     integer,
  position_data  jsonb NOT NULL DEFAULT '{}',
  body           text NOT NULL CHECK (length(body) <= 20000),
  author_id      uuid REFERENCES users(id) ON DELETE SET NULL,
  resolved       boolean NOT NULL DEFAULT false,
  resolved_at    timestamptz,
  resolved_by    uuid REFERENCES users(id) ON DELETE SET NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  pg_version     bigint NOT NULL DEFAULT 1,
  CHECK (end_offset IS NULL OR start_offset IS NULL OR end_offset >= start_offset)
);
CREATE INDEX realtime_annotations_doc ON realtime_annotations (tenant_id, document_id);

CREATE TYPE lock_granularity AS ENUM ('document', 'paragraph', 'section', 'other');

CREATE TABLE resource_locks (
  id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id          uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  resource_type      text NOT NULL,
  resource_id        uuid NOT NULL,
  holder_user_id     uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  holder_session_id  uuid REFERENCES user_sessions(id) ON DELETE CASCADE,
  granularity        lock_granularity NOT NULL DEFAULT 'document',
  context            jsonb NOT NULL DEFAULT '{}',   -- e.g. {"section": "...", "start": 0, "end": 120}
  acquired_at        timestamptz NOT NULL DEFAULT now(),
  expires_at         timestamptz NOT NULL,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  pg_version         bigint NOT NULL DEFAULT 1
);
CREATE INDEX resource_locks_resource ON resource_locks (tenant_id, resource_type, resource_id, expires_at);

CREATE TABLE collaborative_views (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  project_id  uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  view_type   text NOT NULL DEFAULT 'graph',
  state       jsonb NOT NULL DEFAULT '{}',
  created_by  uuid REFERENCES users(id) ON DELETE SET NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  pg_version  bigint NOT NULL DEFAULT 1
);
CREATE INDEX collaborative_views_project ON collaborative_views (tenant_id, project_id);

-- VIEWING (UserSession -> CollaborativeView)
CREATE TABLE view_participants (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id        uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  view_id          uuid NOT NULL REFERENCES collaborative_views(id) ON DELETE CASCADE,
  user_id          uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  session_id       uuid REFERENCES user_sessions(id) ON DELETE CASCADE,
  view_position    jsonb NOT NULL DEFAULT '{}',
  camera           jsonb NOT NULL DEFAULT '{}',
  zoom             real NOT NULL DEFAULT 1.0,
  last_updated_at  timestamptz NOT NULL DEFAULT now(),
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  pg_version       bigint NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX view_participants_unique ON view_participants
  (view_id, user_id, coalesce(session_id, '00000000-0000-0000-0000-000000000000'));
