// Hybrid retrieval over a project's chunks: vector k-NN, PostgreSQL full text
// and a knowledge-graph boost, fused by reciprocal rank fusion (docs/search.md).
//
//   search::HybridSearcher searcher(app_pool, vectors->index(), embedder);
//   auto hits = searcher.Search({.tenant_id = p.tenant_id, .project_id = project, .text = "wal archiving"});
//
// Contract for every Searcher:
//  * Results belong to `tenant_id` only (enforced by row-level security on the
//    connection as well as by the vector index's tenant filter) and to
//    `project_id` when it is set.
//  * At most `k` hits, best first, deterministic for the same query and state
//    (ties broken by chunk id).
//  * `scores` names every retriever that ranked the hit (1-based rank and the
//    retriever's own score); `score` is the fused score.
//  * Errors: kInvalidArgument (empty query, k out of range), kUnavailable
//    (database or index unavailable).
//
// Thread safety: Search() may be called from several threads at once.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "base/uuid.h"

namespace cnx::search {

enum class Mode : uint8_t { kHybrid, kVector, kLexical };

std::string_view ModeName(Mode mode);
std::optional<Mode> ParseMode(std::string_view name);

struct Filters {
  std::vector<std::string> tags;           // content tagged with any of these tag names
  std::vector<std::string> content_types;  // content_items.content_type in this list
  std::optional<Uuid> thread_id;           // content included in this thread (thread_content)
  std::vector<Uuid> content_ids;           // only these content items (empty: any)
  std::vector<Uuid> exclude_content_ids;   // never these content items
};

struct Query {
  Uuid tenant_id;
  std::optional<Uuid> project_id;
  std::string text;
  size_t k = 10;  // 1..200
  Mode mode = Mode::kHybrid;
  Filters filters;
  // Knowledge nodes whose linked content gets the graph boost in addition to
  // the nodes matching the query text (context assembly passes the thread's
  // knowledge neighbourhood here).
  std::vector<Uuid> boost_node_ids;
};

struct RetrieverScore {
  std::string retriever;  // "vector", "lexical", "graph"
  size_t rank = 0;        // 1-based within that retriever
  double score = 0;       // the retriever's own score (cosine, ts_rank_cd, link strength)
};

struct Hit {
  Uuid chunk_id;
  Uuid content_id;
  std::optional<Uuid> project_id;
  std::string title;
  std::string source_url;
  std::string content_type;
  std::string text;
  int32_t chunk_index = 0;
  int32_t start_offset = 0;  // character offsets into the version's text
  int32_t end_offset = 0;
  int32_t token_count = 0;
  std::string content_hash;  // the chunk's content hash (near-duplicate detection)
  double score = 0;          // fused
  std::vector<RetrieverScore> scores;
};

class Searcher {
 public:
  virtual ~Searcher() = default;
  virtual Result<std::vector<Hit>> Search(const Query& query) = 0;
};

}  // namespace cnx::search
