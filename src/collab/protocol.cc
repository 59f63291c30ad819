#include "collab/protocol.h"

#include "crdt/lib0.h"

namespace cnx::collab {
namespace {

Error Bad(std::string msg) {
  return Error(Module::kCollab, ErrorCode::kInvalidArgument, std::move(msg));
}

std::vector<uint8_t> Frame(uint64_t type, int64_t sub, std::span<const uint8_t> data) {
  crdt::Encoder e;
  e.VarUint(type);
  if (sub >= 0) e.VarUint(static_cast<uint64_t>(sub));
  e.VarUint(data.size());
  e.Raw(data);
  return e.Take();
}

}  // namespace

Result<Message> ParseMessage(std::span<const uint8_t> frame) {
  if (frame.empty()) return std::unexpected(Bad("empty frame"));
  crdt::Decoder d(frame);
  uint64_t type = d.VarUint();
  if (!d.ok()) return std::unexpected(Bad("bad message type"));
  auto read_data = [&](MessageKind kind) -> Result<Message> {
    uint64_t len = d.VarUint();
    if (!d.ok() || len > frame.size() - d.pos()) return std::unexpected(Bad("truncated message payload"));
    return Message{kind, frame.subspan(d.pos(), len)};
  };
  switch (type) {
    case 0: {
      uint64_t sub = d.VarUint();
      if (!d.ok()) return std::unexpected(Bad("truncated sync message"));
      if (sub == 0) return read_data(MessageKind::kSyncStep1);
      if (sub == 1) return read_data(MessageKind::kSyncStep2);
      if (sub == 2) return read_data(MessageKind::kUpdate);
      return std::unexpected(Bad("unknown sync message type " + std::to_string(sub)));
    }
    case 1:
      return read_data(MessageKind::kAwareness);
    case 2:
      return Message{MessageKind::kAuth, frame.subspan(d.pos())};
    case 3:
      return Message{MessageKind::kQueryAwareness, {}};
    default:
      return std::unexpected(Bad("unknown message type " + std::to_string(type)));
  }
}

std::vector<uint8_t> EncodeSyncStep1(std::span<const uint8_t> sv) {
  return Frame(0, 0, sv);
}
std::vector<uint8_t> EncodeSyncStep2(std::span<const uint8_t> update) {
  return Frame(0, 1, update);
}
std::vector<uint8_t> EncodeUpdate(std::span<const uint8_t> update) {
  return Frame(0, 2, update);
}
std::vector<uint8_t> EncodeAwareness(std::span<const uint8_t> a) {
  return Frame(1, -1, a);
}

std::vector<uint8_t> EncodePermissionDenied(std::string_view reason) {
  crdt::Encoder e;
  e.VarUint(2);
  e.VarUint(0);
  e.String(reason);
  return e.Take();
}

Result<std::vector<AwarenessEntry>> ParseAwareness(std::span<const uint8_t> data) {
  crdt::Decoder d(data);
  uint64_t n = d.Count();
  if (!d.ok()) return std::unexpected(Bad("bad awareness update"));
  std::vector<AwarenessEntry> out;
  out.reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    AwarenessEntry e;
    uint64_t client = d.VarUint();
    e.clock = d.VarUint();
    e.state = d.String();
    if (!d.ok() || client > UINT32_MAX) return std::unexpected(Bad("bad awareness entry"));
    e.client = static_cast<uint32_t>(client);
    out.push_back(std::move(e));
  }
  if (!d.done()) return std::unexpected(Bad("trailing bytes after awareness update"));
  return out;
}

std::vector<uint8_t> EncodeAwarenessUpdate(const std::vector<AwarenessEntry>& entries) {
  crdt::Encoder e;
  e.VarUint(entries.size());
  for (const auto& a : entries) {
    e.VarUint(a.client);
    e.VarUint(a.clock);
    e.String(a.state);
  }
  return e.Take();
}

Result<std::pair<uint32_t, uint64_t>> UpdateOrigin(std::span<const uint8_t> update) {
  crdt::Decoder d(update);
  uint64_t blocks = d.VarUint();
  if (!d.ok()) return std::unexpected(Bad("bad update header"));
  if (blocks == 0) return std::pair<uint32_t, uint64_t>{0, 0};
  d.VarUint();  // number of structs
  uint64_t client = d.VarUint();
  uint64_t clock = d.VarUint();
  if (!d.ok() || client > UINT32_MAX) return std::unexpected(Bad("bad update header"));
  return std::pair<uint32_t, uint64_t>{static_cast<uint32_t>(client), clock};
}

}  // namespace cnx::collab
