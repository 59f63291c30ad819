// cnx::crdt::Doc: a Yjs-compatible CRDT document (yjs 13.6, update format v1).
//
// A Doc owns its shared types (Text, Map, Array, Xml*), the struct store, the
// pending structs/deletes whose dependencies have not arrived, and observers.
// Handles (Text, Map, Array, XmlFragment, Value) are non-owning views valid
// while the Doc lives; a handle to a nested type becomes invalid once that
// type is deleted and garbage-collected. A Doc is not thread-safe: use one
// thread (or a strand) per document.
//
// All positions are UTF-16 code units, as in Yjs; strings are UTF-8. Use
// Utf8OffsetOfUtf16/Utf16OffsetOfUtf8 (lib0.h) to convert offsets.
//
// Errors: ApplyUpdate returns kDataLoss for truncated/corrupt updates and
// leaves the document unchanged; editing calls with an index beyond the
// length return kInvalidArgument and change nothing.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "crdt/item.h"
#include "crdt/lib0.h"
#include "crdt/update.h"

namespace cnx::crdt {

struct Transaction;
class Text;
class Map;
class Array;
class XmlFragment;

struct DocOptions {
  std::optional<uint32_t> client_id;  // random when unset
  bool gc = true;                     // garbage-collect deleted content (Yjs default)
};

// A value read from a Map or an Array: a plain value or a nested shared type.
struct Value {
  Any any;                  // when type == nullptr
  Type* type = nullptr;     // nested shared type (see TypeRef)
  std::string subdoc_guid;  // set for a subdocument reference (any is then undefined)
  bool is_subdoc = false;
};

// One operation of a text delta (Quill form): a string run, an embed or an
// embedded shared type, with the formatting attributes that apply to it.
struct DeltaOp {
  std::string text;       // when !is_embed
  bool is_embed = false;  // embed value in `embed` or type in `type`
  Any embed;
  Type* type = nullptr;
  std::vector<std::pair<std::string, Any>> attributes;
};

// One step of a list change, in index units (UTF-16 units for text).
struct ListChange {
  enum class Kind : uint8_t { kRetain, kInsert, kDelete };
  Kind kind;
  uint64_t length;
};

// What one transaction changed, reported to observers after it ends.
struct TypeChange {
  std::string root;                 // name of the root type containing the change
  TypeRef ref = TypeRef::kUnknown;  // kind of the changed type
  bool is_root = false;
  bool child_list_changed = false;        // list content (text, array, xml children)
  std::vector<std::string> keys_changed;  // map keys / attributes
  // When child_list_changed: retain/insert/delete steps over the list as it
  // was before the transaction (Yjs' event delta without the content);
  // a trailing retain is omitted.
  std::vector<ListChange> list_changes;
};

struct TransactionEvent {
  bool local = false;
  std::vector<TypeChange> changes;
  StateVector before;
  StateVector after;
  const DeleteSet* deletes = nullptr;  // deleted by this transaction
  std::span<const uint8_t> update;     // the v1 update describing the transaction
};

class Doc {
 public:
  explicit Doc(DocOptions options = {});
  ~Doc();
  Doc(const Doc&) = delete;
  Doc& operator=(const Doc&) = delete;

  uint32_t client_id() const { return client_id_; }
  bool gc() const { return gc_; }

  // Applies an update v1 (remote transaction). Atomic: a corrupt or truncated
  // update is rejected (kDataLoss) and nothing changes. Structs whose
  // dependencies are missing are kept pending and integrated once they arrive.
  Status ApplyUpdate(std::span<const uint8_t> update);
  // The same; when it ends the transaction (not nested in a Transact), sets
  // `*produced` to the update the transaction produced — what an observer
  // sees as TransactionEvent::update, empty when nothing changed (a
  // duplicate, or structs kept pending). Cheaper than an observer for
  // callers that only need the update: no per-type change lists.
  Status ApplyUpdate(std::span<const uint8_t> update, std::vector<uint8_t>* produced);

  // Y.encodeStateAsUpdate: everything not covered by `state_vector` (empty =
  // all), the complete delete set, plus pending data. Errors only for a
  // malformed state vector.
  Result<std::vector<uint8_t>> EncodeStateAsUpdate(std::span<const uint8_t> state_vector = {}) const;
  std::vector<uint8_t> EncodeStateVector() const;
  StateVector GetStateVector() const;

  // Root types; the kind of a root is fixed by the first Get* call.
  Text GetText(std::string_view name);
  Map GetMap(std::string_view name);
  Array GetArray(std::string_view name);
  XmlFragment GetXmlFragment(std::string_view name);

  // Runs `fn` as one local transaction; returns the update it produced (empty
  // when nothing changed). Edits made through handles outside Transact run as
  // transactions of their own.
  std::vector<uint8_t> Transact(const std::function<void()>& fn);

  using ObserverId = uint64_t;
  // Called after every transaction that changed something (local or remote).
  ObserverId Observe(std::function<void(const TransactionEvent&)> fn);
  void Unobserve(ObserverId id);

  // Introspection (golden tests, debugging).
  DeleteSet DeleteSetFromStore() const;
  bool HasPendingStructs() const { return !pending_structs_.empty(); }
  bool HasPendingDeleteSet() const { return pending_ds_.has_value(); }
  const StateVector& PendingMissing() const { return pending_missing_; }
  size_t StructCount() const;

  // The struct (Item, or GC with content kGc) containing `id`, or nullptr when
  // the document has not seen that clock of that client yet (Yjs' getItem
  // after a getState check). Used by relative positions.
  const Item* FindStruct(Id id) const;

  // Internal (used by the type handles).
  Type* Root(std::string_view name, TypeRef ref);
  Transaction* BeginOrJoin(bool* owner);
  void End(Transaction* txn, std::vector<uint8_t>* update_out);
  Transaction* current() { return txn_; }

 private:
  friend struct DocInternals;

  uint32_t client_id_;
  bool gc_;
  std::unordered_map<uint32_t, std::vector<Item*>> clients_;
  std::map<std::string, std::unique_ptr<Type>, std::less<>> roots_;
  std::vector<uint8_t> pending_structs_;  // update v1 bytes
  StateVector pending_missing_;
  std::optional<DeleteSet> pending_ds_;
  Transaction* txn_ = nullptr;
  std::vector<std::pair<ObserverId, std::function<void(const TransactionEvent&)>>> observers_;
  ObserverId next_observer_ = 1;
};

// Common base of the handles.
class TypeHandle {
 public:
  TypeHandle() = default;
  explicit TypeHandle(Type* t) : type_(t) {}
  Type* type() const { return type_; }
  bool valid() const { return type_ != nullptr; }

 protected:
  Type* type_ = nullptr;
};

using Attributes = std::vector<std::pair<std::string, Any>>;

class Text : public TypeHandle {
 public:
  using TypeHandle::TypeHandle;
  uint64_t Length() const;  // UTF-16 units
  std::string ToString() const;
  std::vector<DeltaOp> ToDelta() const;
  // With `attributes` unset the text takes the formatting of its position;
  // otherwise exactly those attributes (null values remove a key).
  Status Insert(uint64_t index, std::string_view utf8, const std::optional<Attributes>& attributes = std::nullopt);
  Status InsertEmbed(uint64_t index, const Any& embed, const Attributes& attributes = {});
  Status Delete(uint64_t index, uint64_t length);
  Status Format(uint64_t index, uint64_t length, const Attributes& attributes);
};

class Map : public TypeHandle {
 public:
  using TypeHandle::TypeHandle;
  std::optional<Value> Get(std::string_view key) const;
  std::vector<std::string> Keys() const;  // sorted
  size_t Size() const;
  // Binary values (Any::Binary) are stored as Yjs ContentBinary.
  void Set(std::string_view key, const Any& value);
  Type* SetType(std::string_view key, TypeRef ref, std::string_view node_name = {});
  void Delete(std::string_view key);
};

class Array : public TypeHandle {
 public:
  using TypeHandle::TypeHandle;
  uint64_t Length() const;
  std::vector<Value> ToVector() const;
  Status Insert(uint64_t index, const std::vector<Any>& values);
  Result<Type*> InsertType(uint64_t index, TypeRef ref, std::string_view node_name = {});
  Status Delete(uint64_t index, uint64_t length);
};

// XML types are kept and encoded losslessly; read access only.
class XmlFragment : public TypeHandle {
 public:
  using TypeHandle::TypeHandle;
  std::vector<Value> Children() const;
  // Y.XmlFragment.toString(): elements as tags with sorted attributes, text
  // formatting as nested tags.
  std::string ToString() const;
};

// Visible content of any type, for generic traversal.
std::vector<Value> ListValues(const Type* t);
std::vector<std::pair<std::string, Value>> MapEntries(const Type* t);  // sorted by key
std::vector<DeltaOp> TypeDelta(const Type* t);
// toString() of a type as Yjs computes it (text content for Text, XML markup
// for XML types).
std::string TypeString(const Type* t);

}  // namespace cnx::crdt
