#include "sync/graph_configuration.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include <spdlog/spdlog.h>

namespace cnx::sync {

namespace {

using J = nlohmann::json;

std::string Pointer(std::string_view key) {
  std::string s = "/";
  for (char c : key) {
    if (c == '~') {
      s += "~0";
    } else if (c == '/') {
      s += "~1";
    } else {
      s += c;
    }
  }
  return s;
}

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

// Label or relationship type -> its camelCase properties.
const std::map<std::string, std::set<std::string>>& PropertyTable() {
  static const auto* table = [] {
    auto* m = new std::map<std::string, std::set<std::string>>();
    for (const auto& t : GraphProjection()) {
      if (t.label) {
        auto& props = (*m)[t.label];
        for (const auto& p : t.properties) props.insert(p.property);
      }
      for (const auto& r : t.relationships) {
        auto& props = (*m)[r.type];
        for (const auto& p : r.properties) props.insert(p.property);
      }
    }
    return m;
  }();
  return *table;
}

}  // namespace

std::vector<ConfigurationIssue> ValidateProjectionConfiguration(const J& c, const std::string& ptr) {
  std::vector<ConfigurationIssue> issues;
  if (!c.is_object()) return issues;  // the caller reports the document's own shape
  const auto labels = ProjectedLabels();
  const std::set<std::string> known_labels(labels.begin(), labels.end());
  auto pit = c.find("projection");
  if (pit == c.end()) return issues;
  const std::string at = ptr + "/projection";
  if (!pit->is_object()) return {{at, "must be an object"}};
  std::optional<std::set<std::string>> chosen;
  for (const auto& [k, v] : pit->items()) {
    const std::string kat = at + Pointer(k);
    if (k == "labels") {
      if (!v.is_array() || v.size() > known_labels.size()) {
        issues.push_back({kat, "must be an array of node labels"});
        continue;
      }
      chosen.emplace();
      for (size_t i = 0; i < v.size(); ++i) {
        const std::string iat = kat + "/" + std::to_string(i);
        if (!v[i].is_string() || !known_labels.contains(v[i].get<std::string>())) {
          issues.push_back({iat, "must be one of the projected labels: " + Join(labels)});
        } else if (!chosen->insert(v[i].get<std::string>()).second) {
          issues.push_back({iat, "is listed twice"});
        }
      }
    } else if (k == "properties") {
      if (!v.is_object()) {
        issues.push_back({kat, "must be an object: label or relationship type -> property names"});
        continue;
      }
      for (const auto& [name, props] : v.items()) {
        const std::string nat = kat + Pointer(name);
        auto known = PropertyTable().find(name);
        if (known == PropertyTable().end()) {
          issues.push_back({nat, "is not a projected label or relationship type"});
          continue;
        }
        if (!props.is_array()) {
          issues.push_back({nat, "must be an array of property names"});
          continue;
        }
        for (size_t i = 0; i < props.size(); ++i) {
          if (!props[i].is_string() || !known->second.contains(props[i].get<std::string>())) {
            std::vector<std::string> names(known->second.begin(), known->second.end());
            issues.push_back(
                {nat + "/" + std::to_string(i), names.empty() ? name + " has no properties to choose"
                                                              : "must be a property of " + name + ": " + Join(names)});
          }
        }
      }
    } else if (k == "temporal") {
      if (!v.is_boolean()) issues.push_back({kat, "must be a boolean"});
    } else {
      issues.push_back({kat, "unknown field (labels, properties, temporal)"});
    }
  }
  // Properties chosen for a label that is not projected would silently do nothing.
  if (chosen) {
    if (auto props = pit->find("properties"); props != pit->end() && props->is_object()) {
      for (const auto& [name, _] : props->items()) {
        if (known_labels.contains(name) && !chosen->contains(name)) {
          issues.push_back({at + "/properties" + Pointer(name), "label is not in /projection/labels"});
        }
      }
    }
  }
  return issues;
}

ProjectionOptions ParseGraphConfiguration(const J& c) {
  ProjectionOptions o;
  if (!c.is_object()) return o;
  if (auto it = c.find("relationshipTypes"); it != c.end() && it->is_array()) {
    for (const auto& v : *it) {
      if (v.is_string()) o.vocabulary.insert(v.get<std::string>());
    }
  }
  auto p = c.find("projection");
  if (p == c.end() || !p->is_object()) return o;
  if (auto it = p->find("labels"); it != p->end() && it->is_array()) {
    o.labels.emplace();
    for (const auto& v : *it) {
      if (v.is_string()) o.labels->insert(v.get<std::string>());
    }
  }
  if (auto it = p->find("properties"); it != p->end() && it->is_object()) {
    for (const auto& [name, props] : it->items()) {
      if (!props.is_array()) continue;
      auto& keep = o.properties[name];
      for (const auto& v : props) {
        if (v.is_string()) keep.insert(v.get<std::string>());
      }
    }
  }
  if (auto it = p->find("temporal"); it != p->end() && it->is_boolean()) o.temporal = it->get<bool>();
  return o;
}

Result<std::shared_ptr<const GraphConfigurations>> GraphConfigurations::Load(pg::Connection& conn) {
  auto rows =
      CNX_TRY(conn.Exec("SELECT tenant_id::text, coalesce(project_id::text, ''), configuration::text "
                        "FROM knowledge_graph_configurations WHERE is_active"));
  auto out = std::make_shared<GraphConfigurations>();
  for (int i = 0; i < rows.rows(); ++i) {
    auto doc = J::parse(rows[i].Text(2), nullptr, /*allow_exceptions=*/false);
    ProjectionOptions o = ParseGraphConfiguration(doc);
    std::string tenant(rows[i].Text(0)), project(rows[i].Text(1));
    if (project.empty()) {
      out->tenants_[tenant] = std::move(o);
    } else {
      out->projects_[project] = std::move(o);
      out->tenants_with_projects_.insert(tenant);
    }
  }
  return std::shared_ptr<const GraphConfigurations>(std::move(out));
}

bool GraphConfigurations::HasProjectConfigurations(const std::string& tenant_id) const {
  return tenants_with_projects_.contains(tenant_id);
}

const ProjectionOptions& GraphConfigurations::For(const std::string& tenant_id, const std::string& project_id) const {
  if (!project_id.empty()) {
    if (auto it = projects_.find(project_id); it != projects_.end()) return it->second;
  }
  if (auto it = tenants_.find(tenant_id); it != tenants_.end()) return it->second;
  return defaults_;
}

ProjectRef ProjectRefOf(std::string_view table) {
  using K = ProjectRef::Kind;
  if (table == "projects") return {K::kSelf, nullptr};
  for (const char* t : {"project_members", "threads", "content_items", "knowledge_nodes", "collaborative_views"}) {
    if (table == t) return {K::kColumn, "project_id"};
  }
  if (table == "messages" || table == "thread_content") return {K::kThread, "thread_id"};
  if (table == "content_chunks" || table == "content_tags" || table == "content_knowledge") {
    return {K::kContentItem, "content_item_id"};
  }
  if (table == "operations_log" || table == "realtime_annotations") return {K::kContentItem, "document_id"};
  if (table == "message_context") return {K::kMessage, "message_id"};
  if (table == "knowledge_edges") return {K::kKnowledgeNode, "source_node_id"};
  if (table == "view_participants") return {K::kView, "view_id"};
  return {};  // tenants, users, user_sessions, programs, tags, resource_presence: the tenant's configuration
}

Result<std::map<std::pair<ProjectRef::Kind, std::string>, std::string>> LookUpProjects(
    pg::Connection& conn, const std::vector<std::pair<ProjectRef::Kind, std::string>>& refs) {
  std::map<std::pair<ProjectRef::Kind, std::string>, std::string> out;
  if (refs.empty()) return out;
  std::string kinds = "{", ids = "{";
  for (const auto& [k, id] : refs) {
    if (kinds.size() > 1) {
      kinds += ',';
      ids += ',';
    }
    kinds += std::to_string(static_cast<int>(k));
    ids += '"';
    for (char ch : id) {
      if (ch == '"' || ch == '\\') ids += '\\';
      ids += ch;
    }
    ids += '"';
  }
  kinds += '}';
  ids += '}';
  using K = ProjectRef::Kind;
  auto when = [](K k, const char* sql) {
    return " WHEN " + std::to_string(static_cast<int>(k)) + " THEN (" + sql + ")";
  };
  auto rows = CNX_TRY(conn.Exec(
      "SELECT x.k, x.i, CASE x.k" + when(K::kThread, "SELECT project_id FROM threads WHERE id = x.i::uuid") +
          when(K::kContentItem, "SELECT project_id FROM content_items WHERE id = x.i::uuid") +
          when(K::kMessage,
               "SELECT t.project_id FROM messages m JOIN threads t ON t.id = m.thread_id WHERE m.id = x.i::uuid") +
          when(K::kKnowledgeNode, "SELECT project_id FROM knowledge_nodes WHERE id = x.i::uuid") +
          when(K::kView, "SELECT project_id FROM collaborative_views WHERE id = x.i::uuid") +
          " END::text FROM unnest($1::int[], $2::text[]) AS x(k, i)",
      {kinds, ids}));
  for (int r = 0; r < rows.rows(); ++r) {
    if (rows[r].Text(2).empty()) continue;
    out[{static_cast<K>(std::stoi(std::string(rows[r].Text(0)))), std::string(rows[r].Text(1))}] =
        std::string(rows[r].Text(2));
  }
  return out;
}

Result<std::vector<const ProjectionOptions*>> OptionsFor(pg::Connection& conn, const GraphConfigurations& configs,
                                                         const ProjectionOptions& defaults,
                                                         std::span<const Change> changes, ProjectCache& cache) {
  std::vector<const ProjectionOptions*> out(changes.size(), &defaults);
  if (configs.empty()) return out;
  // The project of each change, directly or through its parent.
  std::vector<std::string> project(changes.size());
  std::vector<std::pair<ProjectRef::Kind, std::string>> parent(changes.size());
  std::vector<std::pair<ProjectRef::Kind, std::string>> misses;
  // Parents in this very batch need no look-up (nor do they risk not being
  // visible yet): their rows carry their project.
  for (const Change& c : changes) {
    const auto& row = c.Subject();
    auto pid = row.find("project_id");
    if (pid == row.end() || !pid->is_string()) continue;
    ProjectRef::Kind kind = c.table == "threads"               ? ProjectRef::Kind::kThread
                            : c.table == "content_items"       ? ProjectRef::Kind::kContentItem
                            : c.table == "knowledge_nodes"     ? ProjectRef::Kind::kKnowledgeNode
                            : c.table == "collaborative_views" ? ProjectRef::Kind::kView
                                                               : ProjectRef::Kind::kNone;
    if (kind != ProjectRef::Kind::kNone) cache[{kind, c.id}] = pid->get<std::string>();
  }
  for (size_t i = 0; i < changes.size(); ++i) {
    const Change& c = changes[i];
    if (!configs.HasProjectConfigurations(c.tenant_id)) continue;
    ProjectRef ref = ProjectRefOf(c.table);
    if (ref.kind == ProjectRef::Kind::kNone) continue;
    if (ref.kind == ProjectRef::Kind::kSelf) {
      project[i] = c.id;
      continue;
    }
    const auto& row = c.Subject();
    auto it = row.find(ref.column);
    if (it == row.end() || !it->is_string()) continue;
    if (ref.kind == ProjectRef::Kind::kColumn) {
      project[i] = it->get<std::string>();
      continue;
    }
    parent[i] = {ref.kind, it->get<std::string>()};
    if (!cache.contains(parent[i])) misses.push_back(parent[i]);
  }
  if (!misses.empty()) {
    std::sort(misses.begin(), misses.end());
    misses.erase(std::unique(misses.begin(), misses.end()), misses.end());
    // A parent committed in the same transaction as its child may not be
    // visible yet: logical decoding can hand a commit on before the committing
    // backend has left the proc array. Look again briefly before giving up
    // (a parent deleted since has a child whose delete is on its way).
    for (int attempt = 0; attempt < 4 && !misses.empty(); ++attempt) {
      if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(25 * attempt));
      auto found = CNX_TRY(LookUpProjects(conn, misses));
      if (cache.size() > 100'000) cache.clear();
      for (auto& [k, v] : found) cache[k] = v;
      std::erase_if(misses, [&](const auto& m) { return found.contains(m); });
    }
    if (!misses.empty()) {
      spdlog::warn(
          "graph: no project found for {} parent row(s) (first: {}); their children follow the tenant's "
          "configuration",
          misses.size(), misses[0].second);
    }
  }
  for (size_t i = 0; i < changes.size(); ++i) {
    if (project[i].empty() && parent[i].first != ProjectRef::Kind::kNone) {
      if (auto it = cache.find(parent[i]); it != cache.end()) project[i] = it->second;
    }
    out[i] = &configs.For(changes[i].tenant_id, project[i]);
  }
  return out;
}

}  // namespace cnx::sync
