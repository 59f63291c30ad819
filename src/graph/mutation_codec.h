// Encoding of mutation batches and graph entities as PackStream values: the
// payload of the embedded store's log and snapshot records. Internal to graph.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "base/result.h"
#include "graph/graph_store.h"
#include "graph/value.h"

namespace cnx::graph::codec {

// Structure tags used in records.
inline constexpr uint8_t kUpsertNodeTag = 'N';
inline constexpr uint8_t kDeleteNodeTag = 'D';
inline constexpr uint8_t kUpsertRelTag = 'R';
inline constexpr uint8_t kDeleteRelTag = 'X';
inline constexpr uint8_t kTombstoneTag = 'T';
inline constexpr uint8_t kEndTag = 'E';
inline constexpr uint8_t kPurgeTag = 'P';

Value EncodeMutation(const Mutation& m);
Result<Mutation> DecodeMutation(Value v);  // takes the value apart (moves)

// A batch as PackStream bytes. With `written_s` (format 2) it is always
// [position, mutations, reproject, force, written_s]; without (format 1)
// [position, mutations] with `reproject` and `force` only when set.
std::string EncodeBatch(const MutationBatch& b, std::optional<uint32_t> written_s = std::nullopt);
// Reads either form; `written_s` (if given) receives the time of format 2.
Result<MutationBatch> DecodeBatch(std::span<const uint8_t> bytes, std::optional<uint32_t>* written_s = nullptr);

// A purge of tombstones (format 2 log record): P([node ids], [relationship ids]).
struct Purge {
  std::vector<std::string> nodes, relationships;
};
std::string EncodePurge(const Purge& p);

// One log record: a batch (with its time when format 2) or a purge.
struct LoggedBatch {
  MutationBatch batch;
  std::optional<uint32_t> written_s;
};
Result<std::variant<LoggedBatch, Purge>> DecodeLogRecord(std::span<const uint8_t> bytes);

}  // namespace cnx::graph::codec
