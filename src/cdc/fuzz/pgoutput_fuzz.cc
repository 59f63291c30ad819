// Fuzz target for the pgoutput decoder and the CopyBoth frame parser.
//
// Input: a sequence of records, each a 2-byte big-endian length and that many
// bytes (a short last record takes what is left). A record is a CopyData
// payload ('w' XLogData with header, 'k' keepalive) or a bare pgoutput message.
// All records go through one Decoder, so relation-cache and stream state carry
// over as in a real stream. Every decoded message is rendered as JSON and every
// column is read through the typed accessors.
#include <cstddef>
#include <cstdint>
#include <string>

#include "cdc/event_json.h"
#include "cdc/frames.h"
#include "cdc/pgoutput.h"
#include "cdc/value.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cnx::cdc;
  Decoder decoder;
  Message msg;
  FeedbackPolicy policy(0);
  std::string json;
  size_t pos = 0;
  while (pos < size) {
    size_t len = size - pos >= 2 ? (static_cast<size_t>(data[pos]) << 8 | data[pos + 1]) : 0;
    pos += size - pos >= 2 ? 2 : size - pos;
    if (len > size - pos) len = size - pos;
    std::span<const uint8_t> rec(data + pos, len);
    pos += len;
    if (!rec.empty() && (rec[0] == 'w' || rec[0] == 'k')) {
      auto f = ParseFrame(rec);
      if (!f) continue;
      if (f->kind == Frame::Kind::kKeepalive) {
        policy.OnKeepalive(f->keepalive, {});
        continue;
      }
      rec = f->xlog.message;
    }
    if (!decoder.Decode(rec, msg)) continue;
    policy.OnMessage(msg);
    json.clear();
    AppendMessageJson(json, msg, decoder);
    if (msg.IsChange() && msg.relation != nullptr) {
      for (const auto* tuple : {&msg.old_tuple, &msg.new_tuple}) {
        for (size_t i = 0; i < tuple->size() && i < msg.relation->columns.size(); ++i) {
          Value v((*tuple)[i], msg.relation->columns[i].type_oid);
          (void)v.AsBool();
          (void)v.AsInt();
          (void)v.AsDouble();
          (void)v.AsText();
          (void)v.AsUuid();
          (void)v.AsJsonText();
          (void)v.AsUnixMicros();
          (void)v.AsBytes();
        }
      }
    }
    if (msg.type == MessageType::kCommit) policy.OnDurable(msg.end_lsn);
  }
  (void)policy.Poll({}, 0);
  return 0;
}
