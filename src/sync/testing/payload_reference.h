// The reference the outbox payload skim is checked against (the unit test and
// the differential fuzz target): a full parse, then the columns not kept dropped
// (from `row`, `old`, `shared` and each object of `rows`).
#pragma once

#include <set>
#include <string>
#include <string_view>

#include "sync/change.h"

namespace cnx::sync::testing {

inline Result<Change> FullParseThenFilter(std::string_view text, const std::set<std::string, std::less<>>& keep) {
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return std::unexpected(Error(Module::kSync, ErrorCode::kInvalidArgument, "invalid JSON"));
  auto filter = [&](nlohmann::json& obj) {
    if (!obj.is_object()) return;
    nlohmann::json kept = nlohmann::json::object();
    for (auto& [k, v] : obj.items()) {
      if (keep.contains(k)) kept[k] = v;
    }
    obj = kept;
  };
  if (j.is_object()) {
    for (const char* side : {"row", "old", "shared"}) {
      if (auto it = j.find(side); it != j.end()) filter(*it);
    }
    if (auto it = j.find("rows"); it != j.end() && it->is_array()) {
      for (auto& r : *it) filter(r);
    }
  }
  return ParseOutboxPayload(j);
}

// Equal values of the same JSON types all the way down (nlohmann compares
// 3 and 3u as equal; a consumer asking is_number_unsigned() would not).
inline bool SameTypes(const nlohmann::json& a, const nlohmann::json& b) {
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

}  // namespace cnx::sync::testing
