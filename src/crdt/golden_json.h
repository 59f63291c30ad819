// JSON views of documents in the conventions of the golden Yjs test data
// (shared/testdata/yjs/README.md): maps with sorted keys, nested types as
// {"$ytype": ..., "value": ...}, binary as {"$binary": base64}, undefined as
// {"$undefined": true}, -0 / non-finite numbers as {"$number": "..."}.
#pragma once

#include <nlohmann/json.hpp>

#include "crdt/doc.h"

namespace cnx::crdt {

nlohmann::json AnyToJson(const Any& v);
nlohmann::json ValueToJson(const Value& v);
// The content of a type: string (text), object (map), array (array), tree (xml).
nlohmann::json TypeToJson(const Type* t);
// [{insert, attributes?}, ...]
nlohmann::json DeltaToJson(const std::vector<DeltaOp>& delta);
// {"client": [[clock, len], ...]} with clients ascending.
nlohmann::json DeleteSetToJson(const DeleteSet& ds);
nlohmann::json StateVectorToJson(const StateVector& sv);
const char* TypeRefName(TypeRef ref);  // "YText", "YMap", ...

// An update v1 parsed struct by struct, in the form of the golden data's
// `*Decoded` fields (shared/tools/yjs/yjs-v1-inspect.mjs): client blocks with
// byte offsets, info bytes, origins, parents and contents, and the delete set.
// Errors: kDataLoss for malformed input (trailing bytes included).
Result<nlohmann::json> InspectUpdate(std::span<const uint8_t> update);

}  // namespace cnx::crdt

namespace cnx::crdt {

// Applies the `updates` of a golden case (shared/testdata/yjs/*.json) in order
// to a fresh document (gc and roots as the case says) and returns an object
// with the keys of the case's `expected` (json, textDelta, stateVector,
// stateVectorMap, deleteSet, pending, mergedUpdate, mergeUpdates,
// mergeUpdatesStateVector, diff). `steps` (optional out) receives the state
// after each update in the form of the case's `steps`.
Result<nlohmann::json> ReplayGoldenCase(const nlohmann::json& golden_case, nlohmann::json* steps = nullptr);

// The visible state of `doc` for the given roots ({name: kind}): json and textDelta.
nlohmann::json RootsJson(Doc& doc, const nlohmann::json& roots);
nlohmann::json RootsTextDelta(Doc& doc, const nlohmann::json& roots);
void CreateRoots(Doc& doc, const nlohmann::json& roots);

}  // namespace cnx::crdt
