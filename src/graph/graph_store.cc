#include "graph/graph_store.h"

namespace cnx::graph {

bool IsValidName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
    bool digit = c >= '0' && c <= '9';
    if (!alpha && !(digit && i > 0)) return false;
  }
  return true;
}

namespace {
std::unexpected<Error> Invalid(size_t i, const std::string& what) {
  return Err(Module::kGraph, ErrorCode::kInvalidArgument, "mutation " + std::to_string(i) + ": " + what);
}
}  // namespace

bool IsReservedName(std::string_view name) {
  return name == "CnxNode" || name == "CnxTombstone" || name == "CnxMeta";
}

namespace {
// `id` and `version` are set by the store itself.
bool HasReservedKey(const Map& props) {
  return MapFind(props, "id") != nullptr || MapFind(props, "version") != nullptr;
}

// What PackStream can carry (the store's log and property layout, Bolt): a
// structure has at most 15 fields, and nesting stays well inside the
// decoder's limit once the value sits in a mutation inside a batch record.
constexpr int kMaxPropertyNesting = 48;
bool Encodable(const Value& v, int depth) {
  if (depth > kMaxPropertyNesting) return false;
  switch (v.kind()) {
    case Value::Kind::kList:
      for (const auto& e : v.as_list())
        if (!Encodable(e, depth + 1)) return false;
      return true;
    case Value::Kind::kMap:
      for (const auto& e : v.as_map())
        if (!Encodable(e.value, depth + 1)) return false;
      return true;
    case Value::Kind::kStruct:
      if (v.as_struct().fields.size() > 15) return false;
      for (const auto& e : v.as_struct().fields)
        if (!Encodable(e, depth + 1)) return false;
      return true;
    default:
      return true;
  }
}
bool PropertiesEncodable(const Map& props) {
  for (const auto& e : props)
    if (!Encodable(e.value, 1)) return false;
  return true;
}
constexpr const char* kNotEncodable =
    "a property value nests deeper than 48 levels or holds a structure of more than 15 fields";
}  // namespace

Status ValidateBatch(const MutationBatch& batch) {
  for (size_t i = 0; i < batch.mutations.size(); ++i) {
    const Mutation& m = batch.mutations[i];
    if (const auto* u = std::get_if<UpsertNode>(&m)) {
      if (!IsValidName(u->label) || IsReservedName(u->label)) return Invalid(i, "bad label '" + u->label + "'");
      if (u->id.empty()) return Invalid(i, "empty node id");
      if (HasReservedKey(u->properties)) return Invalid(i, "properties must not contain 'id' or 'version'");
      if (!PropertiesEncodable(u->properties)) return Invalid(i, kNotEncodable);
    } else if (const auto* d = std::get_if<DeleteNode>(&m)) {
      if (!IsValidName(d->label)) return Invalid(i, "bad label '" + d->label + "'");
      if (d->id.empty()) return Invalid(i, "empty node id");
    } else if (const auto* r = std::get_if<UpsertRelationship>(&m)) {
      if (!IsValidName(r->type)) return Invalid(i, "bad relationship type '" + r->type + "'");
      if (!IsValidName(r->start_label) || !IsValidName(r->end_label)) return Invalid(i, "bad endpoint label");
      if (r->id.empty() || r->start_id.empty() || r->end_id.empty()) return Invalid(i, "empty id");
      if (HasReservedKey(r->properties)) return Invalid(i, "properties must not contain 'id' or 'version'");
      if (!PropertiesEncodable(r->properties)) return Invalid(i, kNotEncodable);
    } else if (const auto* x = std::get_if<DeleteRelationship>(&m)) {
      if (!IsValidName(x->type)) return Invalid(i, "bad relationship type '" + x->type + "'");
      if (x->id.empty()) return Invalid(i, "empty relationship id");
    }
  }
  return Ok();
}

}  // namespace cnx::graph
