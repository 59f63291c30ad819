// Reciprocal rank fusion (Cormack, Clarke and Büttcher, SIGIR 2009).
//
// Each retriever contributes weight / (k + rank) for every item it ranked
// (rank 1-based, in the list's order); the fused score is the sum. An item a
// retriever did not rank contributes nothing for it. k = 60 is the constant of
// the original paper: it flattens the head of every list so one retriever's
// first place cannot outvote agreement between the others (docs/search.md,
// decision 1100).
//
// Output: at most `limit` items, highest fused score first; equal scores are
// ordered by id (ascending), so the result is deterministic. Within one list a
// repeated id keeps its first (best) rank. Pure function; thread-safe.
#pragma once

#include <span>
#include <string>
#include <utility>
#include <vector>

#include "base/uuid.h"
#include "search/search.h"

namespace cnx::search {

// The paper's constant (Cormack et al. 2009). HybridOptions defaults to the
// values tuned on our evaluation instead (decision 1100).
inline constexpr double kDefaultRrfK = 60.0;

struct RankedList {
  std::string retriever;  // "vector", "lexical", "graph"
  double weight = 1.0;
  std::vector<std::pair<Uuid, double>> items;  // best first: id and the retriever's own score
};

struct FusedItem {
  Uuid id;
  double score = 0;
  std::vector<RetrieverScore> scores;  // in the order of the input lists
};

std::vector<FusedItem> FuseRrf(std::span<const RankedList> lists, double k, size_t limit);

}  // namespace cnx::search
