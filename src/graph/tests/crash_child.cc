// Child process for crash_test.cc: opens the store in DIR, continues the
// deterministic batch sequence SEED from the store's position up to COUNT,
// purging every tombstone after every 5th batch ("purged N") and compacting
// after every 7th, and prints "ack N" after each acknowledged batch.
// The parent kills it with SIGKILL at a random moment.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "graph/embedded_graph_store.h"
#include "test_batches.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: graph_crash_child DIR SEED COUNT\n");
    return 64;
  }
  uint64_t seed = std::strtoull(argv[2], nullptr, 10);
  uint64_t count = std::strtoull(argv[3], nullptr, 10);
  auto store = cnx::graph::EmbeddedGraphStore::Open(argv[1], {.sync = true, .compact_after_log_bytes = 0});
  if (!store) {
    std::fprintf(stderr, "open: %s\n", store.error().ToString().c_str());
    return 1;
  }
  uint64_t start = (*store)->AppliedPosition().value() + 1;
  std::printf("start %llu\n", static_cast<unsigned long long>(start));
  std::fflush(stdout);
  // The purge after the last batch may not have happened before the kill:
  // do it (again: purging every tombstone twice in a row is one purge).
  if (start > 1 && (start - 1) % 5 == 0) {
    if (auto p = (*store)->PurgeTombstones(std::chrono::seconds(0), size_t{1} << 30); !p) {
      std::fprintf(stderr, "purge: %s\n", p.error().ToString().c_str());
      return 1;
    }
  }
  for (uint64_t i = start; i <= count; ++i) {
    auto r = (*store)->Apply(cnx::graph::testing::RandomBatch(seed, i));
    if (!r) {
      std::fprintf(stderr, "apply %llu: %s\n", static_cast<unsigned long long>(i), r.error().ToString().c_str());
      return 1;
    }
    std::printf("ack %llu\n", static_cast<unsigned long long>(i));
    std::fflush(stdout);
    if (i % 5 == 0) {
      // Every tombstone (horizon 0), in one call: one purge record.
      if (auto p = (*store)->PurgeTombstones(std::chrono::seconds(0), size_t{1} << 30); !p) {
        std::fprintf(stderr, "purge: %s\n", p.error().ToString().c_str());
        return 1;
      }
      std::printf("purged %llu\n", static_cast<unsigned long long>(i));
      std::fflush(stdout);
    }
    if (i % 7 == 0) {
      if (auto st = (*store)->Compact(); !st) {
        std::fprintf(stderr, "compact: %s\n", st.error().ToString().c_str());
        return 1;
      }
    }
  }
  return 0;
}
