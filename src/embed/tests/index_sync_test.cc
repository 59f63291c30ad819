// Catch-up, rebuild, verify and reconcile of a vector index against
// chunk_embeddings, with embeddings written by the worker.
#include "embed/index_sync.h"

#include <gtest/gtest.h>

#include <set>

#include "embed/lexical_embedder.h"
#include "embed/worker.h"
#include "schema/testing/test_database.h"
#include "vector/exact_index.h"

namespace cnx::embed {
namespace {

using schema::testing::TestDatabase;

void Q(pg::Connection& c, std::string_view sql, std::initializer_list<pg::Param> params = {}) {
  auto r = c.Exec(sql, params);
  ASSERT_TRUE(r.has_value()) << sql << ": " << r.error().ToString();
}

// Forwards to an exact index and records the ids of every upsert.
class RecordingIndex final : public vector::VectorIndex {
 public:
  explicit RecordingIndex(size_t dim) : inner_(dim, vector::Metric::kCosine) {}
  std::multiset<Uuid> upserted;

  size_t dimension() const override { return inner_.dimension(); }
  vector::Metric metric() const override { return inner_.metric(); }
  Status Upsert(std::span<const vector::VectorRecord> records) override {
    for (const auto& r : records) upserted.insert(r.id);
    return inner_.Upsert(records);
  }
  Status Delete(std::span<const Uuid> ids) override { return inner_.Delete(ids); }
  Result<std::vector<vector::SearchHit>> Search(std::span<const float> q, size_t k,
                                                const vector::SearchFilter& f) const override {
    return inner_.Search(q, k, f);
  }
  size_t Count() const override { return inner_.Count(); }
  size_t Count(const vector::SearchFilter& f) const override { return inner_.Count(f); }
  bool Contains(const Uuid& id) const override { return inner_.Contains(id); }
  Status Checkpoint(const std::filesystem::path& dir, const vector::IndexPosition& p) override {
    return inner_.Checkpoint(dir, p);
  }
  Result<vector::IndexPosition> Load(const std::filesystem::path& dir) override { return inner_.Load(dir); }
  vector::IndexStats Stats() const override { return inner_.Stats(); }

 private:
  vector::ExactIndex inner_;
};

class IndexSyncTest : public ::testing::Test {
 protected:
  void SetUp() override {
    admin_ = std::make_unique<pg::Connection>(db_.Admin());
    Q(*admin_, "INSERT INTO tenants (id, name, slug) VALUES ($1, 'T', $2)", {tenant_, "t-" + tenant_.ToString()});
    Q(*admin_, "INSERT INTO programs (id, tenant_id, name) VALUES ($1, $2, 'P')", {program_, tenant_});
    Q(*admin_, "INSERT INTO projects (id, tenant_id, program_id, name) VALUES ($1, $2, $3, 'Proj')",
      {project_, tenant_, program_});
    Q(*admin_,
      "INSERT INTO content_items (id, tenant_id, project_id, title, content_type) VALUES ($1,$2,$3,'Doc','text/plain')",
      {item_, tenant_, project_});
    for (int i = 0; i < 30; ++i) {
      Uuid id = Uuid::NewV4();
      std::string text = "text of chunk " + std::to_string(i);
      Q(*admin_,
        "INSERT INTO content_chunks (id, tenant_id, content_item_id, chunk_index, content, content_hash)"
        " VALUES ($1, $2, $3, $4, $5, md5($5))",
        {id, tenant_, item_, static_cast<int32_t>(i), text});
      chunks_.push_back(id);
    }
    pg::PoolOptions po;
    po.conninfo = db_.AdminUrl();
    pool_ = std::make_unique<pg::Pool>(po);
    embedder_ = LexicalHashEmbedder::Create().value();
    model_ = {std::string(embedder_->model_name()), std::string(embedder_->model_version())};
  }

  std::unique_ptr<vector::ExactIndex> NewIndex() {
    return std::make_unique<vector::ExactIndex>(embedder_->dimension(), vector::Metric::kCosine);
  }

  TestDatabase db_;
  std::unique_ptr<pg::Connection> admin_;
  Uuid tenant_ = Uuid::NewV4(), program_ = Uuid::NewV4(), project_ = Uuid::NewV4(), item_ = Uuid::NewV4();
  std::vector<Uuid> chunks_;
  std::unique_ptr<pg::Pool> pool_;
  std::unique_ptr<LexicalHashEmbedder> embedder_;
  ModelId model_;
};

TEST_F(IndexSyncTest, RebuildCatchUpVerifyReconcile) {
  // The worker writes PostgreSQL only (no index), as if the index were lost.
  EmbeddingWorker worker(*pool_, *embedder_, nullptr, {.batch_size = 7});
  ASSERT_EQ(worker.Drain().value().completed, 30u);

  auto served = NewIndex();
  auto before = Verify(*admin_, model_, *served).value();
  EXPECT_EQ(before.expected, 30u);
  EXPECT_EQ(before.missing.size(), 30u);
  EXPECT_FALSE(before.clean());

  // Rebuild from PostgreSQL: no embedder involved, same vectors as the worker made.
  auto rebuilt = Rebuild(*admin_, model_, *served).value();
  EXPECT_EQ(rebuilt.upserted, 30u);
  EXPECT_GT(rebuilt.position, 0u);
  EXPECT_TRUE(Verify(*admin_, model_, *served).value().clean());
  std::vector<std::string> t{"text of chunk 4"};
  auto hits = served->Search(embedder_->Embed(t).value()[0], 1, {.tenant = tenant_}).value();
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].id, chunks_[4]);

  // New embeddings after the position are caught up.
  Q(*admin_, "UPDATE content_chunks SET content = 'changed', content_hash = md5('changed') WHERE id = $1",
    {chunks_[0]});
  auto drift = Verify(*admin_, model_, *served).value();
  ASSERT_EQ(drift.stale.size(), 1u);  // the old vector no longer matches the text
  EXPECT_EQ(drift.stale[0], chunks_[0]);
  ASSERT_EQ(worker.Drain().value().completed, 1u);
  auto caught = CatchUp(*admin_, model_, *served, rebuilt.position).value();
  EXPECT_GE(caught.upserted, 1u);
  EXPECT_GE(caught.position, rebuilt.position);
  EXPECT_TRUE(Verify(*admin_, model_, *served).value().clean());

  // Drift: a deleted chunk (extra), a vector dropped (missing), a changed chunk (stale).
  Q(*admin_, "DELETE FROM content_chunks WHERE id = $1", {chunks_[1]});
  ASSERT_TRUE(served->Delete(std::vector<Uuid>{chunks_[2]}).has_value());
  Q(*admin_, "UPDATE content_chunks SET content = 'again', content_hash = md5('again') WHERE id = $1", {chunks_[3]});
  drift = Verify(*admin_, model_, *served).value();
  EXPECT_EQ(drift.expected, 28u);  // 29 chunks, one of them stale
  ASSERT_EQ(drift.missing.size(), 1u);
  EXPECT_EQ(drift.missing[0], chunks_[2]);
  ASSERT_EQ(drift.stale.size(), 1u);
  EXPECT_EQ(drift.stale[0], chunks_[3]);
  EXPECT_EQ(drift.extra, 1u);

  // Without a fresh index, extras cannot be found by id: reconcile fixes the
  // missing and stale vectors in place and says a rebuild is needed.
  auto fresh = NewIndex();
  auto rec = Reconcile(*admin_, model_, *served, fresh.get()).value();
  EXPECT_TRUE(rec.rebuilt);
  EXPECT_TRUE(Verify(*admin_, model_, *fresh).value().clean());
  EXPECT_EQ(fresh->Count(), 28u);
  EXPECT_FALSE(fresh->Contains(chunks_[1]));
  EXPECT_FALSE(fresh->Contains(chunks_[3]));

  auto in_place = Reconcile(*admin_, model_, *served, nullptr);
  ASSERT_FALSE(in_place.has_value());
  EXPECT_EQ(in_place.error().code(), ErrorCode::kFailedPrecondition);
  drift = Verify(*admin_, model_, *served).value();
  EXPECT_TRUE(drift.missing.empty());
  EXPECT_TRUE(drift.stale.empty());
  EXPECT_EQ(drift.extra, 1u);
  EXPECT_TRUE(served->Contains(chunks_[2]));
  EXPECT_FALSE(served->Contains(chunks_[3]));

  // The deleted chunk's vector goes (the delete-event path): clean.
  ASSERT_TRUE(DeleteVectors(*served, std::vector<Uuid>{chunks_[1]}).has_value());
  EXPECT_TRUE(Verify(*admin_, model_, *served).value().clean());
}

// The chunk ids of current embeddings written by transactions at or above a
// catch-up position (what a catch-up from it must read, and all it may read).
std::multiset<Uuid> WrittenSince(pg::Connection& c, uint64_t position) {
  auto xmin = std::to_string(position & ~(uint64_t{1} << 63));
  auto rows = c.Exec(
      "SELECT e.chunk_id FROM chunk_embeddings e JOIN content_chunks c ON c.id = e.chunk_id"
      " AND c.content_hash = e.content_hash WHERE e.written_xid >= $1::xid8",
      {xmin});
  EXPECT_TRUE(rows.has_value()) << rows.error().ToString();
  std::multiset<Uuid> out;
  for (int i = 0; rows && i < rows->rows(); ++i) out.insert((*rows)[i].Get<Uuid>(0).value());
  return out;
}

TEST_F(IndexSyncTest, CatchUpReadsWhatWasWrittenSinceAndWhatCommittedLate) {
  EmbeddingWorker worker(*pool_, *embedder_, nullptr, {.batch_size = 8});
  ASSERT_EQ(worker.Drain().value().completed, 30u);
  RecordingIndex index(embedder_->dimension());
  auto rebuilt = Rebuild(*admin_, model_, index).value();
  ASSERT_EQ(rebuilt.upserted, 30u);
  ASSERT_NE(rebuilt.position & (uint64_t{1} << 63), 0u);

  // Nothing written since: a catch-up reads exactly the rows whose writer's
  // xid is at or above the position — none of ours unless a transaction of
  // another test in this cluster was open when the position was taken —, not
  // the last minutes of embeddings.
  index.upserted.clear();
  auto idle = CatchUp(*admin_, model_, index, rebuilt.position).value();
  EXPECT_EQ(index.upserted, WrittenSince(*admin_, rebuilt.position));
  EXPECT_EQ(idle.upserted, index.upserted.size());
  EXPECT_GE(idle.position, rebuilt.position);

  // A writer that took its xid before the catch-up and commits after it (a
  // slow store step, or the moment before a crash), and a younger one that
  // commits first.
  auto add = [&](int i) {
    Uuid id = Uuid::NewV4();
    std::string text = "late chunk " + std::to_string(i);
    Q(*admin_,
      "INSERT INTO content_chunks (id, tenant_id, content_item_id, chunk_index, content, content_hash)"
      " VALUES ($1, $2, $3, $4, $5, md5($5))",
      {id, tenant_, item_, static_cast<int32_t>(100 + i), text});
    Q(*admin_, "UPDATE embedding_jobs SET status = 'completed' WHERE content_chunk_id = $1", {id});
    return std::pair{id, text};
  };
  auto store = [&](pg::Connection& c, const std::pair<Uuid, std::string>& chunk) {
    std::vector<std::string> texts{chunk.second};
    auto bytes = EncodeVector(embedder_->Embed(texts).value()[0]);
    Q(c,
      "INSERT INTO chunk_embeddings (tenant_id, chunk_id, model, model_version, dimension, embedding, content_hash)"
      " VALUES ($1, $2, $3, $4, $5, $6, md5($7))",
      {tenant_, chunk.first, model_.name, model_.version, static_cast<int32_t>(embedder_->dimension()),
       pg::Param::Bytes(bytes), chunk.second});
  };
  auto slow_chunk = add(1), young_chunk = add(2);
  auto slow = db_.Admin();
  Q(slow, "BEGIN");
  store(slow, slow_chunk);
  auto young = db_.Admin();
  store(young, young_chunk);

  index.upserted.clear();
  auto first = CatchUp(*admin_, model_, index, idle.position).value();
  EXPECT_EQ(index.upserted.count(young_chunk.first), 1u);
  EXPECT_EQ(index.upserted.count(slow_chunk.first), 0u);  // not committed yet
  EXPECT_FALSE(index.Contains(slow_chunk.first));

  Q(slow, "COMMIT");
  index.upserted.clear();
  auto second = CatchUp(*admin_, model_, index, first.position).value();
  EXPECT_EQ(index.upserted.count(slow_chunk.first), 1u);
  EXPECT_TRUE(index.Contains(slow_chunk.first));
  EXPECT_EQ(index.upserted, WrittenSince(*admin_, first.position));
  EXPECT_GE(second.position, first.position);
  EXPECT_TRUE(Verify(*admin_, model_, index).value().clean());

  // An upsert of an existing row (the worker re-embedding a changed chunk)
  // moves the row to its transaction's xid: caught up again.
  Q(*admin_, "UPDATE content_chunks SET content = 'changed late', content_hash = md5('changed late') WHERE id = $1",
    {chunks_[5]});
  ASSERT_EQ(worker.Drain().value().completed, 1u);
  index.upserted.clear();
  auto third = CatchUp(*admin_, model_, index, second.position).value();
  EXPECT_EQ(index.upserted.count(chunks_[5]), 1u);
  EXPECT_EQ(index.upserted, WrittenSince(*admin_, second.position));
  EXPECT_TRUE(Verify(*admin_, model_, index).value().clean());

  // A position of a checkpoint written before migration 0011 (a created_at
  // time in microseconds): everything, once.
  RecordingIndex legacy(embedder_->dimension());
  auto old = CatchUp(*admin_, model_, legacy, 1'700'000'000'000'000ull).value();
  EXPECT_EQ(old.upserted, 32u);
  EXPECT_NE(old.position & (uint64_t{1} << 63), 0u);
  EXPECT_TRUE(Verify(*admin_, model_, legacy).value().clean());
  EXPECT_GE(third.position, second.position);
}

}  // namespace
}  // namespace cnx::embed
