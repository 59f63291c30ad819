// Yjs update v1 algebra without a document: state vectors, delete sets,
// mergeUpdates, diffUpdate and encodeStateVectorFromUpdate, byte-compatible
// with yjs 13.6. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <vector>

#include "base/result.h"
#include "crdt/item.h"

namespace cnx::crdt {

// client -> next expected clock.
using StateVector = std::map<uint32_t, uint64_t>;

std::vector<uint8_t> EncodeStateVector(const StateVector& sv);
// Errors: kDataLoss for truncated or malformed input.
Result<StateVector> DecodeStateVector(std::span<const uint8_t> bytes);

struct DeleteRange {
  uint64_t clock;
  uint64_t len;
};

struct DeleteSet {
  std::map<uint32_t, std::vector<DeleteRange>> clients;

  bool empty() const { return clients.empty(); }
  void Add(uint32_t client, uint64_t clock, uint64_t len) { clients[client].push_back({clock, len}); }
  void SortAndMerge();
  bool Contains(Id id) const;  // requires SortAndMerge()
  // Clients in descending id order, ranges as stored.
  void Write(Encoder& e) const;
  static DeleteSet Read(Decoder& d);
  static DeleteSet Merge(const std::vector<const DeleteSet*>& sets);
};

// An update decoded into structs (in wire order) and its delete set.
struct DecodedUpdate {
  std::vector<std::unique_ptr<Item>> structs;
  DeleteSet ds;
};

// Errors: kDataLoss naming the first problem (truncation, bad tag, bad UTF-8...).
Result<DecodedUpdate> DecodeUpdate(std::span<const uint8_t> update);

// Y.mergeUpdates: one update equivalent to all inputs (gaps become Skip structs).
Result<std::vector<uint8_t>> MergeUpdates(const std::vector<std::span<const uint8_t>>& updates);
// Y.diffUpdate: the structs of `update` not covered by `state_vector`, whole delete set.
Result<std::vector<uint8_t>> DiffUpdate(std::span<const uint8_t> update, std::span<const uint8_t> state_vector);
// Y.encodeStateVectorFromUpdate.
Result<std::vector<uint8_t>> EncodeStateVectorFromUpdate(std::span<const uint8_t> update);

// Builds update bytes struct by struct; a new client block starts whenever
// the client changes (Yjs' LazyStructWriter).
class LazyStructWriter {
 public:
  void Write(const Item& s, uint64_t offset);
  // Writes the struct section into `out`.
  void Finish(Encoder& out);

 private:
  struct Part {
    uint64_t written;
    std::vector<uint8_t> bytes;
  };
  std::vector<Part> parts_;
  Encoder cur_;
  uint32_t client_ = 0;
  uint64_t written_ = 0;
  void Flush();
};

}  // namespace cnx::crdt
