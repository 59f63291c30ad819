#include "sync/graph_projection.h"

#include <algorithm>
#include <iterator>
#include <set>

namespace cnx::sync {

namespace {

using J = nlohmann::json;

// Endpoint shorthands.
EndpointSpec Self() {
  return {nullptr, nullptr, nullptr};
}
EndpointSpec Ref(const char* label, const char* column) {
  return {label, column, nullptr};
}

const std::vector<TableProjection> kProjection = {
    {"tenants", "Tenant", {{"name", "name"}, {"slug", "slug"}, {"created_at", "createdAt"}}, {}},
    {"users",
     "User",
     {{"display_name", "displayName"}, {"role", "role"}, {"is_active", "isActive"}, {"created_at", "createdAt"}},
     {{"HAS_USER", Ref("Tenant", "tenant_id"), Self(), {}}}},
    {"user_sessions",
     "UserSession",
     {{"expires_at", "expiresAt"}, {"revoked_at", "revokedAt"}, {"created_at", "createdAt"}},
     {{"HAS_SESSION", Ref("User", "user_id"), Self(), {}}}},
    {"programs",
     "Program",
     {{"name", "name"}, {"description", "description"}, {"created_at", "createdAt"}},
     {{"HAS_PROGRAM", Ref("Tenant", "tenant_id"), Self(), {}}}},
    {"projects",
     "Project",
     {{"name", "name"}, {"description", "description"}, {"created_at", "createdAt"}},
     {{"HAS_PROJECT", Ref("Program", "program_id"), Self(), {}}}},
    {"project_members",
     nullptr,
     {},
     {{"HAS_MEMBER",
       Ref("Project", "project_id"),
       Ref("User", "user_id"),
       {{"role", "role"}, {"added_at", "addedAt"}, {"added_by", "addedBy"}}}},
     true},
    {"threads",
     "Thread",
     {{"title", "title"}, {"created_at", "createdAt"}},
     {{"HAS_THREAD", Ref("Project", "project_id"), Self(), {}},
      {"PARENT_OF",
       Ref("Thread", "parent_thread_id"),
       Self(),
       {{"relationship_type", "relationshipType"}, {"position", "position"}, {"created_at", "createdAt"}}}}},
    {"messages",
     "Message",
     {{"role", "role"}, {"model", "model"}, {"token_count", "tokenCount"}, {"created_at", "createdAt"}},
     {{"CONTAINS_MESSAGE", Ref("Thread", "thread_id"), Self(), {}},
      {"REPLIED_WITH",
       Ref("Message", "parent_message_id"),
       Self(),
       {{"reply_type", "replyType"}, {"position", "position"}, {"created_at", "createdAt"}}}}},
    {"content_items",
     "ContentItem",
     {{"title", "title"}, {"content_type", "contentType"}, {"source_url", "sourceUrl"}, {"created_at", "createdAt"}},
     {{"HAS_CONTENT", Ref("Project", "project_id"), Self(), {}}}},
    {"content_chunks",
     "ContentChunk",
     {{"chunk_index", "chunkIndex"},
      {"token_count", "tokenCount"},
      {"start_offset", "startOffset"},
      {"end_offset", "endOffset"},
      {"content_hash", "contentHash"}},
     {{"HAS_CHUNK", Ref("ContentItem", "content_item_id"), Self(), {}}}},
    {"tags", "Tag", {{"name", "name"}, {"color", "color"}}, {}},
    {"content_tags",
     nullptr,
     {},
     {{"TAGGED_WITH",
       Ref("ContentItem", "content_item_id"),
       Ref("Tag", "tag_id"),
       {{"created_at", "createdAt"}, {"created_by", "createdBy"}}}},
     true},
    {"thread_content",
     nullptr,
     {},
     {{"INCLUDES",
       Ref("Thread", "thread_id"),
       Ref("ContentItem", "content_item_id"),
       {{"relevance_score", "relevanceScore"},
        {"position", "position"},
        {"is_pinned", "isPinned"},
        {"inclusion_method", "inclusionMethod"},
        {"token_budget", "tokenBudget"},
        {"added_at", "addedAt"},
        {"added_by", "addedBy"},
        {"current_editor_id", "currentEditorId"},
        {"current_editor_session_id", "currentEditorSessionId"},
        {"editing_started_at", "editingStartedAt"}}}},
     true},
    {"message_context",
     nullptr,
     {},
     {{"USED_CONTEXT",
       Ref("Message", "message_id"),
       Ref("ContentItem", "content_item_id"),
       {{"relevance_score", "relevanceScore"},
        {"tokens_used", "tokensUsed"},
        {"position", "position"},
        {"chunk_ids", "chunkIds"}}}},
     true},
    {"knowledge_nodes",
     "KnowledgeNode",
     {{"name", "name"}, {"node_type", "nodeType"}, {"description", "description"}, {"created_at", "createdAt"}},
     {}},
    {"knowledge_edges",
     nullptr,
     {},
     {{"CONNECTED_TO",
       Ref("KnowledgeNode", "source_node_id"),
       Ref("KnowledgeNode", "target_node_id"),
       {{"relationship_type", "relationshipType"},
        {"strength", "strength"},
        {"description", "description"},
        {"created_at", "createdAt"},
        {"created_by", "createdBy"}}}},
     true},
    {"content_knowledge",
     nullptr,
     {},
     {{"RELATES_TO",
       Ref("ContentItem", "content_item_id"),
       Ref("KnowledgeNode", "knowledge_node_id"),
       {{"relationship_type", "relationshipType"},
        {"confidence", "confidence"},
        {"created_at", "createdAt"},
        {"created_by", "createdBy"}}}},
     true},
    {"operations_log",
     "Operation",
     {{"client_id", "clientId"}, {"clock", "clock"}, {"seq", "seq"}, {"created_at", "createdAt"}},
     {{"AFFECTS", Self(), Ref("ContentItem", "document_id"), {}},
      {"PERFORMED", Ref("User", "user_id"), Self(), {}},
      {"DEPENDS_ON", Self(), Ref("Operation", "depends_on_id"), {}}}},
    {"resource_presence",
     "Presence",
     {{"status", "status"}, {"resource_type", "resourceType"}, {"last_active_at", "lastActiveAt"}},
     {{"PRESENT_IN", Self(), {nullptr, "resource_id", "resource_type"}, {}},
      {"HAS_PRESENCE", Ref("UserSession", "session_id"), Self(), {}}}},
    {"realtime_annotations",
     "Annotation",
     {{"resolved", "resolved"},
      {"start_offset", "startOffset"},
      {"end_offset", "endOffset"},
      {"created_at", "createdAt"}},
     {{"ANNOTATES", Self(), Ref("ContentItem", "document_id"), {}},
      {"HAS_REPLY", Ref("Annotation", "parent_id"), Self(), {}}}},
    {"collaborative_views",
     "CollaborativeView",
     {{"name", "name"}, {"view_type", "viewType"}, {"created_at", "createdAt"}},
     {{"HAS_VIEW", Ref("Project", "project_id"), Self(), {}}}},
    {"view_participants",
     nullptr,
     {},
     {{"VIEWING",
       Ref("UserSession", "session_id"),
       Ref("CollaborativeView", "view_id"),
       {{"view_position", "viewPosition"},
        {"camera", "camera"},
        {"zoom", "zoom"},
        {"last_updated_at", "lastUpdatedAt"}}}},
     true},
};

// resource_presence.resource_type -> label
const char* ResourceLabel(std::string_view type) {
  if (type == "content_item") return "ContentItem";
  if (type == "thread") return "Thread";
  if (type == "project") return "Project";
  if (type == "view") return "CollaborativeView";
  return nullptr;
}

Error Bad(const Change& c, std::string msg) {
  return Error(Module::kSync, ErrorCode::kInvalidArgument, c.table + " " + c.id + ": " + msg);
}

Result<graph::Map> Properties(const Change& c, const J& row, const std::vector<PropertySpec>& specs,
                              const std::set<std::string>* keep = nullptr) {
  graph::Map m;
  for (const auto& p : specs) {
    if (keep != nullptr && !keep->contains(p.property)) continue;
    auto it = row.find(p.column);
    if (it == row.end() || it->is_null()) continue;  // absent properties are not stored
    auto v = graph::FromJson(*it);
    if (!v) return std::unexpected(Bad(c, std::string("column ") + p.column + ": " + v.error().message()));
    m.push_back({p.property, std::move(*v)});
  }
  return m;
}

// The id and label of an endpoint, or nullopt when its column is NULL.
Result<std::optional<std::pair<std::string, std::string>>> Endpoint(const Change& c, const TableProjection& t,
                                                                    const J& row, const EndpointSpec& e) {
  using Out = std::optional<std::pair<std::string, std::string>>;
  if (e.column == nullptr) return Out(std::pair{std::string(t.label), c.id});
  auto it = row.find(e.column);
  if (it == row.end()) return std::unexpected(Bad(c, std::string("missing column ") + e.column));
  if (it->is_null()) return Out();
  if (!it->is_string()) return std::unexpected(Bad(c, std::string("column ") + e.column + " is not an id"));
  const char* label = e.label;
  if (label == nullptr) {
    auto lt = row.find(e.label_column);
    if (lt == row.end() || !lt->is_string()) return std::unexpected(Bad(c, "missing endpoint type"));
    label = ResourceLabel(lt->get<std::string>());
    if (label == nullptr) return Out();  // a resource kind the graph does not model
  }
  return Out(std::pair{std::string(label), it->get<std::string>()});
}

}  // namespace

const std::vector<TableProjection>& GraphProjection() {
  return kProjection;
}

const TableProjection* FindProjection(std::string_view table) {
  for (const auto& t : kProjection) {
    if (table == t.table) return &t;
  }
  return nullptr;
}

std::vector<std::string> ProjectedLabels() {
  std::set<std::string> labels;
  for (const auto& t : kProjection) {
    if (t.label) labels.insert(t.label);
  }
  return {labels.begin(), labels.end()};
}

const std::set<std::string, std::less<>>& ProjectedColumns() {
  static const auto* columns = [] {
    // Project look-ups, the vocabulary and temporal mode read these too.
    auto* s = new std::set<std::string, std::less<>>{"id",        "tenant_id",       "pg_version",        "project_id",
                                                     "thread_id", "content_item_id", "document_id",       "message_id",
                                                     "view_id",   "source_node_id",  "relationship_type", "created_at",
                                                     "added_at",  "valid_to",        "revoked_at",        "expires_at"};
    for (const auto& t : kProjection) {
      for (const auto& p : t.properties) s->insert(p.column);
      for (const auto& r : t.relationships) {
        for (const auto* e : {&r.from, &r.to}) {
          if (e->column) s->insert(e->column);
          if (e->label_column) s->insert(e->label_column);
        }
        for (const auto& p : r.properties) s->insert(p.column);
      }
    }
    return s;
  }();
  return *columns;
}

std::vector<std::string> ProjectedRelationshipTypes() {
  std::set<std::string> types;
  for (const auto& t : kProjection) {
    for (const auto& r : t.relationships) types.insert(r.type);
  }
  return {types.begin(), types.end()};
}

Result<std::vector<graph::Mutation>> MapChange(const Change& c, const ProjectionOptions& options) {
  std::vector<graph::Mutation> out;
  const TableProjection* t = FindProjection(c.table);
  if (t == nullptr) return out;
  if (c.IsBatch()) {
    // Each row as its own per-row event would have been mapped. One bad row
    // makes the whole event invalid (it is dead-lettered as one).
    out.reserve(c.rows.size() * (1 + t->relationships.size()));
    for (size_t i = 0; i < c.rows.size(); ++i) {
      auto one = BatchRow(c, i);
      if (!one) return std::unexpected(Bad(c, one.error().message()));
      auto m = MapChange(*one, options);
      if (!m) return std::unexpected(Bad(c, "row " + std::to_string(i) + " of the batch: " + m.error().message()));
      for (auto& mu : *m) {
        // The rows of an append are new: a relationship they do not have (a
        // NULL depends_on_id or user_id) has nothing to delete, and its delete
        // would only leave a tombstone per row in the store.
        if (c.op == Change::Op::kInsert && std::holds_alternative<graph::DeleteRelationship>(mu)) continue;
        out.push_back(std::move(mu));
      }
    }
    // Grouped by kind (nodes, then each relationship type), each group in
    // row order: a store that writes runs of one kind with one statement (the
    // Neo4j store's UNWIND) then writes a few statements per batch, not one
    // per row and relationship.
    auto group = [&](const graph::Mutation& mu) -> size_t {
      const char* type = nullptr;
      if (const auto* u = std::get_if<graph::UpsertRelationship>(&mu)) type = u->type.c_str();
      if (const auto* d = std::get_if<graph::DeleteRelationship>(&mu)) type = d->type.c_str();
      if (type == nullptr) return 0;
      for (size_t k = 0; k < t->relationships.size(); ++k) {
        if (std::string_view(t->relationships[k].type) == type) return 1 + 2 * k + mu.index() % 2;
      }
      return 1 + 2 * t->relationships.size();
    };
    std::stable_sort(out.begin(), out.end(),
                     [&](const graph::Mutation& a, const graph::Mutation& b) { return group(a) < group(b); });
    return out;
  }
  const J& row = c.Subject();
  auto rel_id = [&](const RelationshipSpec& r) { return t->row_is_relationship ? c.id : c.id + "/" + r.type; };

  if (c.op == Change::Op::kDelete) {
    // The deleted row still carries its last version; the delete comes after
    // it, so it must win over an upsert of that same version.
    uint64_t v = c.version + 1;
    if (t->label) {
      // Removing the node removes its relationships too.
      out.push_back(graph::DeleteNode{t->label, c.id, v});
    } else {
      for (const auto& r : t->relationships) out.push_back(graph::DeleteRelationship{r.type, rel_id(r), v});
    }
    return out;
  }

  auto keep = [&](const char* name) -> const std::set<std::string>* {
    auto it = options.properties.find(name);
    return it == options.properties.end() ? nullptr : &it->second;
  };
  if (t->label && options.Projects(t->label)) {
    graph::Map props = CNX_TRY(Properties(c, row, t->properties, keep(t->label)));
    props.push_back({"tenantId", graph::Value(c.tenant_id)});
    out.push_back(graph::UpsertNode{t->label, c.id, std::move(props), c.version});
  }
  for (const auto& r : t->relationships) {
    auto from = CNX_TRY(Endpoint(c, *t, row, r.from));
    auto to = CNX_TRY(Endpoint(c, *t, row, r.to));
    // No such relationship: a NULL (or cleared) foreign key, an endpoint whose
    // label is not projected, or a relationshipType outside the vocabulary.
    bool none = !from || !to || !options.Projects(from->first) || !options.Projects(to->first);
    if (!none && !options.vocabulary.empty() &&
        (std::string_view(r.type) == "CONNECTED_TO" || std::string_view(r.type) == "RELATES_TO")) {
      auto it = row.find("relationship_type");
      none = it == row.end() || !it->is_string() || !options.vocabulary.contains(it->get<std::string>());
    }
    if (none) {
      out.push_back(graph::DeleteRelationship{r.type, rel_id(r), c.version});
      continue;
    }
    graph::Map props = CNX_TRY(Properties(c, row, r.properties, keep(r.type)));
    if (options.temporal) {
      auto first_time = [&](std::initializer_list<const char*> columns) -> std::optional<std::string> {
        for (const char* col : columns) {
          if (auto it = row.find(col); it != row.end() && it->is_string()) return it->get<std::string>();
        }
        return std::nullopt;
      };
      if (auto from_time = first_time({"created_at", "added_at"})) props.push_back({"validFrom", *from_time});
      if (auto to_time = first_time({"valid_to", "revoked_at", "expires_at"})) props.push_back({"validTo", *to_time});
    }
    out.push_back(graph::UpsertRelationship{r.type, rel_id(r), from->first, from->second, to->first, to->second,
                                            std::move(props), c.version});
  }
  return out;
}

}  // namespace cnx::sync
