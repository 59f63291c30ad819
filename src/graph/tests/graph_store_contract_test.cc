// The contract suite instantiated for the embedded store: in memory, and on
// disk (with a reopen, and with automatic compaction after every few batches).
#include <unistd.h>

#include <atomic>
#include <filesystem>

#include "graph_store_contract.h"

namespace cnx::graph::testing {
namespace {

struct EmbeddedMemoryEnv {
  std::unique_ptr<GraphStore> Open(const std::string&) { return EmbeddedGraphStore::InMemory(); }
  void Finish() {}
  bool CanReopen() const { return false; }
  std::unique_ptr<GraphStore> Reopen() { return nullptr; }
};

template <uint64_t kCompactBytes>
struct EmbeddedDiskEnv {
  std::filesystem::path dir;
  EmbeddedDiskEnv() {
    static std::atomic<int> n{0};
    dir = std::filesystem::temp_directory_path() /
          ("cnx_graph_contract_" + std::to_string(getpid()) + "_" + std::to_string(n++));
    std::filesystem::remove_all(dir);
  }
  ~EmbeddedDiskEnv() { std::filesystem::remove_all(dir); }
  std::unique_ptr<GraphStore> Open(const std::string&) { return Reopen(); }
  void Finish() {}
  bool CanReopen() const { return true; }
  std::unique_ptr<GraphStore> Reopen() {
    auto s = EmbeddedGraphStore::Open(dir, {.sync = true, .compact_after_log_bytes = kCompactBytes});
    EXPECT_TRUE(s.has_value()) << s.error().ToString();
    if (!s) return nullptr;
    return std::move(*s);
  }
};

using Impls = ::testing::Types<EmbeddedMemoryEnv, EmbeddedDiskEnv<0>, EmbeddedDiskEnv<4096>>;
INSTANTIATE_TYPED_TEST_SUITE_P(Embedded, GraphStoreContract, Impls);

}  // namespace
}  // namespace cnx::graph::testing
