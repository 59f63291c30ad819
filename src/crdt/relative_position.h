// Yjs relative positions (yjs 13.6 src/utils/RelativePosition.js): a position
// in a list type (Text, Array, XML) that sticks to an item instead of an
// index, so it survives concurrent edits. Used for collaborative cursors and
// anchored annotations.
//
// A relative position names either the unit it is attached to (`item`), or —
// at the end of a type — the type itself (`tname` for a root, `type` = the id
// of the Item holding a nested type). `assoc` >= 0 attaches it to the unit
// after the index (default), `assoc` < 0 to the unit before it.
//
// Encodings are byte-identical to Yjs: EncodeRelativePosition =
// Y.encodeRelativePosition, RelativePositionToJson = Y.relativePositionToJSON
// (key order and omissions included). Resolution follows
// Y.createAbsolutePositionFromRelativePosition with followUndoneDeletions =
// false (there is no undo manager; the results are the same for every peer).
//
// Thread safety: the functions are pure or read the Doc; the Doc rules apply
// (one thread per document). Errors: decoding returns kDataLoss for truncated
// or malformed bytes, kInvalidArgument for malformed JSON objects.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "crdt/item.h"

namespace cnx::crdt {

class Doc;

struct RelativePosition {
  std::optional<Id> type;            // nested type: id of the Item whose content it is
  std::optional<std::string> tname;  // root type name
  std::optional<Id> item;            // the unit the position is attached to
  // >= 0: attached to the unit after the position; < 0: to the unit before.
  // An integral number; -0 is kept so that re-encoding gives the same bytes.
  double assoc = 0;

  // Y.compareRelativePositions.
  bool operator==(const RelativePosition& o) const {
    return tname == o.tname && item == o.item && type == o.type && assoc == o.assoc;
  }
};

struct AbsolutePosition {
  Type* type = nullptr;
  uint64_t index = 0;  // UTF-16 units for text
  double assoc = 0;
};

// Y.createRelativePositionFromTypeIndex: `index` in countable units of the
// list type `type` (UTF-16 units for text). An index past the end gives the
// end-of-type position (or, with assoc < 0, the last struct's last id).
RelativePosition CreateRelativePositionFromTypeIndex(const Type* type, uint64_t index, double assoc = 0);

// Y.encodeRelativePosition. kInvalidArgument when none of item/tname/type is set.
Result<std::vector<uint8_t>> EncodeRelativePosition(const RelativePosition& pos);
// Y.decodeRelativePosition. Like Yjs, a missing assoc reads as 0 and bytes after
// it are ignored; unlike Yjs, an unknown kind tag or a client id above 2^32-1
// is an error instead of an unusable position.
Result<RelativePosition> DecodeRelativePosition(std::span<const uint8_t> bytes);

// Y.relativePositionToJSON in JSON.stringify key order:
// {"type":{"client","clock"}?,"tname"?,"item":{"client","clock"}?,"assoc"}.
nlohmann::ordered_json RelativePositionToJson(const RelativePosition& pos);
// Y.createRelativePositionFromJSON, with validation: ids are objects with
// integral client (< 2^32) and clock (<= 2^53); tname a string; assoc an
// integer (null/absent = 0).
Result<RelativePosition> RelativePositionFromJson(const nlohmann::json& j);

// Y.createAbsolutePositionFromRelativePosition(rpos, doc, false): nullopt when
// the position refers to content the document has not seen, to garbage-
// collected content or to a type that is gone. A root named by `tname` is
// created (kind unknown) if missing, as doc.get(tname) does.
std::optional<AbsolutePosition> CreateAbsolutePositionFromRelativePosition(const RelativePosition& pos, Doc& doc);

}  // namespace cnx::crdt
