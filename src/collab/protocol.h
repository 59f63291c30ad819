// y-websocket wire messages (docs/collab.md, shared protocol notes §4–5):
// parsing of one binary frame into a typed message, and the encoders for the
// frames the server sends. Pure functions, no state; safe from any thread.
//
// Errors: Parse returns kInvalidArgument for an empty, truncated or unknown
// frame (the caller closes that connection).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"

namespace cnx::collab {

enum class MessageKind : uint8_t {
  kSyncStep1,       // data = state vector
  kSyncStep2,       // data = update v1
  kUpdate,          // data = update v1
  kAwareness,       // data = awareness update
  kAuth,            // ignored when sent by a client
  kQueryAwareness,  // no data
};

struct Message {
  MessageKind kind;
  std::span<const uint8_t> data;  // points into the parsed frame
};

Result<Message> ParseMessage(std::span<const uint8_t> frame);

std::vector<uint8_t> EncodeSyncStep1(std::span<const uint8_t> state_vector);
std::vector<uint8_t> EncodeSyncStep2(std::span<const uint8_t> update);
std::vector<uint8_t> EncodeUpdate(std::span<const uint8_t> update);
std::vector<uint8_t> EncodeAwareness(std::span<const uint8_t> awareness_update);
// messageAuth permissionDenied with a human-readable reason.
std::vector<uint8_t> EncodePermissionDenied(std::string_view reason);

// One entry of an awareness update; state "null" means the client left.
struct AwarenessEntry {
  uint32_t client = 0;
  uint64_t clock = 0;
  std::string state;  // JSON text
};
Result<std::vector<AwarenessEntry>> ParseAwareness(std::span<const uint8_t> data);
std::vector<uint8_t> EncodeAwarenessUpdate(const std::vector<AwarenessEntry>& entries);

// The first (client, clock) of an update v1's struct section; (0, 0) when the
// update only deletes. Errors: kInvalidArgument when the header is malformed.
Result<std::pair<uint32_t, uint64_t>> UpdateOrigin(std::span<const uint8_t> update);

}  // namespace cnx::collab
