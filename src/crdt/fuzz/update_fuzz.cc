// Fuzz target: arbitrary bytes as a Yjs update v1. Applying must either fail
// cleanly (document unchanged) or succeed; the update algebra must not crash,
// and a successfully applied document must re-encode into an update that
// loads into a fresh replica with the same state vector.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "crdt/doc.h"
#include "crdt/golden_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cnx::crdt;
  std::span<const uint8_t> in(data, size);
  Doc doc(DocOptions{.client_id = 1});
  doc.GetText("t");
  doc.GetMap("m");
  doc.GetArray("a");
  auto before = doc.EncodeStateAsUpdate();
  auto st = doc.ApplyUpdate(in);
  if (!st) {
    if (*doc.EncodeStateAsUpdate() != *before) __builtin_trap();  // not atomic
  } else {
    auto full = doc.EncodeStateAsUpdate();
    if (!full) __builtin_trap();
    Doc copy(DocOptions{.client_id = 2});
    if (!copy.ApplyUpdate(*full)) __builtin_trap();
    if (copy.EncodeStateVector() != doc.EncodeStateVector()) __builtin_trap();
    // Second application is a no-op.
    if (!doc.ApplyUpdate(in)) __builtin_trap();
    (void)doc.GetText("t").ToString();
    (void)doc.GetText("t").ToDelta();
  }
  std::vector<std::span<const uint8_t>> two{in, in};
  (void)MergeUpdates(two);
  (void)EncodeStateVectorFromUpdate(in);
  (void)InspectUpdate(in);
  static const uint8_t kSv[] = {1, 1, 2};
  (void)DiffUpdate(in, kSv);
  return 0;
}
