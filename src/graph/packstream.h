// PackStream v1: the value encoding of the Bolt protocol (docs/formats/bolt.md).
//
// Encode writes the smallest form of every integer, size marker and length, as
// Neo4j's drivers do. Decode accepts every form, rejects reserved markers,
// truncated input, non-String map keys, structures with more than 15 fields and
// nesting deeper than kMaxDepth; it never reads past the given buffer. Used by
// the Bolt client and by the embedded store's log and snapshot records.
// Thread safety: stateless functions, safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "base/result.h"
#include "graph/value.h"

namespace cnx::graph::packstream {

inline constexpr int kMaxDepth = 64;

// Appends the encoding of `v` to `out`.
void Encode(const Value& v, std::string& out);
std::string Encode(const Value& v);

// Decodes one value starting at data[0]; *consumed receives its byte length.
// Errors: kDataLoss (truncated / malformed).
Result<Value> DecodeOne(std::span<const uint8_t> data, size_t* consumed);
// Decodes exactly one value that must span the whole buffer.
Result<Value> Decode(std::span<const uint8_t> data);
inline Result<Value> Decode(std::string_view data) {
  return Decode(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
}

}  // namespace cnx::graph::packstream
