// Encoding of mutation batches and graph entities as PackStream values: the
// payload of the embedded store's log and snapshot records. Internal to graph.
#pragma once

#include <span>
#include <string>

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

Value EncodeMutation(const Mutation& m);
Result<Mutation> DecodeMutation(Value v);  // takes the value apart (moves)

std::string EncodeBatch(const MutationBatch& b);  // PackStream bytes
Result<MutationBatch> DecodeBatch(std::span<const uint8_t> bytes);

}  // namespace cnx::graph::codec
