// Change: one row change as the outbox trigger describes it (docs/schema.md):
// {"op": "c"|"u"|"d", "table", "id", "tenant_id", "pg_version", "schemaVersion",
//  "row", "old"}. Projectors consume Changes; they come from the bus envelope
// (the relay wraps the payload) or straight from outbox rows (reconcile).
//
// A batch event (operations_log since migration 0016, decision 1470) is the
// inserts or deletes of one statement for one aggregate (a document):
// {"op": "c"|"d", "table", "id": <aggregate id>, "tenant_id", "pg_version":
//  <aggregate version>, "schemaVersion": 2, "shared": {...}, "rows": [{...}]}.
// Its Change has `rows`, and `shared` (the columns every row has) as its
// Subject; BatchRow() is the per-row Change each element stands for.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

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
  // Batch events only: the rows (objects) in order; `row` (or `old` for
  // deletes) holds the payload's "shared" columns. Empty for row events.
  std::vector<nlohmann::json> rows;
  bool batch = false;

  // The row the change is about: `row`, or `old` for deletes (for a batch:
  // the columns its rows share).
  const nlohmann::json& Subject() const { return op == Op::kDelete ? old : row; }
  bool IsBatch() const { return batch; }
};

// The per-row change that element `i` of a batch stands for: the shared
// columns plus the element's, its "id", version its "pg_version" (1 when
// absent, as for the append-only operations_log), op, table and tenant of the
// batch. kInvalidArgument when the element has no string "id".
Result<Change> BatchRow(const Change& batch, size_t i);

// Parses an outbox payload. Unknown fields are ignored (forward compatibility);
// missing or mistyped required fields are kInvalidArgument.
Result<Change> ParseOutboxPayload(const nlohmann::json& payload);
Result<Change> ParseOutboxPayloadText(std::string_view json_text);
// The same, keeping in `row` / `old` only the columns named in `keep` (the
// graph projection reads a few columns; a chunk's text is most of its event).
Result<Change> ParseOutboxPayloadText(std::string_view json_text, const std::set<std::string, std::less<>>& keep);

}  // namespace cnx::sync
