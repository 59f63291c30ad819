// Differential fuzz target: ParseOutboxPayloadText(text, keep), which skims the
// payload and parses only the kept columns, must accept exactly what a full
// nlohmann parse followed by the same filter accepts, and give the same Change
// (values and JSON types).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "sync/change.h"

namespace {

const std::set<std::string, std::less<>> kKeep = {"id",         "tenant_id", "content_item_id", "chunk_index",
                                                  "pg_version", "tags",      "start_offset"};

cnx::Result<cnx::sync::Change> Reference(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return std::unexpected(cnx::Error(cnx::Module::kSync, cnx::ErrorCode::kInvalidArgument, ""));
  if (j.is_object()) {
    for (const char* side : {"row", "old"}) {
      auto it = j.find(side);
      if (it == j.end() || !it->is_object()) continue;
      nlohmann::json kept = nlohmann::json::object();
      for (auto& [k, v] : it->items()) {
        if (kKeep.contains(k)) kept[k] = v;
      }
      *it = kept;
    }
  }
  return cnx::sync::ParseOutboxPayload(j);
}

bool SameTypes(const nlohmann::json& a, const nlohmann::json& b) {
  if (a.type() != b.type() || a.size() != b.size()) return false;
  if (a.is_object()) {
    for (auto it = a.begin(); it != a.end(); ++it) {
      if (!b.contains(it.key()) || !SameTypes(it.value(), b.at(it.key()))) return false;
    }
  } else if (a.is_array()) {
    for (size_t i = 0; i < a.size(); ++i) {
      if (!SameTypes(a[i], b[i])) return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto got = cnx::sync::ParseOutboxPayloadText(text, kKeep);
  auto want = Reference(text);
  if (got.has_value() != want.has_value()) std::abort();
  if (!got) return 0;
  if (got->op != want->op || got->table != want->table || got->id != want->id || got->tenant_id != want->tenant_id ||
      got->version != want->version || got->schema_version != want->schema_version || got->row != want->row ||
      got->old != want->old || !SameTypes(got->row, want->row) || !SameTypes(got->old, want->old)) {
    std::abort();
  }
  return 0;
}
