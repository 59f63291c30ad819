// Deterministic pseudo-random mutation batches for the crash test, the
// randomized contract test and the benchmark's sanity checks.
#pragma once

#include <random>
#include <string>

#include "graph/graph_store.h"

namespace cnx::graph::testing {

// Batch `index` (1-based) of the sequence `seed`: a mix of node and
// relationship upserts and deletes over a small key space, with versions that
// sometimes go backwards (stale events) and repeat (duplicates).
inline MutationBatch RandomBatch(uint64_t seed, uint64_t index, int size = 40) {
  std::mt19937_64 rng(seed * 1000003u + index);
  MutationBatch b;
  b.position = index;
  auto node_id = [&] { return "n" + std::to_string(rng() % 120); };
  auto label_of = [](const std::string& id) { return (id.back() - '0') % 2 == 0 ? "Entity" : "Topic"; };
  for (int j = 0; j < size; ++j) {
    // Mostly increasing versions; one in five is an older (stale) one.
    uint64_t version = index * 100 + static_cast<uint64_t>(j);
    if (rng() % 5 == 0 && version > 250) version -= 200;
    int op = static_cast<int>(rng() % 10);
    if (op < 4) {
      std::string id = node_id();
      Map props{
          {"name", "node " + id}, {"tenantId", rng() % 2 ? "t1" : "t2"}, {"rank", static_cast<int64_t>(rng() % 1000)}};
      if (rng() % 3 == 0) props.push_back({"score", static_cast<double>(rng() % 100) / 8.0});
      if (rng() % 4 == 0) props.push_back({"tags", List{"a", static_cast<int64_t>(j)}});
      b.mutations.push_back(UpsertNode{label_of(id), id, std::move(props), version});
    } else if (op < 5) {
      std::string id = node_id();
      b.mutations.push_back(DeleteNode{label_of(id), id, version});
    } else if (op < 9) {
      std::string s = node_id(), e = node_id();
      std::string id = "r" + std::to_string(rng() % 300);
      b.mutations.push_back(UpsertRelationship{rng() % 2 ? "LINKS" : "MENTIONS", id, label_of(s), s, label_of(e), e,
                                               Map{{"weight", static_cast<double>(rng() % 10) / 4.0}}, version});
    } else {
      b.mutations.push_back(DeleteRelationship{"LINKS", "r" + std::to_string(rng() % 300), version});
    }
  }
  return b;
}

}  // namespace cnx::graph::testing
