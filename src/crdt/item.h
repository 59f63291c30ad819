// Internal representation of Yjs structs (Item, GC, Skip) and their content,
// shared by the document (doc.cc) and the document-less update algebra
// (update.cc). Not part of the public API.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "crdt/lib0.h"

namespace cnx::crdt {

struct Id {
  uint32_t client = 0;
  uint64_t clock = 0;
  bool operator==(const Id&) const = default;
};

enum class ContentRef : uint8_t {
  kGc = 0,
  kDeleted = 1,
  kJson = 2,
  kBinary = 3,
  kString = 4,
  kEmbed = 5,
  kFormat = 6,
  kType = 7,
  kAny = 8,
  kDoc = 9,
  kSkip = 10,
};

enum class TypeRef : uint8_t {
  kArray = 0,
  kMap = 1,
  kText = 2,
  kXmlElement = 3,
  kXmlFragment = 4,
  kXmlHook = 5,
  kXmlText = 6,
  kUnknown = 255,  // a root created by an update before the application named its kind
};

class Doc;
struct Item;
struct Transaction;

// A shared type: the list (start..right) and the map (key -> newest entry).
struct Type {
  Doc* doc = nullptr;
  TypeRef ref = TypeRef::kUnknown;
  std::string name;       // nodeName (XmlElement) or hookName (XmlHook)
  std::string root_name;  // set for root types
  Item* item = nullptr;   // the Item whose content this is; null for roots
  Item* start = nullptr;
  std::unordered_map<std::string, Item*> map;
  uint64_t length = 0;  // countable, non-deleted units of the list
  bool has_formatting = false;
  // One search marker: `marker_index` visible units precede `marker`.
  Item* marker = nullptr;
  uint64_t marker_index = 0;
};

struct Content {
  ContentRef ref = ContentRef::kDeleted;
  uint64_t len = 0;            // kDeleted, kGc, kSkip
  std::string str;             // kString (UTF-8), kBinary, kFormat key, kDoc guid
  std::vector<Any> values;     // kAny, kJson; kEmbed/kFormat value; kDoc options
  std::unique_ptr<Type> type;  // kType

  uint64_t Length() const;  // in clock units
  bool Countable() const {
    return ref != ContentRef::kDeleted && ref != ContentRef::kFormat && ref != ContentRef::kGc &&
           ref != ContentRef::kSkip;
  }
  bool Mergeable() const {
    return ref == ContentRef::kString || ref == ContentRef::kAny || ref == ContentRef::kJson ||
           ref == ContentRef::kDeleted;
  }
  // Splits at `offset` clock units; this keeps the left part.
  Content Splice(uint64_t offset);
  void Append(Content&& right);
  // Writes the body (without info byte) starting at `offset` units.
  void Write(Encoder& e, uint64_t offset) const;
  Content Clone() const;  // deep copy except for kType (type not copied)
};

enum class ParentKind : uint8_t { kNone, kType, kRootName, kId };

// A struct. GC and Skip are Items whose content.ref is kGc / kSkip.
struct Item {
  Id id;
  uint64_t length = 0;
  Item* left = nullptr;
  Item* right = nullptr;
  Id origin;
  Id right_origin;
  bool has_origin = false;
  bool has_right_origin = false;
  bool has_parent_sub = false;
  bool deleted = false;
  bool keep = false;
  bool in_store = false;  // owned by a document's struct store
  ParentKind parent_kind = ParentKind::kNone;
  Type* parent = nullptr;   // kType
  Id parent_id;             // kId
  std::string parent_name;  // kRootName
  std::string parent_sub;
  Content content;

  bool is_gc() const { return content.ref == ContentRef::kGc; }
  bool is_skip() const { return content.ref == ContentRef::kSkip; }
  bool is_item() const { return !is_gc() && !is_skip(); }
  bool countable() const { return content.Countable(); }
  bool visible() const { return !deleted && countable(); }
  Id last_id() const { return Id{id.client, id.clock + length - 1}; }
  // Writes info byte + body, as Item.write / GC.write / Skip.write do.
  void Write(Encoder& e, uint64_t offset) const;
};

// Reads a content body for info byte `info` (refs 1..9). Errors go to `d`.
Content ReadContent(Decoder& d, uint8_t info);

// A struct read from an update, not bound to a document.
std::unique_ptr<Item> ReadStruct(Decoder& d, uint32_t client, uint64_t clock);

// Slices a wire struct: returns the part from `diff` on (sliceStruct in Yjs).
std::unique_ptr<Item> SliceWireStruct(const Item& s, uint64_t diff);

}  // namespace cnx::crdt
