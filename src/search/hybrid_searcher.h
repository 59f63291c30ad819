// HybridSearcher: the Searcher of `cnx serve` (docs/search.md).
//
//   search::HybridSearcher searcher(app_pool, vectors->index(), embedder);
//   auto hits = searcher.Search({.tenant_id = t, .project_id = p, .text = "wal archiving"});
//
// Three retrievers, each asked for `Depth(k)` candidates, fused by reciprocal
// rank fusion (fusion.h) in Mode::kHybrid:
//  * vector: the query's embedding searched in the VectorIndex with the tenant
//    (and project) filter; when content filters apply the index is asked for
//    `filter_oversample` times more and again with a growing fetch until enough
//    candidates survive; the chunk rows are then read from PostgreSQL, which
//    drops what row-level security or the filters exclude (and vectors of
//    chunks deleted since the index last heard).
//  * lexical: websearch_to_tsquery('english', text) against
//    content_chunks.search_tsv (GIN index), ranked by ts_rank_cd; chunks with
//    every word first, then (for a query without operators) chunks with all
//    but one word, all but two, ..., any word, until enough candidates.
//  * graph: knowledge nodes of the tenant (and project, or tenant-wide nodes)
//    whose name occurs in the query or that the query names in
//    `boost_node_ids`, then the content linked to them (content_knowledge),
//    then that content's chunks matching the query's words, or its first chunk
//    when none does. Ranked by link strength (sum of confidences), then by
//    ts_rank_cd.
// Mode::kVector / kLexical run only that retriever; their `score` is the
// retriever's own score (cosine, ts_rank_cd), in kHybrid it is the RRF sum.
//
// Every statement runs in a read-only transaction on `pool` (which must
// connect as the application role) with Transaction::SetTenant, so another
// tenant's rows are invisible even if an index or a filter were wrong. In
// Mode::kHybrid the vector and graph retrievers run in a second thread on a
// second connection of `pool` (its own tenant transaction) while the lexical
// tiers run on the first, when the pool can hand one out at once
// (Pool::TryAcquire; never waiting, so concurrent searches cannot deadlock on
// the pool); otherwise all three run in turn on the first. The retrievers
// are independent, so the hits do not depend on which path was taken. A
// search holds at most two connections of `pool`.
//
// Errors: kInvalidArgument (empty or too long query, k outside 1..200),
// kUnavailable (pool exhausted, database down), the embedder's errors.
// Thread safety: Search() and Related() may be called from several threads;
// the pool, index and embedder must outlive the searcher and be thread-safe.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/uuid.h"
#include "embed/embedder.h"
#include "pg/pool.h"
#include "search/search.h"
#include "vector/vector_index.h"

namespace cnx::search {

inline constexpr size_t kMaxK = 200;
inline constexpr size_t kMaxQueryBytes = 4096;

struct HybridOptions {
  // Tuned on the dev half of the PostgreSQL-documentation evaluation and
  // checked on its test half (docs/search.md); the paper's k = 60 with equal
  // weights ranks below plain BM25 there. Decision 1100.
  double rrf_k = 10;
  double vector_weight = 0.5;
  double lexical_weight = 1.0;
  double graph_weight = 1.0;
  // Candidates per retriever: max(min_candidates, candidate_factor * k).
  size_t min_candidates = 50;
  size_t candidate_factor = 2;
  size_t filter_oversample = 4;    // vector fetch multiplier when content filters apply
  size_t max_vector_fetch = 4096;  // stop widening the filtered vector fetch here
  size_t max_graph_nodes = 64;     // matching knowledge nodes considered per query
  // Chunks ranked per lexical tier: a tier matching more (a very common word)
  // ranks the first `max_ranked_rows` the GIN index yields, not all of them,
  // which bounds latency (ranking reads each chunk's tsvector). Never below
  // the candidate depth. The cap is taken before the project and filters:
  // when they leave too few rows, the tier is read again with 8 times the
  // cap, up to `max_widened_rows` (decision 1104).
  size_t max_ranked_rows = 500;
  size_t max_widened_rows = 32'000;
  // ts_rank_cd normalisation bit mask (PostgreSQL docs, "Ranking Search
  // Results"); 1 divides by 1 + log(chunk length), which ranked best on the
  // PostgreSQL documentation evaluation (docs/search.md); 0 is raw cover density.
  int rank_normalization = 1;
  // Mode::kHybrid: run the vector and graph retrievers on a second pooled
  // connection, in a second thread, while the lexical tiers run on the first
  // (only when the pool has a connection to spare at once; otherwise one
  // after the other). The hits are the same either way.
  bool parallel_retrievers = true;
};

// A content item recommended by Related().
struct RelatedItem {
  Uuid content_id;
  Uuid project_id;
  std::string title;
  std::string source_url;
  std::string content_type;
  double score = 0;    // best cosine between the query vector and one of the item's chunks
  Uuid best_chunk_id;  // that chunk
};

struct RelatedQuery {
  Uuid tenant_id;
  Uuid content_id;
  size_t k = 10;  // 1..200
};

class HybridSearcher final : public Searcher {
 public:
  HybridSearcher(pg::Pool& pool, vector::VectorIndex& index, embed::Embedder& embedder, HybridOptions options = {});

  Result<std::vector<Hit>> Search(const Query& query) override;

  // Content items of the same project as `content_id` whose chunks are
  // nearest to the mean of its chunk vectors (stored embeddings of this
  // embedder's model, or embedded now when none are stored); the item itself
  // is excluded. kNotFound when the item is not visible to the tenant.
  Result<std::vector<RelatedItem>> Related(const RelatedQuery& query);

  const HybridOptions& options() const { return options_; }

 private:
  pg::Pool& pool_;
  vector::VectorIndex& index_;
  embed::Embedder& embedder_;
  HybridOptions options_;
};

}  // namespace cnx::search
