// Knowledge-graph configurations (table knowledge_graph_configurations, one
// active per tenant and per project) steer the projection: which labels and
// properties are projected, the vocabulary of CONNECTED_TO / RELATES_TO
// relationship types, temporal mode. The document shape is in docs/graph.md
// ("Configurations"); the API validates it with ValidateGraphConfiguration().
//
// Which configuration applies to a row: the active one of the row's project,
// else the active tenant-level one (project_id NULL), else the defaults
// (everything projected, no vocabulary, temporal off). The project of a row is
// its own id (projects), its project_id column, or that of the thread, content
// item, message, knowledge node or collaborative view it belongs to; rows of
// no project (tenants, users, sessions, programs, tags) use the tenant's.
//
// Thread safety: GraphConfigurations is immutable once loaded; the projector
// swaps in a new one when a configuration changes.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "pg/connection.h"
#include "sync/change.h"
#include "sync/graph_projection.h"

namespace cnx::sync {

struct ConfigurationIssue {
  std::string pointer;  // JSON pointer into the request body
  std::string message;
};

// Checks the "projection" object of a configuration document (`labels`,
// `properties`, `temporal`) against the projection table; issues are relative
// to `pointer` (e.g. "/configuration"). Other keys (`relationshipTypes`, the
// vocabulary, among them) are the caller's to check.
std::vector<ConfigurationIssue> ValidateProjectionConfiguration(const nlohmann::json& configuration,
                                                                const std::string& pointer);

// The options a configuration document sets. Lenient: what validation would
// refuse is ignored (documents written before validation existed still load).
ProjectionOptions ParseGraphConfiguration(const nlohmann::json& configuration);

class GraphConfigurations {
 public:
  // The active configurations of every tenant (an administrative connection).
  static Result<std::shared_ptr<const GraphConfigurations>> Load(pg::Connection& conn);

  bool empty() const { return tenants_.empty() && projects_.empty(); }
  // True if some project of the tenant has a configuration of its own: only
  // then does a row's project need to be known.
  bool HasProjectConfigurations(const std::string& tenant_id) const;
  const ProjectionOptions& For(const std::string& tenant_id, const std::string& project_id) const;

 private:
  std::map<std::string, ProjectionOptions> tenants_;   // tenant id -> options
  std::map<std::string, ProjectionOptions> projects_;  // project id -> options
  std::set<std::string> tenants_with_projects_;
  ProjectionOptions defaults_;
};

// How to find the project of a change's row: the id itself, a column of the
// row, or a column naming a parent whose project is looked up.
struct ProjectRef {
  enum class Kind : uint8_t { kNone, kSelf, kColumn, kThread, kContentItem, kMessage, kKnowledgeNode, kView };
  Kind kind = Kind::kNone;
  const char* column = nullptr;
};
ProjectRef ProjectRefOf(std::string_view table);

// Resolves the projects of `refs` (kind, id of the parent) in one statement;
// unknown ids are absent from the result.
Result<std::map<std::pair<ProjectRef::Kind, std::string>, std::string>> LookUpProjects(
    pg::Connection& conn, const std::vector<std::pair<ProjectRef::Kind, std::string>>& refs);

// Projects already looked up, by (kind, parent id); bounded by its owner.
using ProjectCache = std::map<std::pair<ProjectRef::Kind, std::string>, std::string>;

// The options that apply to each change: `defaults` when there are no
// configurations at all, else the configuration of the change's project or
// tenant. Parents' projects are looked up on `conn` (one statement for all
// misses of `cache`) only for tenants that have project configurations.
Result<std::vector<const ProjectionOptions*>> OptionsFor(pg::Connection& conn, const GraphConfigurations& configs,
                                                         const ProjectionOptions& defaults,
                                                         std::span<const Change> changes, ProjectCache& cache);

}  // namespace cnx::sync
