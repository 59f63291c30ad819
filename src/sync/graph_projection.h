// The graph projection: which PostgreSQL table becomes which node label and
// which relationships, with which properties. One table in code (kProjection
// in graph_projection.cc), the same as docs/graph.md.
//
// Nodes carry `id` (the PostgreSQL UUID), `tenantId` and the listed
// properties (camelCase). A relationship that comes from a row of its own
// (join tables such as project_members) has that row's id as `id`; one that
// comes from a foreign key of an entity row has id "<row id>/<TYPE>".
//
// MapChange() is pure and thread-safe.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "graph/graph_store.h"
#include "sync/change.h"

namespace cnx::sync {

struct PropertySpec {
  const char* column;
  const char* property;
};

struct EndpointSpec {
  const char* label;         // nullptr: chosen by `label_column` (polymorphic endpoint)
  const char* column;        // nullptr: the row itself
  const char* label_column;  // e.g. resource_presence.resource_type
};

struct RelationshipSpec {
  const char* type;
  EndpointSpec from;
  EndpointSpec to;
  std::vector<PropertySpec> properties;
};

struct TableProjection {
  const char* table;
  const char* label;  // nullptr: the row is a relationship only
  std::vector<PropertySpec> properties;
  std::vector<RelationshipSpec> relationships;
  bool row_is_relationship = false;  // relationship id = row id
};

const std::vector<TableProjection>& GraphProjection();
const TableProjection* FindProjection(std::string_view table);
// Every row column MapChange() or the configurations may read.
const std::set<std::string, std::less<>>& ProjectedColumns();
std::vector<std::string> ProjectedLabels();             // sorted
std::vector<std::string> ProjectedRelationshipTypes();  // sorted

// What a knowledge-graph configuration sets (graph_configuration.h). The
// defaults project everything.
struct ProjectionOptions {
  // Relationships get validFrom (the row's created_at or added_at) and, where
  // the row carries an end (valid_to, revoked_at, expires_at), validTo.
  bool temporal = false;
  std::optional<std::set<std::string>> labels;  // projected node labels; nullopt = all
  // Per label or relationship type: the properties kept (`tenantId` always
  // is); a label or type without an entry keeps all of its properties.
  std::map<std::string, std::set<std::string>> properties;
  // relationshipType values of CONNECTED_TO / RELATES_TO that are projected;
  // empty = any. A row outside the vocabulary has no relationship.
  std::set<std::string> vocabulary;

  bool Projects(std::string_view label) const { return !labels || labels->contains(std::string(label)); }
  bool operator==(const ProjectionOptions&) const = default;
};

// The mutations that bring the graph in line with `change`. Tables that are not
// projected give an empty list. kInvalidArgument for rows missing their columns.
Result<std::vector<graph::Mutation>> MapChange(const Change& change, const ProjectionOptions& options = {});

}  // namespace cnx::sync
