// Change: one row change as the outbox trigger describes it (docs/schema.md):
// {"op": "c"|"u"|"d", "table", "id", "tenant_id", "pg_version", "schemaVersion",
//  "row", "old"}. Projectors consume Changes; they come from the bus envelope
// (the relay wraps the payload) or straight from outbox rows (reconcile).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <set>
#include <string>

#include "base/result.h"

namespace cnx::sync {

struct Change {
  enum class Op : uint8_t { kInsert, kUpdate, kDelete };
  Op op = Op::kInsert;
  std::string table;
  std::string id;
  std::string tenant_id;
  uint64_t version = 0;  // the row's pg_version (1 for append-only tables)
  int schema_version = 1;
  nlohmann::json row;  // the new row (null for deletes)
  nlohmann::json old;  // the deleted row (deletes only)

  // The row the change is about: `row`, or `old` for deletes.
  const nlohmann::json& Subject() const { return op == Op::kDelete ? old : row; }
};

// Parses an outbox payload. Unknown fields are ignored (forward compatibility);
// missing or mistyped required fields are kInvalidArgument.
Result<Change> ParseOutboxPayload(const nlohmann::json& payload);
Result<Change> ParseOutboxPayloadText(std::string_view json_text);
// The same, keeping in `row` / `old` only the columns named in `keep` (the
// graph projection reads a few columns; a chunk's text is most of its event).
Result<Change> ParseOutboxPayloadText(std::string_view json_text, const std::set<std::string, std::less<>>& keep);

}  // namespace cnx::sync
