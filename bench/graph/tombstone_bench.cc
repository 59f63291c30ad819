// Tombstone expiry of the embedded graph store (decision 1500): what the
// tombstones of compacted collaboration operations cost, and what a purge
// gives back.
//
//   tombstone_bench [--ops N] [--round R] [--dir DIR]
//
// A collaboration room in rounds of R operations: each operation is an
// Operation node with AFFECTS and PERFORMED (the shape of a projected
// operations_log row), and a round ends with the compaction that deletes
// them, leaving three tombstones per operation (node slots are reused round
// after round, so the growth is the tombstones'). Then the clock moves past
// the 24 h horizon and PurgeTombstones(24h, 10'000) is called until nothing
// has expired. Reported: heap in use (mallinfo2, after malloc_trim) per
// tombstone and before/after the purge, the purge's calls and the longest one
// (the time the store's write lock is held), and the snapshot's size before
// and after. There is no peer: the comparison is the same store before the
// purge, i.e. what the heap held without expiry.
#include <malloc.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>

#include "base/clock.h"
#include "graph/embedded_graph_store.h"

namespace {

using namespace cnx::graph;
using Steady = std::chrono::steady_clock;

std::string Uuid(std::mt19937_64& rng) {
  static const char* kHex = "0123456789abcdef";
  std::string s(36, '-');
  for (size_t i = 0; i < 36; ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) continue;
    s[i] = kHex[rng() & 15];
  }
  return s;
}

size_t HeapInUse() {
  malloc_trim(0);
  return mallinfo2().uordblks;
}

double Mb(double b) {
  return b / (1024.0 * 1024.0);
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t ops = 333'334;  // ~1,000,000 tombstones
  uint64_t round = 1000;   // collab.snapshot_every_ops
  std::string dir;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--ops") {
      ops = std::strtoull(next().c_str(), nullptr, 10);
    } else if (a == "--round") {
      round = std::max<uint64_t>(1, std::strtoull(next().c_str(), nullptr, 10));
    } else if (a == "--dir") {
      dir = next();
    } else {
      std::fprintf(stderr, "usage: tombstone_bench [--ops N] [--round R] [--dir DIR]\n");
      return 2;
    }
  }
  if (dir.empty()) {
    std::fprintf(stderr, "--dir is required (a fresh directory for the store)\n");
    return 2;
  }
  std::filesystem::remove_all(dir);
  cnx::FakeClock clock;
  auto opened = EmbeddedGraphStore::Open(dir, {.sync = false, .compact_after_log_bytes = 0, .clock = &clock});
  if (!opened) {
    std::fprintf(stderr, "open: %s\n", opened.error().ToString().c_str());
    return 1;
  }
  auto& store = **opened;
  std::mt19937_64 rng(1500);
  const std::string tenant = Uuid(rng), user = Uuid(rng), doc = Uuid(rng);
  uint64_t position = 1;
  auto apply = [&](MutationBatch b) {
    b.position = position++;
    if (auto r = store.Apply(b); !r) {
      std::fprintf(stderr, "apply: %s\n", r.error().ToString().c_str());
      std::exit(1);
    }
  };
  apply(MutationBatch{0,
                      {UpsertNode{"User", user, {{"tenantId", tenant}}, 1},
                       UpsertNode{"ContentItem", doc, {{"tenantId", tenant}}, 1}}});
  size_t heap_warm = 0, tombs_warm = 0;
  const auto t_build = Steady::now();
  for (uint64_t done = 0; done < ops; done += round) {
    MutationBatch add, compact;
    for (uint64_t j = 0; j < round && done + j < ops; ++j) {
      std::string id = Uuid(rng);
      add.mutations.push_back(UpsertNode{"Operation",
                                         id,
                                         {{"tenantId", tenant},
                                          {"clientId", static_cast<int64_t>(rng() % 4'000'000'000ULL)},
                                          {"clock", static_cast<int64_t>(done + j)},
                                          {"seq", static_cast<int64_t>(done + j + 1)},
                                          {"createdAt", "2026-11-26T07:00:00.123456+00:00"}},
                                         1});
      add.mutations.push_back(
          UpsertRelationship{"AFFECTS", id + "/AFFECTS", "Operation", id, "ContentItem", doc, {}, 1});
      add.mutations.push_back(UpsertRelationship{"PERFORMED", id + "/PERFORMED", "User", user, "Operation", id, {}, 1});
      compact.mutations.push_back(DeleteNode{"Operation", id, 2});
    }
    apply(std::move(add));
    clock.Advance(std::chrono::seconds(1));
    apply(std::move(compact));
    if (done == 0) {
      heap_warm = HeapInUse();  // node and relationship slots of one round now exist and are reused
      tombs_warm = store.tombstone_count();
    }
  }
  const double build_s = std::chrono::duration<double>(Steady::now() - t_build).count();
  const size_t tombs = store.tombstone_count();
  const size_t heap_full = HeapInUse();
  if (!store.Compact()) return 1;
  const auto snap_full = std::filesystem::file_size(std::filesystem::path(dir) / "graph.snapshot");

  clock.Advance(std::chrono::hours(25));
  uint64_t purged = 0, calls = 0;
  double longest_ms = 0, total_ms = 0;
  for (bool more = true; more;) {
    const auto t = Steady::now();
    auto r = store.PurgeTombstones(std::chrono::hours(24), 10'000);
    const double ms = std::chrono::duration<double, std::milli>(Steady::now() - t).count();
    if (!r) {
      std::fprintf(stderr, "purge: %s\n", r.error().ToString().c_str());
      return 1;
    }
    ++calls;
    purged += r->purged;
    more = r->more;
    longest_ms = std::max(longest_ms, ms);
    total_ms += ms;
  }
  const size_t heap_after = HeapInUse();
  if (!store.Compact()) return 1;
  const auto snap_after = std::filesystem::file_size(std::filesystem::path(dir) / "graph.snapshot");

  const double per_tomb = static_cast<double>(heap_full - heap_warm) / static_cast<double>(tombs - tombs_warm);
  std::printf("operations compacted: %llu in rounds of %llu (%.1f s to project)\n",
              static_cast<unsigned long long>(ops), static_cast<unsigned long long>(round), build_s);
  std::printf("tombstones held: %zu; heap in use %.1f MB (%.1f bytes per tombstone)\n", tombs, Mb(heap_full), per_tomb);
  std::printf(
      "purge after the horizon: %llu tombstones in %llu calls of <= 10000, %.1f ms in all (%.2f ms a call), "
      "longest call %.2f ms\n",
      static_cast<unsigned long long>(purged), static_cast<unsigned long long>(calls), total_ms,
      total_ms / static_cast<double>(calls), longest_ms);
  std::printf("heap in use after the purge: %.1f MB (%.1f MB given back; %.1f MB above the first round's)\n",
              Mb(heap_after), Mb(static_cast<double>(heap_full) - static_cast<double>(heap_after)),
              Mb(static_cast<double>(heap_after) - static_cast<double>(heap_warm)));
  std::printf("snapshot: %.1f MB with the tombstones, %.3f MB after the purge\n", Mb(snap_full), Mb(snap_after));
  std::printf("tombstones left: %zu\n", store.tombstone_count());
  return store.tombstone_count() == 0 ? 0 : 1;
}
