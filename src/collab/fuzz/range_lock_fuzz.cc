// Fuzzes the finer-lock check of WebSocket updates (range_locks.h) with
// arbitrary bytes as Bob's update to a document where Alice locks the second
// paragraph. Findings: a crash, a sanitizer report, an accepted update that
// changes the locked units (the items in the range, compared by id) or loses
// its anchor, or a check that no longer
// refuses an insertion inside the range afterwards (the scratch copy out of
// step with the document).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "collab/annotations.h"
#include "collab/range_locks.h"
#include "crdt/doc.h"
#include "crdt/lib0.h"

namespace {

using cnx::Uuid;
using cnx::collab::RangeLocks;
using cnx::collab::ResolveAnchor;

void Finding(const char* what) {
  std::fprintf(stderr, "range_lock_fuzz: %s\n", what);
  std::abort();
}

// The units in the locked range now, by id (client, clock of each UTF-16
// unit or embed), or nullopt when the anchor does not resolve. Ids, not the
// string: embeds and other non-string content count as positions but are not
// in Text::ToString.
std::optional<std::vector<std::pair<uint32_t, uint64_t>>> Locked(cnx::crdt::Doc& doc, const nlohmann::json& anchor) {
  auto r = ResolveAnchor(doc, anchor);
  if (!r) return std::nullopt;
  std::vector<std::pair<uint32_t, uint64_t>> units;
  for (const cnx::crdt::Item* it = doc.GetText("content").type()->start; it != nullptr; it = it->right) {
    if (!it->countable() || it->deleted) continue;
    for (uint64_t k = 0; k < it->length; ++k) units.emplace_back(it->id.client, it->id.clock + k);
  }
  if (r->end > units.size()) Finding("the anchor resolves past the text");
  return std::vector<std::pair<uint32_t, uint64_t>>(units.begin() + static_cast<ptrdiff_t>(r->start),
                                                    units.begin() + static_cast<ptrdiff_t>(r->end));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Uuid alice = *Uuid::Parse("00000000-0000-4000-8000-00000000000a");
  static const Uuid bob = *Uuid::Parse("00000000-0000-4000-8000-00000000000b");
  cnx::crdt::Doc server(cnx::crdt::DocOptions{.client_id = 1});
  // The same document as the seeds (range_lock_seeds, made with Yjs).
  (void)server.GetText("content").Insert(0, "para one\npara two\npara three\n");
  RangeLocks locks;
  nlohmann::json lock = {{"id", "l1"},
                         {"holderUserId", alice.ToString()},
                         {"granularity", "paragraph"},
                         {"context", {{"start", 9}, {"end", 18}}},
                         {"expiresAt", "2030-01-01T00:00:00Z"}};
  locks.Set(nlohmann::json::array({lock}), server, "content");
  const nlohmann::json anchor = locks.AnchorOf("l1");
  const auto before = Locked(server, anchor);
  if (!before || before->size() != 9 || (*before)[0] != std::pair<uint32_t, uint64_t>{1, 9}) {
    Finding("the lock is not anchored on its paragraph");
  }
  uint64_t seq = 1;
  std::span<const uint8_t> update(data, size);
  if (!locks.Check(server, seq, update, bob, "content")) {
    std::vector<uint8_t> produced;
    if (server.ApplyUpdate(update, &produced)) {
      if (!produced.empty() || server.HasPendingStructs() || server.HasPendingDeleteSet()) {
        locks.Applied(++seq, update, true);
      }
      auto after = Locked(server, anchor);
      if (!after) Finding("an accepted update lost the lock's anchor");
      if (*after != *before) Finding("an accepted update changed the locked text");
    }
  }
  // An editor in step with the server inserting inside the range is refused.
  auto r = ResolveAnchor(server, anchor);
  if (!r) Finding("the lock's anchor does not resolve");
  cnx::crdt::Doc editor(cnx::crdt::DocOptions{.client_id = 7});
  auto state = server.EncodeStateAsUpdate();
  if (!state || !editor.ApplyUpdate(*state)) Finding("the server's state does not apply");
  auto probe = editor.Transact([&] { (void)editor.GetText("content").Insert(r->start + 1, "Q"); });
  if (!probe.empty() && !server.HasPendingStructs() && !server.HasPendingDeleteSet() &&
      !locks.Check(server, seq, probe, bob, "content")) {
    Finding("an insertion inside the locked range was accepted");
  }
  return 0;
}
