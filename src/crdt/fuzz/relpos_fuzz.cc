// Fuzz target: arbitrary bytes as an encoded Yjs relative position (and as its
// JSON form). Decoding must fail cleanly or give a position whose encoding
// decodes to the same position and re-encodes to the same bytes; its JSON form
// must read back to the same position; resolving it against a document with
// text, a nested text and deletions must not crash and must stay in range for
// list types.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "crdt/doc.h"
#include "crdt/relative_position.h"

namespace {

cnx::crdt::Doc& Fixture() {
  using namespace cnx::crdt;
  static Doc* doc = [] {
    auto* d = new Doc(DocOptions{.client_id = 1});
    auto t = d->GetText("t");
    (void)t.Insert(0, "hello w\xC3\xB6rld \xF0\x9F\x98\x80!");
    (void)t.Delete(2, 3);
    (void)t.Format(1, 4, {{"bold", Any::Bool(true)}});
    Type* nested = d->GetMap("m").SetType("nested", TypeRef::kText);
    (void)Text(nested).Insert(0, "abc");
    (void)Text(nested).Delete(1, 1);
    (void)d->GetArray("a").Insert(0, {Any::Number(1), Any::Number(2)});
    return d;
  }();
  return *doc;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cnx::crdt;
  std::span<const uint8_t> in(data, size);
  auto rp = DecodeRelativePosition(in);
  if (rp) {
    auto bytes = EncodeRelativePosition(*rp);
    if (!bytes) __builtin_trap();  // a decoded position always names something
    auto again = DecodeRelativePosition(*bytes);
    if (!again || !(*again == *rp)) __builtin_trap();
    auto bytes2 = EncodeRelativePosition(*again);
    if (!bytes2 || *bytes2 != *bytes) __builtin_trap();
    // JSON form (Yjs drops an empty tname).
    RelativePosition expect = *rp;
    if (expect.tname && expect.tname->empty()) expect.tname.reset();
    auto from_json = RelativePositionFromJson(nlohmann::json::parse(RelativePositionToJson(*rp).dump()));
    if (from_json.has_value() != (expect.item || expect.tname || expect.type)) __builtin_trap();
    if (from_json && !(*from_json == expect)) __builtin_trap();
    if (auto abs = CreateAbsolutePositionFromRelativePosition(*rp, Fixture())) {
      if (abs->type == nullptr) __builtin_trap();
      // Within the list of a list type. (A position on a map entry resolves, as
      // in Yjs, to the entry's place in its key's history: no list bound.)
      if (abs->type->ref != TypeRef::kMap && abs->index > abs->type->length) __builtin_trap();
    }
  }
  auto j = nlohmann::json::parse(std::string_view(reinterpret_cast<const char*>(data), size), nullptr, false);
  if (!j.is_discarded()) {
    if (auto p = RelativePositionFromJson(j)) {
      if (!EncodeRelativePosition(*p)) __builtin_trap();
      (void)CreateAbsolutePositionFromRelativePosition(*p, Fixture());
    }
  }
  return 0;
}
