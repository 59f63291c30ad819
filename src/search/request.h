// The JSON of the search API (docs/search.md#http-api): decoding a
// `POST /v1/search` body strictly, and encoding hits.
//
// DecodeSearchRequest accepts exactly
//   {"query": string (1..4096 bytes, not blank), "projectId": uuid,
//    "k": 1..200 (default 10), "mode": "hybrid"|"vector"|"lexical",
//    "filters": {"tags": [string], "contentTypes": [string], "threadId": uuid,
//                "contentIds": [uuid], "excludeContentIds": [uuid]},
//    "boostNodeIds": [uuid]}
// and refuses anything else with the offending field (a JSON pointer) and a
// message: unknown members, wrong types, out-of-range values, duplicate-free
// lists longer than kMaxListItems, nesting deeper than kMaxJsonDepth, invalid
// UTF-8 or JSON. It never throws. Pure functions; thread-safe.
#pragma once

#include <nlohmann/json.hpp>

#include <expected>
#include <string>
#include <string_view>
#include <vector>

#include "search/hybrid_searcher.h"
#include "search/search.h"

namespace cnx::search {

inline constexpr size_t kMaxListItems = 200;
inline constexpr size_t kMaxJsonDepth = 8;
inline constexpr size_t kMaxNameBytes = 200;  // a tag name or content type

struct SearchRequest {
  std::string query;
  Uuid project_id;
  size_t k = 10;
  Mode mode = Mode::kHybrid;
  Filters filters;
  std::vector<Uuid> boost_node_ids;
};

struct RequestIssue {
  std::string field;  // "/query", "/filters/tags/3", "" for the whole body
  std::string message;
  bool malformed = false;  // not JSON at all (vs. valid JSON that breaks the schema)
};

std::expected<SearchRequest, RequestIssue> DecodeSearchRequest(std::string_view body);

// {"chunkId", "content": {...}, "text", "chunkIndex", "startOffset",
//  "endOffset", "tokenCount", "score", "scores": {"vector": {"rank","score"}, ...}}
nlohmann::json HitToJson(const Hit& hit);
nlohmann::json RelatedToJson(const RelatedItem& item);

}  // namespace cnx::search
