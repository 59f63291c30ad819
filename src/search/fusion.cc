#include "search/fusion.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

namespace cnx::search {

std::vector<FusedItem> FuseRrf(std::span<const RankedList> lists, double k, size_t limit) {
  std::vector<FusedItem> out;
  std::unordered_map<Uuid, size_t> at;  // id -> index in out
  for (const auto& list : lists) {
    std::unordered_set<Uuid> seen;
    size_t rank = 0;
    for (const auto& [id, own] : list.items) {
      if (!seen.insert(id).second) continue;
      ++rank;
      auto [it, fresh] = at.try_emplace(id, out.size());
      if (fresh) out.push_back(FusedItem{.id = id});
      FusedItem& f = out[it->second];
      f.score += list.weight / (k + static_cast<double>(rank));
      f.scores.push_back(RetrieverScore{.retriever = list.retriever, .rank = rank, .score = own});
    }
  }
  std::sort(out.begin(), out.end(), [](const FusedItem& a, const FusedItem& b) {
    if (a.score != b.score) return a.score > b.score;
    return a.id < b.id;
  });
  if (out.size() > limit) out.resize(limit);
  return out;
}

}  // namespace cnx::search
