// Fuzzes the POST /v1/search body decoder: any bytes either decode to a
// request within the documented bounds or yield an issue; never a crash.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "search/request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  auto r = cnx::search::DecodeSearchRequest(body);
  if (r) {
    if (r->k < 1 || r->k > cnx::search::kMaxK) std::abort();
    if (r->query.empty() || r->query.size() > cnx::search::kMaxQueryBytes) std::abort();
    if (r->filters.tags.size() > cnx::search::kMaxListItems) std::abort();
    if (r->filters.content_ids.size() > cnx::search::kMaxListItems) std::abort();
    // Encoding a hit built from the request never throws either.
    cnx::search::Hit h;
    h.text = r->query;
    h.title = r->query;
    (void)cnx::search::HitToJson(h).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else if (r.error().message.empty()) {
    std::abort();
  }
  return 0;
}
