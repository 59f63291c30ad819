// Fuzzes the y-websocket frame decoders a client's bytes reach before the CRDT
// does: ParseMessage (one binary frame), ParseAwareness (an awareness update)
// and UpdateOrigin (the header of an update v1). Findings: a crash, a sanitizer
// report, an error other than kInvalidArgument, or a frame that parses but does
// not re-encode to the same message (sync step 1/2, update, awareness).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <vector>

#include "collab/protocol.h"

namespace {

void Finding(const char* what) {
  std::fprintf(stderr, "frame_fuzz: %s\n", what);
  std::abort();
}

void ExpectInvalidArgument(const cnx::Error& e, const char* what) {
  if (e.code() != cnx::ErrorCode::kInvalidArgument) Finding(what);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cnx::collab;
  const std::span<const uint8_t> frame(data, size);
  auto msg = ParseMessage(frame);
  if (!msg) {
    ExpectInvalidArgument(msg.error(), "ParseMessage refused with a code other than invalid_argument");
  } else {
    std::vector<uint8_t> again;
    switch (msg->kind) {
      case MessageKind::kSyncStep1:
        again = EncodeSyncStep1(msg->data);
        break;
      case MessageKind::kSyncStep2:
        again = EncodeSyncStep2(msg->data);
        break;
      case MessageKind::kUpdate:
        again = EncodeUpdate(msg->data);
        break;
      case MessageKind::kAwareness:
        again = EncodeAwareness(msg->data);
        break;
      default:
        break;
    }
    if (!again.empty()) {
      auto back = ParseMessage(again);
      if (!back || back->kind != msg->kind ||
          !std::equal(back->data.begin(), back->data.end(), msg->data.begin(), msg->data.end())) {
        Finding("a parsed frame does not survive re-encoding");
      }
    }
  }
  auto awareness = ParseAwareness(frame);
  if (!awareness) {
    ExpectInvalidArgument(awareness.error(), "ParseAwareness refused with a code other than invalid_argument");
  } else {
    auto encoded = EncodeAwarenessUpdate(*awareness);
    auto back = ParseAwareness(encoded);
    if (!back || back->size() != awareness->size()) Finding("an awareness update does not survive re-encoding");
    for (size_t i = 0; back && i < back->size(); ++i) {
      const auto& a = (*awareness)[i];
      const auto& b = (*back)[i];
      if (a.client != b.client || a.clock != b.clock || a.state != b.state) Finding("awareness entry changed");
    }
  }
  auto origin = UpdateOrigin(frame);
  if (!origin) ExpectInvalidArgument(origin.error(), "UpdateOrigin refused with a code other than invalid_argument");
  return 0;
}
