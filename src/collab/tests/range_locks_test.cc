#include "collab/range_locks.h"

#include <gtest/gtest.h>

#include <functional>
#include <random>

#include "crdt/doc.h"

namespace cnx::collab {
namespace {

const Uuid kAlice = *Uuid::Parse("00000000-0000-4000-8000-00000000000a");
const Uuid kBob = *Uuid::Parse("00000000-0000-4000-8000-00000000000b");

// "para one\n" [0, 9), "para two\n" [9, 18), "para three\n" [18, 29).
constexpr std::string_view kText = "para one\npara two\npara three\n";

nlohmann::json Lock(const std::string& id, const Uuid& holder, const std::string& granularity, nlohmann::json context) {
  return {{"id", id},
          {"holderUserId", holder.ToString()},
          {"granularity", granularity},
          {"context", std::move(context)},
          {"expiresAt", "2030-01-01T00:00:00Z"}};
}

// The server's document, its lock list and an editor of Bob in step with it.
struct Fixture {
  crdt::Doc server{crdt::DocOptions{.client_id = 1}};
  RangeLocks locks;
  uint64_t seq = 0;  // updates applied to `server`

  Fixture() {
    auto seed = server.Transact([&] { ASSERT_TRUE(server.GetText("content").Insert(0, kText).has_value()); });
    ++seq;
    locks.Set(nlohmann::json::array({Lock("l1", kAlice, "paragraph", {{"start", 9}, {"end", 18}})}), server, "content");
  }
  // A fresh editor with the server's state (a reloaded client).
  std::unique_ptr<crdt::Doc> Editor(uint32_t client) {
    auto d = std::make_unique<crdt::Doc>(crdt::DocOptions{.client_id = client});
    auto state = server.EncodeStateAsUpdate();
    EXPECT_TRUE(state.has_value());
    EXPECT_TRUE(d->ApplyUpdate(*state).has_value());
    return d;
  }
  // Checks `update` from `user` as the hub does; applies it when accepted.
  std::optional<std::string> Send(const Uuid& user, const std::vector<uint8_t>& update) {
    bool checked = locks.Restricts(user);
    if (checked) {
      if (auto refusal = locks.Check(server, seq, update, user, "content")) return refusal;
    }
    std::vector<uint8_t> produced;
    EXPECT_TRUE(server.ApplyUpdate(update, &produced).has_value());
    if (!produced.empty()) locks.Applied(++seq, update, checked);
    return std::nullopt;
  }
  std::string Text() { return server.GetText("content").ToString(); }
};

std::vector<uint8_t> Edit(crdt::Doc& d, const std::function<void(crdt::Text&)>& fn) {
  return d.Transact([&] {
    auto t = d.GetText("content");
    fn(t);
  });
}

TEST(collab_range_locks, InsertionsInsideTheLockedParagraphAreRefused) {
  Fixture f;
  EXPECT_TRUE(f.locks.Restricts(kBob));
  EXPECT_FALSE(f.locks.Restricts(kAlice));
  auto bob = f.Editor(2);
  auto refusal = f.Send(kBob, Edit(*bob, [](crdt::Text& t) { (void)t.Insert(12, "X"); }));
  ASSERT_TRUE(refusal.has_value());
  EXPECT_NE(refusal->find("locked by user " + kAlice.ToString()), std::string::npos) << *refusal;
  EXPECT_NE(refusal->find("paragraph lock"), std::string::npos) << *refusal;
  EXPECT_EQ(f.Text(), kText);  // nothing applied
  // In front of the first locked character: it would join the paragraph.
  bob = f.Editor(3);
  EXPECT_TRUE(f.Send(kBob, Edit(*bob, [](crdt::Text& t) { (void)t.Insert(9, "X"); })).has_value());
  // The last character (the newline) too.
  bob = f.Editor(4);
  EXPECT_TRUE(f.Send(kBob, Edit(*bob, [](crdt::Text& t) { (void)t.Insert(17, "X"); })).has_value());
  EXPECT_EQ(f.Text(), kText);
  // At the start of the next paragraph and at the end of the previous one: allowed.
  bob = f.Editor(5);
  {
    auto r = f.Send(kBob, Edit(*bob, [](crdt::Text& t) { (void)t.Insert(18, "B"); }));
    EXPECT_FALSE(r.has_value()) << *r;
  }
  EXPECT_FALSE(f.Send(kBob, Edit(*bob, [](crdt::Text& t) { (void)t.Insert(8, "A"); })).has_value());
  EXPECT_EQ(f.Text(), "para oneA\npara two\nBpara three\n");
}

TEST(collab_range_locks, DeletionsAndFormattingOverlappingTheLockAreRefused) {
  Fixture f;
  auto bob = f.Editor(2);
  EXPECT_TRUE(f.Send(kBob, Edit(*bob, [](crdt::Text& t) { (void)t.Delete(5, 6); })).has_value());  // "one\npa"
  bob = f.Editor(3);
  EXPECT_TRUE(f.Send(kBob, Edit(*bob, [](crdt::Text& t) { (void)t.Delete(17, 2); })).has_value());  // "\np"
  EXPECT_EQ(f.Text(), kText);
  bob = f.Editor(4);
  crdt::Attributes bold = {{"bold", crdt::Any::Bool(true)}};
  EXPECT_TRUE(f.Send(kBob, Edit(*bob, [&](crdt::Text& t) { (void)t.Format(0, 29, bold); })).has_value());
  bob = f.Editor(5);
  EXPECT_TRUE(f.Send(kBob, Edit(*bob, [&](crdt::Text& t) { (void)t.Format(12, 2, bold); })).has_value());
  bob = f.Editor(6);
  EXPECT_FALSE(f.Send(kBob, Edit(*bob, [&](crdt::Text& t) { (void)t.Format(0, 4, bold); })).has_value());
  EXPECT_FALSE(f.Send(kBob, Edit(*bob, [](crdt::Text& t) { (void)t.Delete(18, 5); })).has_value());
  EXPECT_EQ(f.Text(), "para one\npara two\nthree\n");
}

TEST(collab_range_locks, TheLockedTextIsFollowedWhileOthersEdit) {
  Fixture f;
  auto bob = f.Editor(2);
  auto alice = f.Editor(3);
  // Bob types before the paragraph, Alice (the holder) inside it: both apply.
  EXPECT_FALSE(f.Send(kBob, Edit(*bob, [](crdt::Text& t) { (void)t.Insert(0, "Intro\n"); })).has_value());
  EXPECT_FALSE(f.Send(kAlice, Edit(*alice, [](crdt::Text& t) { (void)t.Insert(13, " (Alice)"); })).has_value());
  ASSERT_EQ(f.Text(), "Intro\npara one\npara (Alice) two\npara three\n");
  // The byte range [9, 18) now holds other text; the lock still protects
  // Alice's paragraph, at [15, 32).
  bob = f.Editor(4);
  EXPECT_FALSE(f.Send(kBob, Edit(*bob, [](crdt::Text& t) { (void)t.Insert(10, "X"); })).has_value());
  bob = f.Editor(5);
  EXPECT_TRUE(f.Send(kBob, Edit(*bob, [](crdt::Text& t) { (void)t.Insert(30, "Y"); })).has_value());
  EXPECT_EQ(f.Text(), "Intro\nparaX one\npara (Alice) two\npara three\n");
}

TEST(collab_range_locks, LocksWithoutRangeAndUpdatesOnRefusedChanges) {
  Fixture f;
  f.locks.Set(nlohmann::json::array({Lock("l2", kAlice, "other", nlohmann::json::object())}), f.server, "content");
  auto bob = f.Editor(2);
  auto refusal = f.Send(kBob, Edit(*bob, [](crdt::Text& t) { (void)t.Insert(0, "X"); }));
  ASSERT_TRUE(refusal.has_value());
  EXPECT_NE(refusal->find("the document is locked"), std::string::npos) << *refusal;
  // Released: Bob's editor still holds the refused insert, so its next
  // update depends on it. Under a lock that update is refused as well ...
  f.locks.Set(nlohmann::json::array({Lock("l1", kAlice, "paragraph", {{"start", 9}, {"end", 18}})}), f.server,
              "content");
  auto next = Edit(*bob, [](crdt::Text& t) { (void)t.Insert(30, "Z"); });
  refusal = f.Send(kBob, next);
  ASSERT_TRUE(refusal.has_value());
  EXPECT_NE(refusal->find("reload the document"), std::string::npos) << *refusal;
  EXPECT_EQ(f.Text(), kText);
  // ... and a reloaded editor works.
  bob = f.Editor(3);
  EXPECT_FALSE(f.Send(kBob, Edit(*bob, [](crdt::Text& t) { (void)t.Insert(29, "Z"); })).has_value());
  EXPECT_EQ(f.Text(), std::string(kText) + "Z");
  // No lock left: nothing is restricted.
  f.locks.Set(nlohmann::json::array(), f.server, "content");
  EXPECT_TRUE(f.locks.empty());
  EXPECT_FALSE(f.locks.Restricts(kBob));
}

TEST(collab_range_locks, AnnouncedAnchorsAndKeptAnchors) {
  Fixture f;
  auto a = f.locks.AnchorOf("l1");
  ASSERT_TRUE(a.is_object());
  EXPECT_EQ(a["kind"], "yjs-relative-position");
  EXPECT_TRUE(f.locks.AnchorOf("nope").is_null());
  // The same lock seen again (renewed: new expiry) keeps its anchor even though
  // its byte offsets now name other text.
  auto bob = f.Editor(2);
  EXPECT_FALSE(f.Send(kBob, Edit(*bob, [](crdt::Text& t) { (void)t.Insert(0, "0123456789"); })).has_value());
  auto renewed = Lock("l1", kAlice, "paragraph", {{"start", 9}, {"end", 18}});
  renewed["expiresAt"] = "2031-01-01T00:00:00Z";
  f.locks.Set(nlohmann::json::array({renewed}), f.server, "content");
  EXPECT_EQ(f.locks.AnchorOf("l1"), a);
  bob = f.Editor(3);
  auto refusal = f.Send(kBob, Edit(*bob, [](crdt::Text& t) { (void)t.Insert(22, "X"); }));
  ASSERT_TRUE(refusal.has_value());
  EXPECT_NE(refusal->find("2031-01-01"), std::string::npos) << *refusal;
}

TEST(collab_range_locks, StoredAnchorsWinOverOffsets) {
  Fixture f;
  // The fixture's lock was anchored from its offsets: it is reported until stored.
  EXPECT_FALSE(
      f.locks.NeedsAnchoring(nlohmann::json::array({Lock("l1", kAlice, "paragraph", {{"start", 9}})}), "content"));
  auto unstored = f.locks.Unstored();
  ASSERT_EQ(unstored.size(), 1u);
  EXPECT_EQ(unstored[0].first, "l1");
  EXPECT_EQ(unstored[0].second, f.locks.AnchorOf("l1"));
  f.locks.MarkStored("l1");
  EXPECT_TRUE(f.locks.Unstored().empty());

  // Text typed before the paragraphs; a lock seen for the first time with a
  // stored anchor (taken before, on "para three\n") protects that text, not
  // what its offsets name now.
  RangeLocks other;
  other.Set(nlohmann::json::array({Lock("l2", kAlice, "paragraph", {{"start", 18}, {"end", 29}})}), f.server,
            "content");
  const auto stored = other.AnchorOf("l2");  // "para three\n"
  ASSERT_TRUE(stored.is_object());
  auto bob = f.Editor(4);
  EXPECT_FALSE(f.Send(kBob, Edit(*bob, [](crdt::Text& t) { (void)t.Insert(0, "0123456789"); })).has_value());
  auto l2 = Lock("l2", kAlice, "paragraph", {{"start", 18}, {"end", 29}});
  EXPECT_TRUE(f.locks.NeedsAnchoring(nlohmann::json::array({l2}), "content"));
  l2["storedAnchor"] = stored;
  EXPECT_FALSE(f.locks.NeedsAnchoring(nlohmann::json::array({l2}), "content"));
  auto l1 = Lock("l1", kAlice, "paragraph", {{"start", 9}, {"end", 18}});
  f.locks.Set(nlohmann::json::array({l1, l2}), f.server, "content");
  EXPECT_EQ(f.locks.AnchorOf("l2"), stored);
  EXPECT_TRUE(f.locks.Unstored().empty());
  // "para three\n" is now at 28..39: deleting inside it is refused, text
  // before both locks may go.
  bob = f.Editor(5);
  EXPECT_TRUE(f.Send(kBob, Edit(*bob, [](crdt::Text& t) { (void)t.Delete(33, 3); })).has_value());
  bob = f.Editor(6);
  EXPECT_FALSE(f.Send(kBob, Edit(*bob, [](crdt::Text& t) { (void)t.Delete(0, 10); })).has_value());

  // A stored anchor differing from the one a room took (another process
  // stored its own first) replaces it.
  auto replaced = Lock("l1", kAlice, "paragraph", {{"start", 9}, {"end", 18}});
  replaced["storedAnchor"] = stored;
  f.locks.Set(nlohmann::json::array({replaced, l2}), f.server, "content");
  EXPECT_EQ(f.locks.AnchorOf("l1"), stored);
  // An anchor of another root is not used.
  auto foreign = Lock("l3", kAlice, "paragraph", {{"start", 0}, {"end", 4}});
  auto wrong_root = stored;
  wrong_root["root"] = "other";
  foreign["storedAnchor"] = wrong_root;
  EXPECT_TRUE(f.locks.NeedsAnchoring(nlohmann::json::array({foreign}), "content"));
}

// A stored anchor that is not one (a wrong "kind", positions that are not
// relative positions) is not used: the lock is anchored from its offsets and
// protects them, instead of protecting nothing or failing on every update.
TEST(collab_range_locks, AMalformedStoredAnchorFallsBackToOffsets) {
  const std::vector<nlohmann::json> malformed = {
      {{"kind", 5}, {"root", "content"}, {"start", nlohmann::json::object()}, {"end", nlohmann::json::object()}},
      {{"root", "content"}, {"start", 1}, {"end", 2}},
  };
  for (const auto& stored : malformed) {
    Fixture f;
    auto lock = Lock("l2", kAlice, "paragraph", {{"start", 18}, {"end", 29}});
    lock["storedAnchor"] = stored;
    EXPECT_TRUE(f.locks.NeedsAnchoring(nlohmann::json::array({lock}), "content")) << stored;
    f.locks.Set(nlohmann::json::array({lock}), f.server, "content");
    EXPECT_NE(f.locks.AnchorOf("l2"), stored);
    auto bob = f.Editor(2);
    std::optional<std::string> refusal;
    EXPECT_NO_THROW(refusal = f.Send(kBob, Edit(*bob, [](crdt::Text& t) { (void)t.Delete(20, 3); }))) << stored;
    EXPECT_TRUE(refusal.has_value()) << "an edit of \"para three\" was accepted with stored anchor " << stored;
  }
}

TEST(collab_refused_changes, LaterStructsOfARefusedClientAreFlagged) {
  Fixture f;
  RefusedChanges refused;
  EXPECT_TRUE(refused.empty());
  auto bob = f.Editor(2);
  auto first = Edit(*bob, [](crdt::Text& t) { (void)t.Insert(12, "X"); });
  ASSERT_TRUE(f.Send(kBob, first).has_value());  // refused by the lock
  refused.Note(first, f.server);
  EXPECT_FALSE(refused.empty());
  EXPECT_TRUE(refused.BuildsOn(first));                                    // sent again
  auto later = Edit(*bob, [](crdt::Text& t) { (void)t.Insert(0, "Y"); });  // outside any lock
  EXPECT_TRUE(refused.BuildsOn(later));
  // A reconnect's sync step 2: everything the server lacks.
  auto step2 = bob->EncodeStateAsUpdate(f.server.EncodeStateVector());
  ASSERT_TRUE(step2.has_value());
  EXPECT_TRUE(refused.BuildsOn(*step2));
  // A reloaded editor (new client id) and the structs the server has are not flagged.
  auto fresh = f.Editor(3);
  EXPECT_FALSE(refused.BuildsOn(Edit(*fresh, [](crdt::Text& t) { (void)t.Insert(0, "Z"); })));
  auto known = f.server.EncodeStateAsUpdate();
  ASSERT_TRUE(known.has_value());
  RefusedChanges none;
  none.Note(*known, f.server);
  EXPECT_TRUE(none.empty());
  EXPECT_FALSE(refused.BuildsOn(std::vector<uint8_t>{1, 2, 3}));  // malformed: left to the document
}

}  // namespace
}  // namespace cnx::collab

namespace cnx::collab {
namespace {

// REST body writes are checked as edits of the live text (CheckEdits), by
// the rules of Check and on the range as it is now: after text was typed in
// front, the lock protects the moved paragraph, not its original offsets.
TEST(collab_range_locks, EditsOfARestWriteAreCheckedOnTheLiveRange) {
  Fixture f;
  using E = RangeLocks::Edit;
  auto check = [&](std::initializer_list<E> edits, const Uuid& user = kBob) {
    std::vector<E> v(edits);
    return f.locks.CheckEdits(f.server, v, user);
  };
  // "para two\n" is [9, 18).
  EXPECT_TRUE(check({{12, 12, true}}).has_value());   // insertion inside
  EXPECT_TRUE(check({{9, 9, true}}).has_value());     // in front of the first locked character
  EXPECT_FALSE(check({{18, 18, true}}).has_value());  // after the last one
  EXPECT_TRUE(check({{17, 19, false}}).has_value());  // a deletion overlapping the end
  EXPECT_FALSE(check({{0, 8, true}}).has_value());    // the paragraph before, replaced
  // Replaced up to the lock, the new text lands in front of the first locked
  // character (Yjs puts it after what it replaces): refused, as an update.
  EXPECT_TRUE(check({{0, 9, true}}).has_value());
  EXPECT_FALSE(check({{0, 9, false}}).has_value());           // only deleted
  EXPECT_FALSE(check({{12, 14, true}}, kAlice).has_value());  // the holder
  auto refused = check({{0, 2, false}, {10, 11, true}});
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->lock_id, "l1");
  EXPECT_NE(refused->reason.find("locked by user " + kAlice.ToString()), std::string::npos) << refused->reason;

  // Alice types 20 characters in front: the paragraph is now [29, 38).
  auto alice = f.Editor(5);
  ASSERT_FALSE(f.Send(kAlice, Edit(*alice, [](crdt::Text& t) { (void)t.Insert(0, "twenty characters!!\n"); })));
  EXPECT_FALSE(check({{12, 14, true}}).has_value()) << "the original offsets are still protected";
  EXPECT_TRUE(check({{31, 33, true}}).has_value()) << "the moved paragraph is not protected";

  // A finer lock without range refuses every change of others.
  f.locks.Set(nlohmann::json::array({Lock("l2", kAlice, "section", nlohmann::json::object())}), f.server, "content");
  EXPECT_TRUE(check({{0, 0, true}}).has_value());
  EXPECT_FALSE(check({}).has_value());
}

}  // namespace
}  // namespace cnx::collab

namespace cnx::collab {
namespace {

// CheckEdits and Check agree: random edits of random text (as a REST write
// applies them: from the last to the first, delete then insert) are judged
// the same way as edits and as the update they make.
TEST(collab_range_locks, CheckEditsAgreesWithCheckOnTheUpdate) {
  std::mt19937 rng(1491);
  int refused = 0, accepted = 0;
  for (int round = 0; round < 400; ++round) {
    crdt::Doc server(crdt::DocOptions{.client_id = 1});
    const uint64_t n = 5 + rng() % 30;
    std::string text;
    for (uint64_t i = 0; i < n; ++i) text += static_cast<char>('a' + rng() % 26);
    server.Transact([&] { ASSERT_TRUE(server.GetText("content").Insert(0, text).has_value()); });
    const uint64_t s = rng() % n, e = s + 1 + rng() % (n - s);
    RangeLocks locks;
    locks.Set(nlohmann::json::array({Lock("l", kAlice, "paragraph", {{"start", s}, {"end", e}})}), server, "content");
    // One to three disjoint, ordered edits.
    std::vector<RangeLocks::Edit> edits;
    uint64_t at = 0;
    for (int k = 0; k < 1 + static_cast<int>(rng() % 3) && at <= n; ++k) {
      uint64_t b = at + rng() % (n - at + 1);
      uint64_t len = rng() % 3 == 0 ? 0 : rng() % (n - b + 1);
      bool inserts = len == 0 || rng() % 2 == 0;
      edits.push_back({b, b + len, inserts});
      at = b + len + 1;
    }
    crdt::Doc bob(crdt::DocOptions{.client_id = 2});
    ASSERT_TRUE(bob.ApplyUpdate(*server.EncodeStateAsUpdate()).has_value());
    auto update = bob.Transact([&] {
      auto t = bob.GetText("content");
      for (auto it = edits.rbegin(); it != edits.rend(); ++it) {
        if (it->end > it->begin) {
          ASSERT_TRUE(t.Delete(it->begin, it->end - it->begin).has_value());
        }
        if (it->inserts) {
          ASSERT_TRUE(t.Insert(it->begin, "XY").has_value());
        }
      }
    });
    auto as_edits = locks.CheckEdits(server, edits, kBob);
    auto as_update = locks.Check(server, 1, update, kBob, "content");
    std::string shown;
    for (const auto& ed : edits) {
      shown += "[" + std::to_string(ed.begin) + "," + std::to_string(ed.end) + (ed.inserts ? ",ins] " : "] ");
    }
    EXPECT_EQ(as_edits.has_value(), as_update.has_value())
        << "lock [" << s << "," << e << ") in \"" << text << "\", edits " << shown;
    (as_update ? refused : accepted) += 1;
  }
  EXPECT_GT(refused, 0);
  EXPECT_GT(accepted, 0);
}

}  // namespace
}  // namespace cnx::collab
