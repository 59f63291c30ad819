// Differential fuzz target: ParseOutboxPayloadText(text, keep), which skims the
// payload and parses only the kept columns, must accept exactly what a full
// nlohmann parse followed by the same filter accepts, and give the same Change
// (values and JSON types).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "sync/change.h"
#include "sync/testing/payload_reference.h"

namespace {

const std::set<std::string, std::less<>> kKeep = {"id",         "tenant_id", "content_item_id", "chunk_index",
                                                  "pg_version", "tags",      "start_offset"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto got = cnx::sync::ParseOutboxPayloadText(text, kKeep);
  auto want = cnx::sync::testing::FullParseThenFilter(text, kKeep);
  if (got.has_value() != want.has_value()) std::abort();
  if (!got) return 0;
  if (got->op != want->op || got->table != want->table || got->id != want->id || got->tenant_id != want->tenant_id ||
      got->version != want->version || got->schema_version != want->schema_version || got->row != want->row ||
      got->old != want->old || !cnx::sync::testing::SameTypes(got->row, want->row) ||
      !cnx::sync::testing::SameTypes(got->old, want->old) || got->batch != want->batch ||
      got->rows.size() != want->rows.size()) {
    std::abort();
  }
  for (size_t i = 0; i < got->rows.size(); ++i) {
    if (got->rows[i] != want->rows[i] || !cnx::sync::testing::SameTypes(got->rows[i], want->rows[i])) std::abort();
  }
  return 0;
}
