#include "domain/resources.h"

namespace cnx::domain {
namespace {

// Small builders keep the table readable.
Field F(std::string json, std::string column, FieldType type) {
  Field f;
  f.json = std::move(json);
  f.column = std::move(column);
  f.type = type;
  return f;
}
Field Text(std::string json, std::string column, size_t max_length, bool create, bool update, bool required = false) {
  Field f = F(std::move(json), std::move(column), FieldType::kText);
  f.max_length = max_length;
  f.create = create;
  f.update = update;
  f.required = required;
  return f;
}
Field Opt(Field f) {
  f.nullable = true;
  return f;
}
Field Enum(std::string json, std::string column, std::vector<std::string> values, bool create, bool update,
           bool required = false) {
  Field f = Text(std::move(json), std::move(column), 40, create, update, required);
  f.enum_values = std::move(values);
  return f;
}
Field Ref(std::string json, std::string column, std::string ref, bool create, bool update, bool required = false) {
  Field f = F(std::move(json), std::move(column), FieldType::kUuid);
  f.ref = std::move(ref);
  f.create = create;
  f.update = update;
  f.required = required;
  return f;
}
Field Int(std::string json, std::string column, bool create, bool update, double min = -2147483648.0,
          double max = 2147483647.0) {
  Field f = F(std::move(json), std::move(column), FieldType::kInt);
  f.create = create;
  f.update = update;
  f.min = min;
  f.max = max;
  return f;
}
Field Real(std::string json, std::string column, bool create, bool update, double min, double max) {
  Field f = F(std::move(json), std::move(column), FieldType::kReal);
  f.create = create;
  f.update = update;
  f.min = min;
  f.max = max;
  return f;
}
Field Bool(std::string json, std::string column, bool create, bool update) {
  Field f = F(std::move(json), std::move(column), FieldType::kBool);
  f.create = create;
  f.update = update;
  return f;
}
Field Json(std::string json, std::string column, bool create, bool update) {
  Field f = F(std::move(json), std::move(column), FieldType::kJson);
  f.create = create;
  f.update = update;
  return f;
}
Field ReadOnly(std::string json, std::string column, FieldType type) {
  return F(std::move(json), std::move(column), type);
}
Field ByPrincipal(std::string json, std::string column, bool as_text = false) {
  Field f = F(std::move(json), std::move(column), as_text ? FieldType::kText : FieldType::kUuid);
  f.auto_value = as_text ? Auto::kPrincipalUserText : Auto::kPrincipalUser;
  f.nullable = true;
  return f;
}

std::vector<ResourceSpec> Build() {
  std::vector<ResourceSpec> s;
  auto add = [&](ResourceSpec r) { s.push_back(std::move(r)); };

  {
    ResourceSpec r;
    r.name = "user";
    r.path = "users";
    r.table = "users";
    r.schema_name = "User";
    r.top_level_create = true;
    r.top_level_list = true;
    r.description = "A user of the tenant. Tenant owners and admins manage users.";
    Field email = Text("email", "email", 320, true, false, true);
    Field password = F("password", "password_hash", FieldType::kPassword);
    password.create = password.update = true;
    password.read = false;
    password.max_length = 1024;
    password.description = "write-only; at least 8 characters";
    r.fields = {email,
                Text("displayName", "display_name", 200, true, true),
                Enum("role", "role", {"owner", "admin", "member"}, true, true),
                Bool("isActive", "is_active", false, true),
                password,
                ReadOnly("lastLoginAt", "last_login_at", FieldType::kTimestamp)};
    add(r);
  }
  {
    ResourceSpec r;
    r.name = "program";
    r.path = "programs";
    r.table = "programs";
    r.schema_name = "Program";
    r.top_level_create = true;
    r.top_level_list = true;
    r.description = "A group of projects.";
    r.fields = {Text("name", "name", 200, true, true, true), Text("description", "description", 10000, true, true),
                Json("metadata", "metadata", true, true), ByPrincipal("createdBy", "created_by")};
    add(r);
  }
  {
    ResourceSpec r;
    r.name = "project";
    r.path = "projects";
    r.table = "projects";
    r.schema_name = "Project";
    r.parent = "program";
    r.parent_column = "program_id";
    r.nested = "projects";
    r.top_level_create = true;
    r.top_level_list = true;
    r.project_expr = "r.id";
    r.write_role = Role::kAdmin;
    r.description = "A project; its members' roles decide who reads and writes what is inside it.";
    r.fields = {Ref("programId", "program_id", "program", true, false, true),
                Text("name", "name", 200, true, true, true), Text("description", "description", 10000, true, true),
                Json("metadata", "metadata", true, true), ByPrincipal("createdBy", "created_by")};
    add(r);
  }
  {
    ResourceSpec r;
    r.name = "member";
    r.path = "project-members";
    r.table = "project_members";
    r.schema_name = "ProjectMember";
    r.parent = "project";
    r.parent_column = "project_id";
    r.nested = "members";
    r.project_expr = "r.project_id";
    r.write_role = Role::kAdmin;
    r.description = "A user's role in a project: viewer reads, editor writes, admin manages members.";
    r.fields = {Ref("projectId", "project_id", "project", true, false, true),
                Ref("userId", "user_id", "user", true, false, true),
                Enum("role", "role", {"viewer", "editor", "admin"}, true, true, true),
                ReadOnly("addedAt", "added_at", FieldType::kTimestamp), ByPrincipal("addedBy", "added_by")};
    add(r);
  }
  {
    ResourceSpec r;
    r.name = "thread";
    r.path = "threads";
    r.table = "threads";
    r.schema_name = "Thread";
    r.parent = "project";
    r.parent_column = "project_id";
    r.nested = "threads";
    r.project_expr = "r.project_id";
    r.description = "A conversation; threads nest with a relationship type and a position.";
    r.fields = {Ref("projectId", "project_id", "project", true, false, true),
                Opt(Ref("parentThreadId", "parent_thread_id", "thread", true, true)),
                Opt(Enum("relationshipType", "relationship_type",
                         {"contains", "branches_from", "continues", "references"}, true, true)),
                Int("position", "position", true, true),
                Text("title", "title", 500, true, true),
                Opt(Text("summary", "summary", 20000, true, true)),
                Json("metadata", "metadata", true, true),
                ByPrincipal("createdBy", "created_by")};
    add(r);
  }
  {
    ResourceSpec r;
    r.name = "message";
    r.path = "messages";
    r.table = "messages";
    r.schema_name = "Message";
    r.parent = "thread";
    r.parent_column = "thread_id";
    r.nested = "messages";
    r.project_expr = "(SELECT t.project_id FROM threads t WHERE t.id = r.thread_id)";
    r.description = "A message of a thread; replies form a tree. tokenCount is computed by the server.";
    r.fields = {
        Ref("threadId", "thread_id", "thread", true, false, true),
        Opt(Ref("parentMessageId", "parent_message_id", "message", true, false)),
        Opt(Enum("replyType", "reply_type", {"response", "alternative", "clarification", "followup"}, true, true)),
        Int("position", "position", true, true),
        Enum("role", "role", {"system", "user", "assistant", "tool"}, true, false, true),
        Text("content", "content", 512 * 1024, true, true, true),
        Opt(Text("model", "model", 200, true, true)),
        ReadOnly("tokenCount", "token_count", FieldType::kInt),
        Json("metadata", "metadata", true, true),
        ByPrincipal("createdBy", "created_by")};
    add(r);
  }
  {
    ResourceSpec r;
    r.name = "content item";
    r.path = "content";
    r.table = "content_items";
    r.schema_name = "ContentItem";
    r.parent = "project";
    r.parent_column = "project_id";
    r.nested = "content";
    r.project_expr = "r.project_id";
    r.description =
        "A document. A text `body` (create or PATCH) becomes a new content version and its chunks; the body is "
        "write-only here (read it through the collaboration API).";
    Field body = Text("body", "", 4 * 1024 * 1024, true, true);
    body.read = false;
    body.description = "write-only text; each write makes a version and re-chunks the content";
    r.fields = {Ref("projectId", "project_id", "project", true, false, true),
                Text("title", "title", 500, true, true, true),
                Text("contentType", "content_type", 200, true, true, true),
                Opt(Text("sourceUrl", "source_url", 2048, true, true)),
                Json("metadata", "metadata", true, true),
                ReadOnly("currentVersionId", "current_version_id", FieldType::kUuid),
                body,
                ByPrincipal("createdBy", "created_by")};
    add(r);
  }
  {
    ResourceSpec r;
    r.name = "content version";
    r.path = "content-versions";
    r.table = "content_versions";
    r.schema_name = "ContentVersion";
    r.parent = "content item";
    r.parent_column = "content_item_id";
    r.nested = "versions";
    r.project_expr = "(SELECT c.project_id FROM content_items c WHERE c.id = r.content_item_id)";
    r.versioned = false;
    r.can_create = r.can_update = r.can_delete = false;
    r.description = "An immutable version of a content item's text.";
    r.fields = {ReadOnly("contentItemId", "content_item_id", FieldType::kUuid),
                ReadOnly("versionNumber", "version_number", FieldType::kInt),
                ReadOnly("contentHash", "content_hash", FieldType::kText),
                ReadOnly("byteSize", "byte_size", FieldType::kInt),
                ReadOnly("tokenCount", "token_count", FieldType::kInt),
                ReadOnly("changeSummary", "change_summary", FieldType::kText),
                ReadOnly("createdBy", "created_by", FieldType::kUuid)};
    add(r);
  }
  {
    ResourceSpec r;
    r.name = "chunk";
    r.path = "chunks";
    r.table = "content_chunks";
    r.schema_name = "ContentChunk";
    r.parent = "content item";
    r.parent_column = "content_item_id";
    r.nested = "chunks";
    r.project_expr = "(SELECT c.project_id FROM content_items c WHERE c.id = r.content_item_id)";
    r.can_create = r.can_update = r.can_delete = false;
    r.description = "A chunk of a content item's current text, as embedded and searched.";
    r.fields = {ReadOnly("contentItemId", "content_item_id", FieldType::kUuid),
                ReadOnly("versionId", "version_id", FieldType::kUuid),
                ReadOnly("chunkIndex", "chunk_index", FieldType::kInt),
                ReadOnly("content", "content", FieldType::kText),
                ReadOnly("tokenCount", "token_count", FieldType::kInt),
                ReadOnly("startOffset", "start_offset", FieldType::kInt),
                ReadOnly("endOffset", "end_offset", FieldType::kInt),
                ReadOnly("contentHash", "content_hash", FieldType::kText)};
    add(r);
  }
  {
    ResourceSpec r;
    r.tenant_admin_writes = false;
    r.name = "tag";
    r.path = "tags";
    r.table = "tags";
    r.schema_name = "Tag";
    r.parent = "project";
    r.parent_column = "project_id";
    r.nested = "tags";
    r.top_level_create = true;
    r.top_level_list = true;
    r.project_expr = "r.project_id";
    r.description = "A label for content; without a project it is shared by the tenant.";
    Field color = Opt(Text("color", "color", 32, true, true));
    r.fields = {Opt(Ref("projectId", "project_id", "project", true, false)),
                Text("name", "name", 100, true, true, true), color, ByPrincipal("createdBy", "created_by")};
    add(r);
  }
  {
    ResourceSpec r;
    r.name = "content tag";
    r.path = "content-tags";
    r.table = "content_tags";
    r.schema_name = "ContentTag";
    r.parent = "content item";
    r.parent_column = "content_item_id";
    r.nested = "tags";
    r.project_expr = "(SELECT c.project_id FROM content_items c WHERE c.id = r.content_item_id)";
    r.can_update = false;
    r.description = "A tag on a content item (TAGGED_WITH).";
    r.fields = {Ref("contentItemId", "content_item_id", "content item", true, false, true),
                Ref("tagId", "tag_id", "tag", true, false, true), ByPrincipal("createdBy", "created_by")};
    add(r);
  }
  {
    ResourceSpec r;
    r.name = "thread content";
    r.path = "thread-content";
    r.table = "thread_content";
    r.schema_name = "ThreadContent";
    r.parent = "thread";
    r.parent_column = "thread_id";
    r.nested = "content";
    r.project_expr = "(SELECT t.project_id FROM threads t WHERE t.id = r.thread_id)";
    r.description = "Content included in a thread's context (INCLUDES): pin, reorder, relevance, token budget.";
    Field budget = Opt(Int("tokenBudget", "token_budget", true, true, 1));
    r.fields = {Ref("threadId", "thread_id", "thread", true, false, true),
                Ref("contentItemId", "content_item_id", "content item", true, false, true),
                Opt(Real("relevanceScore", "relevance_score", true, true, 0, 1)),
                Int("position", "position", true, true),
                Bool("isPinned", "is_pinned", true, true),
                Enum("inclusionMethod", "inclusion_method", {"manual", "auto", "semantic", "recommended"}, true, true),
                budget,
                ReadOnly("addedAt", "added_at", FieldType::kTimestamp),
                ByPrincipal("addedBy", "added_by")};
    add(r);
  }
  {
    ResourceSpec r;
    r.name = "message context";
    r.path = "message-context";
    r.table = "message_context";
    r.schema_name = "MessageContext";
    r.parent = "message";
    r.parent_column = "message_id";
    r.nested = "context";
    r.project_expr =
        "(SELECT t.project_id FROM messages m JOIN threads t ON t.id = m.thread_id WHERE m.id = r.message_id)";
    r.description = "What a message's context window held (USED_CONTEXT).";
    Field chunks = F("chunkIds", "chunk_ids", FieldType::kUuidArray);
    chunks.create = chunks.update = true;
    r.fields = {Ref("messageId", "message_id", "message", true, false, true),
                Ref("contentItemId", "content_item_id", "content item", true, false, true),
                Opt(Real("relevanceScore", "relevance_score", true, true, -1e9, 1e9)),
                Int("tokensUsed", "tokens_used", true, true, 0),
                Int("position", "position", true, true),
                chunks};
    add(r);
  }
  {
    ResourceSpec r;
    r.tenant_admin_writes = false;
    r.name = "knowledge node";
    r.path = "knowledge-nodes";
    r.table = "knowledge_nodes";
    r.schema_name = "KnowledgeNode";
    r.parent = "project";
    r.parent_column = "project_id";
    r.nested = "knowledge-nodes";
    r.top_level_create = true;
    r.top_level_list = true;
    r.project_expr = "r.project_id";
    r.description = "A concept of the knowledge graph.";
    r.fields = {Opt(Ref("projectId", "project_id", "project", true, false)),
                Text("name", "name", 500, true, true, true),
                Text("nodeType", "node_type", 100, true, true),
                Text("description", "description", 10000, true, true),
                Json("properties", "properties", true, true),
                ByPrincipal("createdBy", "created_by")};
    add(r);
  }
  {
    ResourceSpec r;
    r.name = "knowledge edge";
    r.path = "knowledge-edges";
    r.table = "knowledge_edges";
    r.schema_name = "KnowledgeEdge";
    r.parent = "knowledge node";
    r.parent_column = "source_node_id";
    r.nested = "edges";
    r.project_expr = "(SELECT n.project_id FROM knowledge_nodes n WHERE n.id = r.source_node_id)";
    r.description = "A relationship between two knowledge nodes (CONNECTED_TO).";
    r.fields = {Ref("sourceNodeId", "source_node_id", "knowledge node", true, false, true),
                Ref("targetNodeId", "target_node_id", "knowledge node", true, false, true),
                Text("relationshipType", "relationship_type", 100, true, true),
                Opt(Real("strength", "strength", true, true, 0, 1)),
                Opt(Text("description", "description", 10000, true, true)),
                Json("properties", "properties", true, true),
                ByPrincipal("createdBy", "created_by", true)};
    add(r);
  }
  {
    ResourceSpec r;
    r.name = "content knowledge link";
    r.path = "content-knowledge";
    r.table = "content_knowledge";
    r.schema_name = "ContentKnowledge";
    r.parent = "content item";
    r.parent_column = "content_item_id";
    r.nested = "knowledge";
    r.project_expr = "(SELECT c.project_id FROM content_items c WHERE c.id = r.content_item_id)";
    r.description = "A content item related to a knowledge node (RELATES_TO).";
    r.fields = {Ref("contentItemId", "content_item_id", "content item", true, false, true),
                Ref("knowledgeNodeId", "knowledge_node_id", "knowledge node", true, false, true),
                Text("relationshipType", "relationship_type", 100, true, true),
                Opt(Real("confidence", "confidence", true, true, 0, 1)), ByPrincipal("createdBy", "created_by", true)};
    add(r);
  }
  {
    ResourceSpec r;
    r.name = "knowledge graph configuration";
    r.path = "knowledge-graph-configurations";
    r.table = "knowledge_graph_configurations";
    r.schema_name = "KnowledgeGraphConfiguration";
    r.parent = "project";
    r.parent_column = "project_id";
    r.nested = "knowledge-graph-configurations";
    r.top_level_create = true;
    r.top_level_list = true;
    r.project_expr = "r.project_id";
    r.write_role = Role::kAdmin;
    r.description =
        "How the knowledge graph is built for a project (or the tenant). `configuration` has the documented shape "
        "(KnowledgeGraphConfigurationBody); at most one active configuration per project.";
    Field config = Json("configuration", "configuration", true, true);
    config.description = "validated: see KnowledgeGraphConfigurationBody";
    r.fields = {Opt(Ref("projectId", "project_id", "project", true, false)), Text("name", "name", 200, true, true),
                config, Bool("isActive", "is_active", true, true), ByPrincipal("createdBy", "created_by")};
    add(r);
  }
  {
    ResourceSpec r;
    r.tenant_admin_writes = false;
    r.name = "token usage record";
    r.path = "token-usage";
    r.table = "token_usage";
    r.schema_name = "TokenUsage";
    r.parent = "project";
    r.parent_column = "project_id";
    r.nested = "token-usage";
    r.top_level_create = true;
    r.top_level_list = true;
    r.project_expr = "r.project_id";
    r.versioned = false;
    r.can_update = r.can_delete = false;
    r.description = "Tokens spent by one LLM call (immutable).";
    r.fields = {Opt(Ref("projectId", "project_id", "project", true, false)),
                Opt(Ref("threadId", "thread_id", "thread", true, false)),
                Opt(Ref("messageId", "message_id", "message", true, false)),
                Text("model", "model", 200, true, false, true),
                Enum("kind", "kind", {"completion", "context", "embedding"}, true, false),
                Int("promptTokens", "prompt_tokens", true, false, 0),
                Int("completionTokens", "completion_tokens", true, false, 0),
                ReadOnly("totalTokens", "total_tokens", FieldType::kInt),
                ByPrincipal("userId", "user_id")};
    add(r);
  }
  {
    ResourceSpec r;
    r.name = "annotation";
    r.path = "annotations";
    r.table = "realtime_annotations";
    r.schema_name = "Annotation";
    r.parent = "content item";
    r.parent_column = "document_id";
    r.nested = "annotations";
    r.project_expr = "(SELECT c.project_id FROM content_items c WHERE c.id = r.document_id)";
    r.description = "A comment anchored in a document; replies name their parent (HAS_REPLY).";
    r.fields = {Ref("documentId", "document_id", "content item", true, false, true),
                Opt(Ref("parentId", "parent_id", "annotation", true, false)),
                Opt(Ref("chunkId", "chunk_id", "chunk", true, true)),
                Opt(Int("startOffset", "start_offset", true, true, 0)),
                Opt(Int("endOffset", "end_offset", true, true, 0)),
                Json("positionData", "position_data", true, true),
                Text("body", "body", 20000, true, true, true),
                Bool("resolved", "resolved", true, true),
                ReadOnly("resolvedAt", "resolved_at", FieldType::kTimestamp),
                ReadOnly("resolvedBy", "resolved_by", FieldType::kUuid),
                ByPrincipal("authorId", "author_id")};
    add(r);
  }
  {
    ResourceSpec r;
    r.name = "collaborative view";
    r.path = "views";
    r.table = "collaborative_views";
    r.schema_name = "CollaborativeView";
    r.parent = "project";
    r.parent_column = "project_id";
    r.nested = "views";
    r.project_expr = "r.project_id";
    r.description = "A shared view (graph, board) of a project.";
    r.fields = {Ref("projectId", "project_id", "project", true, false, true),
                Text("name", "name", 200, true, true, true), Text("viewType", "view_type", 100, true, true),
                Json("state", "state", true, true), ByPrincipal("createdBy", "created_by")};
    add(r);
  }
  {
    ResourceSpec r;
    r.name = "lock";
    r.path = "locks";
    r.table = "resource_locks";
    r.schema_name = "ResourceLock";
    r.top_level_list = true;
    r.project_expr =
        "(CASE r.resource_type WHEN 'project' THEN r.resource_id "
        "WHEN 'thread' THEN (SELECT t.project_id FROM threads t WHERE t.id = r.resource_id) "
        "WHEN 'content_item' THEN (SELECT c.project_id FROM content_items c WHERE c.id = r.resource_id) END)";
    r.can_create = false;  // acquire: POST /v1/locks (hand-written: conflict detection)
    r.can_update = false;  // renew: POST /v1/locks/{id}/renew
    r.description =
        "An advisory editing lock on a project, thread or content item. Acquire with POST /v1/locks (409 names the "
        "holder of a conflicting lock), renew with POST /v1/locks/{id}/renew, release with DELETE.";
    Field type = Enum("resourceType", "resource_type", {"project", "thread", "content_item"}, true, false, true);
    Field rid = F("resourceId", "resource_id", FieldType::kUuid);
    rid.create = rid.required = true;
    Field gran = Enum("granularity", "granularity", {"document", "paragraph", "section", "other"}, true, false);
    Field ttl = Int("ttlSeconds", "", true, false, 1, 3600);
    ttl.read = false;
    ttl.description = "lifetime of the lock (default 300 s)";
    r.fields = {type,
                rid,
                ReadOnly("holderUserId", "holder_user_id", FieldType::kUuid),
                ReadOnly("holderSessionId", "holder_session_id", FieldType::kUuid),
                gran,
                Json("context", "context", true, false),
                ttl,
                ReadOnly("acquiredAt", "acquired_at", FieldType::kTimestamp),
                ReadOnly("expiresAt", "expires_at", FieldType::kTimestamp)};
    add(r);
  }
  return s;
}

}  // namespace

const std::vector<ResourceSpec>& Resources() {
  static const std::vector<ResourceSpec> kSpecs = Build();
  return kSpecs;
}

const ResourceSpec* FindResource(std::string_view name) {
  for (const auto& r : Resources()) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

}  // namespace cnx::domain
