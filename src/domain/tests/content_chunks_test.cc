// Re-chunking a changed body against the test cluster: chunks are matched by
// content hash, so an edit at the top of a document rewrites (and queues for
// re-embedding) only the chunks whose text changed.
#include <gtest/gtest.h>
#include <unistd.h>

#include <map>
#include <set>

#include "domain/store.h"
#include "schema/testing/test_database.h"
#include "text/chunker.h"
#include "text/tokenizer.h"

namespace cnx::domain {
namespace {

using schema::testing::TestDatabase;

std::string Section(const std::string& topic) {
  return "## " + topic + "\n\nThe " + topic +
         " procedure keeps write-ahead log segments for seven days, copies them with archive_command, and checks "
         "every restore in a staging cluster before the old segments go.\n\n";
}

struct Chunk {
  std::string id, hash;
  int64_t index, start;
};

class ContentChunks : public ::testing::Test {
 protected:
  void SetUp() override {
    pool_ = std::make_unique<pg::Pool>(db_.AppPoolOptions(2));
    StoreOptions so;
    so.pwhash_opslimit = 1;
    so.pwhash_memlimit = 8192;
    so.chunk_max_tokens = 48;
    store_ = std::make_unique<Store>(*pool_, so);
    auto signup = store_->Signup({{"tenantName", "T"},
                                  {"email", "owner" + std::to_string(::getpid()) + "@example.com"},
                                  {"password", "correct horse"},
                                  {"displayName", "A"}},
                                 "test");
    ASSERT_TRUE(signup.has_value());
    auto p = store_->Authenticate((*signup)["token"].get<std::string>());
    ASSERT_TRUE(p.has_value());
    owner_ = *p;
    auto program = Create("program", std::nullopt, {{"name", "Ops"}});
    project_ = Create("project", std::nullopt, {{"programId", program}, {"name", "Database"}});
  }
  std::string Create(const std::string& spec, const std::optional<Uuid>& parent, const json& body) {
    auto e = store_->Create(*FindResource(spec), owner_, parent, body);
    EXPECT_TRUE(e.has_value()) << spec << ": " << (e ? "" : e.error().detail);
    return e ? e->body["id"].get<std::string>() : "";
  }
  std::vector<Chunk> Chunks(const std::string& item) {
    auto c = db_.Admin();
    auto r = c.Exec(
        "SELECT id, content_hash, chunk_index, start_offset FROM content_chunks WHERE content_item_id = $1 "
        "ORDER BY chunk_index",
        {item});
    EXPECT_TRUE(r.has_value());
    std::vector<Chunk> out;
    for (int i = 0; r && i < r->rows(); ++i) {
      out.push_back({std::string((*r)[i].Text(0)), std::string((*r)[i].Text(1)), *(*r)[i].Get<int64_t>(2),
                     *(*r)[i].Get<int64_t>(3)});
    }
    return out;
  }
  int64_t PendingJobs() {
    auto c = db_.Admin();
    auto r = c.Exec("SELECT count(*) FROM embedding_jobs WHERE status = 'pending'");
    EXPECT_TRUE(r.has_value());
    return r ? (*r)[0].Get<int64_t>(0).value_or(-1) : -1;
  }
  void CompleteJobs() {
    auto c = db_.Admin();
    ASSERT_TRUE(c.Exec("UPDATE embedding_jobs SET status = 'completed', completed_at = now()").has_value());
  }
  void SetBody(const std::string& item, const std::string& body) {
    auto e = store_->Update(*FindResource("content item"), owner_, *Uuid::Parse(item), std::nullopt, {{"body", body}});
    ASSERT_TRUE(e.has_value()) << e.error().detail;
  }
  // Checks the rows are a well-formed chunk list: indexes 0..n-1 in text order.
  static void ExpectOrdered(const std::vector<Chunk>& chunks) {
    for (size_t i = 0; i < chunks.size(); ++i) {
      EXPECT_EQ(chunks[i].index, static_cast<int64_t>(i));
      if (i > 0) {
        EXPECT_GT(chunks[i].start, chunks[i - 1].start);
      }
    }
  }

  TestDatabase db_;
  std::unique_ptr<pg::Pool> pool_;
  std::unique_ptr<Store> store_;
  Principal owner_;
  std::string project_;
};

TEST_F(ContentChunks, AnEditAtTheTopRewritesOnlyTheChangedChunks) {
  std::string body = Section("alpha") + Section("bravo") + Section("charlie") + Section("delta") + Section("echo");
  auto item = Create("content item", *Uuid::Parse(project_),
                     {{"title", "Runbook"}, {"contentType", "text/markdown"}, {"body", body}});
  auto before = Chunks(item);
  ASSERT_GE(before.size(), 5u);
  std::map<std::string, std::string> id_by_hash;
  for (const auto& c : before) id_by_hash[c.hash] = c.id;
  CompleteJobs();

  // A new section at the top: every old chunk moves down.
  SetBody(item, Section("zulu") + body);
  auto after = Chunks(item);
  ExpectOrdered(after);
  size_t kept = 0, changed = 0;
  std::set<std::string> ids;
  for (const auto& c : after) {
    ids.insert(c.id);
    if (auto it = id_by_hash.find(c.hash); it != id_by_hash.end()) {
      EXPECT_EQ(c.id, it->second) << "an unchanged chunk got a new row";
      ++kept;
    } else {
      ++changed;
    }
  }
  EXPECT_EQ(ids.size(), after.size());
  EXPECT_GE(kept, before.size() - 1);
  EXPECT_GE(changed, 1u);
  EXPECT_EQ(PendingJobs(), static_cast<int64_t>(changed)) << "only new or changed chunks are re-embedded";

  // A section removed from the middle: its rows go, the others stay.
  CompleteJobs();
  auto ids_before = after;
  SetBody(item, Section("zulu") + Section("alpha") + Section("bravo") + Section("delta") + Section("echo"));
  auto removed = Chunks(item);
  ExpectOrdered(removed);
  EXPECT_LT(removed.size(), ids_before.size());
  std::map<std::string, std::string> prev;
  for (const auto& c : ids_before) prev[c.hash] = c.id;
  size_t new_rows = 0;
  for (const auto& c : removed) {
    if (auto it = prev.find(c.hash); it != prev.end()) {
      EXPECT_EQ(c.id, it->second);
    } else {
      ++new_rows;
    }
  }
  EXPECT_EQ(PendingJobs(), static_cast<int64_t>(new_rows));

  // The same body again: nothing is rewritten.
  CompleteJobs();
  SetBody(item, Section("zulu") + Section("alpha") + Section("bravo") + Section("delta") + Section("echo"));
  auto same = Chunks(item);
  ASSERT_EQ(same.size(), removed.size());
  for (size_t i = 0; i < same.size(); ++i) EXPECT_EQ(same[i].id, removed[i].id);
  EXPECT_EQ(PendingJobs(), 0);
}

// The version's token count is the tokenizer's count of the whole text,
// whether the body is one chunk (the chunker's count is reused) or several.
TEST_F(ContentChunks, VersionTokenCountIsTheCountOfTheWholeText) {
  auto tokenizer = text::Tokenizer::ForEncoding(text::ChunkOptions{}.encoding);
  ASSERT_TRUE(tokenizer.has_value());
  const std::string small = "A short note about vacuum settings.";
  const std::string large = Section("alpha") + Section("bravo") + Section("charlie") + Section("delta");
  for (const std::string& body : {small, large}) {
    auto item = Create("content item", *Uuid::Parse(project_),
                       {{"title", "Doc"}, {"contentType", "text/markdown"}, {"body", body}});
    auto c = db_.Admin();
    auto r = c.Exec(
        "SELECT v.token_count, (SELECT count(*) FROM content_chunks k WHERE k.content_item_id = i.id) "
        "FROM content_items i JOIN content_versions v ON v.id = i.current_version_id WHERE i.id = $1",
        {item});
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->rows(), 1);
    EXPECT_EQ(*(*r)[0].Get<int32_t>(0), static_cast<int32_t>(*(*tokenizer)->Count(body)));
    if (body == small) {
      EXPECT_EQ(*(*r)[0].Get<int64_t>(1), 1);
    } else {
      EXPECT_GT(*(*r)[0].Get<int64_t>(1), 1);
    }
  }
}

// A new item is inserted with its snapshot, first version and chunks in one
// statement, already linked to the version: written once (version 1, one
// outbox event), and what Create returns is what a read returns afterwards.
TEST_F(ContentChunks, CreateReturnsTheRowAsStored) {
  const std::string body = Section("alpha") + Section("bravo") + Section("charlie");
  auto created = store_->Create(*FindResource("content item"), owner_, *Uuid::Parse(project_),
                                {{"title", "Doc"}, {"contentType", "text/markdown"}, {"body", body}});
  ASSERT_TRUE(created.has_value()) << created.error().detail;
  const std::string id = created->body["id"].get<std::string>();
  auto read = store_->Get(*FindResource("content item"), owner_, *Uuid::Parse(id));
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(created->body, read->body);
  EXPECT_EQ(created->version, read->version);
  EXPECT_EQ(created->version, 1);  // never updated after its insert
  auto chunks = Chunks(id);
  EXPECT_GT(chunks.size(), 1u);
  ExpectOrdered(chunks);
  EXPECT_EQ(PendingJobs(), static_cast<int64_t>(chunks.size()));
  // What the chunk and item triggers wrote for it: one event per chunk, one
  // for the item; one version with its snapshot; chunks of that version.
  auto c = db_.Admin();
  auto r = c.Exec(
      "SELECT (SELECT count(*) FROM outbox WHERE aggregatetype = 'content_chunks' AND "
      "payload->'row'->>'content_item_id' = $1), "
      "(SELECT count(*) FROM outbox WHERE aggregatetype = 'content_items' AND aggregateid = $1), "
      "(SELECT count(*) FROM content_versions v JOIN document_snapshots s ON s.id = v.snapshot_id "
      "WHERE v.content_item_id = $1::uuid AND v.version_number = 1 AND s.state = convert_to($2, 'UTF8')), "
      "(SELECT count(*) FROM content_chunks k JOIN content_items i ON i.current_version_id = k.version_id "
      "WHERE k.content_item_id = $1::uuid)",
      {id, body});
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(*(*r)[0].Get<int64_t>(0), static_cast<int64_t>(chunks.size()));
  EXPECT_EQ(*(*r)[0].Get<int64_t>(1), 1);
  EXPECT_EQ(*(*r)[0].Get<int64_t>(2), 1);
  EXPECT_EQ(*(*r)[0].Get<int64_t>(3), static_cast<int64_t>(chunks.size()));
}

// More chunks than one statement takes: the item is inserted first, the rest
// goes as for an existing item (version rows, chunk INSERTs, the link).
TEST_F(ContentChunks, CreateOfAVeryLongDocument) {
  std::string body;
  for (int i = 0; i < 620; ++i) body += Section("topic " + std::to_string(i));
  auto created = store_->Create(*FindResource("content item"), owner_, *Uuid::Parse(project_),
                                {{"title", "Long"}, {"contentType", "text/markdown"}, {"body", body}});
  ASSERT_TRUE(created.has_value()) << created.error().detail;
  const std::string id = created->body["id"].get<std::string>();
  auto read = store_->Get(*FindResource("content item"), owner_, *Uuid::Parse(id));
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(created->body, read->body);
  auto chunks = Chunks(id);
  EXPECT_GE(chunks.size(), 620u);
  ExpectOrdered(chunks);
  EXPECT_EQ(PendingJobs(), static_cast<int64_t>(chunks.size()));
  auto c = db_.Admin();
  auto r = c.Exec(
      "SELECT count(*) FROM content_chunks k JOIN content_items i ON i.current_version_id = k.version_id "
      "WHERE k.content_item_id = $1::uuid",
      {id});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*(*r)[0].Get<int64_t>(0), static_cast<int64_t>(chunks.size()));
}

}  // namespace
}  // namespace cnx::domain
