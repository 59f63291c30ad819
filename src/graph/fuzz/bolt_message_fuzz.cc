// Fuzzes what the Bolt client reads from a server: the byte stream is split
// into chunked messages, each decoded as a reply; PackStream values that
// decode must re-encode to bytes that decode to the same value.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "graph/bolt_connection.h"
#include "graph/packstream.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cnx::graph;
  std::span<const uint8_t> in(data, size);
  std::vector<std::string> messages;
  auto used = SplitMessages(in, 1 << 20, messages);
  if (used && *used > size) std::abort();
  for (const auto& m : messages) (void)DecodeReply(m);
  // The raw input as one PackStream value.
  size_t consumed = 0;
  auto v = packstream::DecodeOne(in, &consumed);
  if (v) {
    if (consumed == 0 || consumed > size) std::abort();
    std::string again = packstream::Encode(*v);
    auto back = packstream::Decode(again);
    if (!back || !(*back == *v)) std::abort();
    (void)DecodeReply(again);
  }
  return 0;
}
