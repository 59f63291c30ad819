// The embedding job worker against a real database: claims, leases, the
// five steps with a fault injected at each, backoff, dead letters, changed
// chunks.
#include "embed/worker.h"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <set>
#include <thread>

#include "embed/lexical_embedder.h"
#include "schema/testing/test_database.h"
#include "vector/exact_index.h"

namespace cnx::embed {
namespace {

using schema::testing::TestDatabase;

pg::QueryResult Q(pg::Connection& c, std::string_view sql, std::initializer_list<pg::Param> params = {}) {
  auto r = c.Exec(sql, params);
  EXPECT_TRUE(r.has_value()) << sql << ": " << r.error().ToString();
  return r ? std::move(*r) : pg::QueryResult();
}

int64_t Count(pg::Connection& c, std::string_view sql, std::initializer_list<pg::Param> params = {}) {
  auto r = Q(c, sql, params);
  if (r.rows() != 1) return -1;
  return r[0].Get<int64_t>(0).value_or(-1);
}

// Fails every call with kUnavailable (a provider that cannot serve).
class DownEmbedder final : public Embedder {
 public:
  std::string_view model_name() const override { return "down"; }
  std::string_view model_version() const override { return "1"; }
  size_t dimension() const override { return 8; }
  Result<std::vector<std::vector<float>>> Embed(std::span<const std::string>) override {
    ++calls;
    return Err(Module::kEmbed, ErrorCode::kUnavailable, "provider down");
  }
  int calls = 0;
};

class WorkerTest : public ::testing::Test {
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
    for (int i = 0; i < 5; ++i) AddChunk(i, "chunk number " + std::to_string(i) + " about postgres vacuum");
    pg::PoolOptions po;
    po.conninfo = db_.AdminUrl();
    po.max_size = 4;
    pool_ = std::make_unique<pg::Pool>(po);
    embedder_ = LexicalHashEmbedder::Create().value();
    index_ = std::make_unique<vector::ExactIndex>(embedder_->dimension(), vector::Metric::kCosine);
  }

  Uuid AddChunk(int index, const std::string& text) {
    Uuid id = Uuid::NewV4();
    Q(*admin_,
      "INSERT INTO content_chunks (id, tenant_id, content_item_id, chunk_index, content, content_hash)"
      " VALUES ($1, $2, $3, $4, $5, md5($5))",
      {id, tenant_, item_, static_cast<int32_t>(index), text});
    chunks_.push_back(id);
    return id;
  }

  void ExpireLeases() {
    Q(*admin_, "UPDATE embedding_jobs SET locked_until = now() - interval '1 second' WHERE status = 'processing'");
  }

  // Every chunk is embedded once, in PostgreSQL and in the index, nothing
  // else; a completed job leaves no row (migration 0014).
  void ExpectConsistent() {
    EXPECT_EQ(Count(*admin_, "SELECT count(*) FROM embedding_jobs"), 0);
    EXPECT_EQ(Count(*admin_, "SELECT count(*) FROM chunk_embeddings"), static_cast<int64_t>(chunks_.size()));
    EXPECT_EQ(Count(*admin_,
                    "SELECT count(*) FROM content_chunk_embedding_status WHERE vector_db_id = chunk_id::text"
                    " AND embedding_model = $1 AND embedding_version = $2 AND last_embedded_at IS NOT NULL",
                    {embedder_->model_name(), embedder_->model_version()}),
              static_cast<int64_t>(chunks_.size()));
    EXPECT_EQ(Count(*admin_,
                    "SELECT count(*) FROM chunk_embeddings e JOIN content_chunks c ON c.id = e.chunk_id"
                    " WHERE e.content_hash <> c.content_hash"),
              0);
    EXPECT_EQ(index_->Count(), chunks_.size());
    for (const auto& c : chunks_) EXPECT_TRUE(index_->Contains(c));
  }

  TestDatabase db_;
  std::unique_ptr<pg::Connection> admin_;
  Uuid tenant_ = Uuid::NewV4(), program_ = Uuid::NewV4(), project_ = Uuid::NewV4(), item_ = Uuid::NewV4();
  std::vector<Uuid> chunks_;
  std::unique_ptr<pg::Pool> pool_;
  std::unique_ptr<LexicalHashEmbedder> embedder_;
  std::unique_ptr<vector::ExactIndex> index_;
};

TEST_F(WorkerTest, DrainsJobsIntoEmbeddingsAndIndex) {
  EmbeddingWorker worker(*pool_, *embedder_, index_.get(), {.batch_size = 2});
  auto r = worker.Drain();
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->claimed, 5u);
  EXPECT_EQ(r->completed, 5u);
  ExpectConsistent();

  // The stored bytes are the embedder's vector and the index finds it.
  auto row = Q(*admin_,
               "SELECT c.content, e.embedding FROM chunk_embeddings e JOIN content_chunks c ON c.id = e.chunk_id"
               " WHERE e.chunk_id = $1",
               {chunks_[3]});
  ASSERT_EQ(row.rows(), 1);
  std::vector<std::string> text{std::string(row[0].Text(0))};
  auto expected = embedder_->Embed(text).value()[0];
  auto stored = DecodeVector(row[0].Get<std::vector<uint8_t>>(1).value()).value();
  EXPECT_EQ(stored, expected);
  auto hits = index_->Search(expected, 1, {.tenant = tenant_}).value();
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].id, chunks_[3]);
  EXPECT_EQ(hits[0].project, project_);

  // Nothing left to do.
  EXPECT_EQ(worker.RunOnce().value().claimed, 0u);
}

class WorkerFaultTest : public WorkerTest, public ::testing::WithParamInterface<WorkerStep> {};

TEST_P(WorkerFaultTest, CrashAtAnyStepIsRetriedWithoutOrphans) {
  const WorkerStep fail_at = GetParam();
  EmbeddingWorker worker(*pool_, *embedder_, index_.get(), {.batch_size = 10, .max_attempts = 3});
  worker.SetFaultHook([&](WorkerStep s) -> Status {
    if (s == fail_at) return Err(Module::kEmbed, ErrorCode::kCancelled, "injected crash");
    return Ok();
  });
  auto r = worker.RunOnce();
  ASSERT_FALSE(r.has_value());

  // Whatever was left behind: no vector in the index without its row in PostgreSQL.
  auto pg_rows = Q(*admin_, "SELECT chunk_id FROM chunk_embeddings");
  std::set<std::string> in_pg;
  for (int i = 0; i < pg_rows.rows(); ++i) in_pg.insert(std::string(pg_rows[i].Text(0)));
  for (const auto& c : chunks_) {
    if (index_->Contains(c)) {
      EXPECT_TRUE(in_pg.contains(c.ToString()));
    }
  }
  // Jobs stay claimed under their lease: another worker does not take them.
  const int64_t expected_processing = fail_at == WorkerStep::kClaim ? 0 : 5;
  EXPECT_EQ(Count(*admin_, "SELECT count(*) FROM embedding_jobs WHERE status = 'processing'"), expected_processing);
  EmbeddingWorker other(*pool_, *embedder_, index_.get(), {.batch_size = 10});
  if (expected_processing > 0) {
    EXPECT_EQ(other.RunOnce().value().claimed, 0u);
  }

  // The lease expires; a healthy worker finishes the work, on its second
  // attempt unless the crash came before the first claim (seen just before
  // the completion deletes the jobs).
  ExpireLeases();
  const int64_t expected_attempts = fail_at == WorkerStep::kClaim ? 1 : 2;
  int64_t at_completion = -1;
  other.SetFaultHook([&](WorkerStep s) -> Status {
    if (s == WorkerStep::kComplete)
      at_completion =
          Count(*admin_, "SELECT count(*) FROM embedding_jobs WHERE attempt_count = $1 AND status = 'processing'",
                {expected_attempts});
    return Ok();
  });
  auto done = other.Drain();
  ASSERT_TRUE(done.has_value()) << done.error().ToString();
  EXPECT_EQ(done->completed, 5u);
  EXPECT_EQ(at_completion, 5);
  ExpectConsistent();
}

std::string StepName(const ::testing::TestParamInfo<WorkerStep>& info) {
  static constexpr std::array<const char*, 5> kNames = {"Claim", "Embed", "Store", "Index", "Complete"};
  return kNames.at(static_cast<size_t>(info.param));
}

INSTANTIATE_TEST_SUITE_P(Steps, WorkerFaultTest,
                         ::testing::Values(WorkerStep::kClaim, WorkerStep::kEmbed, WorkerStep::kStore,
                                           WorkerStep::kIndex, WorkerStep::kComplete),
                         StepName);

TEST_F(WorkerTest, RepeatedCrashesExhaustAttempts) {
  EmbeddingWorker worker(*pool_, *embedder_, index_.get(), {.batch_size = 10, .max_attempts = 2});
  worker.SetFaultHook([](WorkerStep s) -> Status {
    if (s == WorkerStep::kEmbed) return Err(Module::kEmbed, ErrorCode::kCancelled, "injected crash");
    return Ok();
  });
  for (int i = 0; i < 2; ++i) {
    EXPECT_FALSE(worker.RunOnce().has_value());
    ExpireLeases();
  }
  // Third claim: attempts exceed the maximum, the jobs are given up.
  auto r = worker.RunOnce();
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->failed, 5u);
  // Failed jobs are never due again (until their chunk changes).
  EXPECT_EQ(Count(*admin_,
                  "SELECT count(*) FROM embedding_jobs WHERE status = 'failed'"
                  " AND next_attempt_at = 'infinity'"),
            5);
  EXPECT_EQ(Count(*admin_, "SELECT count(*) FROM dead_letters WHERE source = 'embed'"), 5);
  EXPECT_EQ(index_->Count(), 0u);
}

TEST_F(WorkerTest, EmbedderFailuresBackOffThenDeadLetter) {
  DownEmbedder down;
  vector::ExactIndex index(down.dimension(), vector::Metric::kCosine);
  {
    // Long backoff: after one failure nothing is due.
    EmbeddingWorker worker(*pool_, down, &index,
                           {.batch_size = 10,
                            .max_attempts = 3,
                            .backoff_base = std::chrono::hours(1),
                            .backoff_max = std::chrono::hours(2)});
    auto r = worker.RunOnce().value();
    EXPECT_EQ(r.claimed, 5u);
    EXPECT_EQ(r.retried, 5u);
    EXPECT_EQ(Count(*admin_,
                    "SELECT count(*) FROM embedding_jobs WHERE status = 'pending'"
                    " AND next_attempt_at > now() + interval '50 minutes' AND error_message LIKE '%provider down%'"),
              5);
    EXPECT_EQ(worker.RunOnce().value().claimed, 0u);
  }
  Q(*admin_, "UPDATE embedding_jobs SET next_attempt_at = now()");
  EmbeddingWorker worker(*pool_, down, &index,
                         {.batch_size = 10, .max_attempts = 3, .backoff_base = std::chrono::milliseconds(0)});
  auto second = worker.RunOnce().value();
  EXPECT_EQ(second.retried, 5u);
  auto third = worker.RunOnce().value();
  EXPECT_EQ(third.failed, 5u);
  EXPECT_EQ(Count(*admin_,
                  "SELECT count(*) FROM embedding_jobs WHERE status = 'failed' AND attempt_count = 3"
                  " AND next_attempt_at = 'infinity'"),
            5);
  EXPECT_EQ(Count(*admin_,
                  "SELECT count(*) FROM dead_letters WHERE source = 'embed' AND attempts = 3"
                  " AND aggregate_type = 'content_chunks' AND error LIKE '%provider down%'"),
            5);
  EXPECT_EQ(worker.RunOnce().value().claimed, 0u);
  EXPECT_EQ(down.calls, 3);
  EXPECT_EQ(Count(*admin_, "SELECT count(*) FROM chunk_embeddings"), 0);
}

TEST_F(WorkerTest, ChunkChangedDuringEmbeddingIsDiscardedAndRequeued) {
  EmbeddingWorker worker(*pool_, *embedder_, index_.get(), {.batch_size = 10});
  bool changed = false;
  worker.SetFaultHook([&](WorkerStep s) -> Status {
    if (s == WorkerStep::kStore && !changed) {
      changed = true;
      // The chunk's text changes between embedding and storing.
      auto r = admin_->Exec(
          "UPDATE content_chunks SET content = 'rewritten text', content_hash = md5('rewritten text')"
          " WHERE id = $1",
          {chunks_[1]});
      if (!r) return std::unexpected(r.error());
    }
    return Ok();
  });
  auto r = worker.RunOnce().value();
  EXPECT_EQ(r.claimed, 5u);
  EXPECT_EQ(r.completed, 4u);
  EXPECT_EQ(r.discarded, 1u);
  EXPECT_FALSE(index_->Contains(chunks_[1]));
  EXPECT_EQ(Count(*admin_, "SELECT count(*) FROM chunk_embeddings WHERE chunk_id = $1", {chunks_[1]}), 0);
  EXPECT_EQ(Count(*admin_, "SELECT count(*) FROM embedding_jobs WHERE content_chunk_id = $1 AND status = 'pending'",
                  {chunks_[1]}),
            1);
  // The re-queued job embeds the new text.
  auto again = worker.Drain().value();
  EXPECT_EQ(again.completed, 1u);
  ExpectConsistent();
}

TEST_F(WorkerTest, DeletedChunkLeavesNoVector) {
  EmbeddingWorker worker(*pool_, *embedder_, index_.get(), {.batch_size = 10});
  worker.SetFaultHook([&](WorkerStep s) -> Status {
    if (s == WorkerStep::kIndex) {
      auto r = admin_->Exec("DELETE FROM content_chunks WHERE id = $1", {chunks_[2]});
      if (!r) return std::unexpected(r.error());
    }
    return Ok();
  });
  auto r = worker.RunOnce().value();
  EXPECT_EQ(r.completed, 4u);
  EXPECT_FALSE(index_->Contains(chunks_[2]));
  EXPECT_EQ(index_->Count(), 4u);
}

TEST_F(WorkerTest, BackgroundThreadsDrainConcurrently) {
  for (int i = 5; i < 200; ++i) AddChunk(i, "more text " + std::to_string(i));
  EmbeddingWorker worker(*pool_, *embedder_, index_.get(),
                         {.batch_size = 16, .threads = 2, .idle_poll = std::chrono::milliseconds(20)});
  worker.Start();
  for (int i = 0; i < 500; ++i) {
    if (Count(*admin_, "SELECT count(*) FROM embedding_jobs") == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  worker.Stop();
  ExpectConsistent();
  // Each job was taken once: nothing discarded, retried or failed.
  EXPECT_EQ(worker.stats().completed.load(), chunks_.size());
  EXPECT_EQ(worker.stats().discarded.load(), 0u);
  EXPECT_EQ(worker.stats().retried.load(), 0u);
  EXPECT_EQ(worker.stats().failed.load(), 0u);
}

TEST_F(WorkerTest, DeletingTheTenantRemovesItsJobsAndEmbeddingsThroughItsChunks) {
  EmbeddingWorker worker(*pool_, *embedder_, index_.get());
  ASSERT_EQ(worker.Drain().value().completed, 5u);
  AddChunk(5, "queued, not embedded yet");
  ASSERT_EQ(Count(*admin_, "SELECT count(*) FROM chunk_embeddings WHERE tenant_id = $1", {tenant_}), 5);
  ASSERT_EQ(Count(*admin_, "SELECT count(*) FROM embedding_jobs WHERE tenant_id = $1", {tenant_}), 1);
  Q(*admin_, "DELETE FROM tenants WHERE id = $1", {tenant_});
  EXPECT_EQ(Count(*admin_, "SELECT count(*) FROM chunk_embeddings WHERE tenant_id = $1", {tenant_}), 0);
  EXPECT_EQ(Count(*admin_, "SELECT count(*) FROM embedding_jobs WHERE tenant_id = $1", {tenant_}), 0);
  EXPECT_EQ(Count(*admin_, "SELECT count(*) FROM content_chunks WHERE tenant_id = $1", {tenant_}), 0);
}

TEST_F(WorkerTest, APartialBatchWaitsSoThatTricklingJobsShareTheNextOne) {
  // The five chunks of SetUp make a partial first batch (64 allowed); jobs
  // that arrive during the fill wait are claimed together afterwards.
  EmbeddingWorker worker(*pool_, *embedder_, index_.get(),
                         {.batch_size = 64,
                          .threads = 1,
                          .idle_poll = std::chrono::milliseconds(20),
                          .fill_wait = std::chrono::seconds(3)});
  worker.Start();
  auto completed = [&](uint64_t n) {
    for (int i = 0; i < 1000 && worker.stats().completed.load() < n; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return worker.stats().completed.load() >= n;
  };
  ASSERT_TRUE(completed(5));
  AddChunk(5, "arrives during the fill wait");
  AddChunk(6, "arrives a little later, still during it");
  ASSERT_TRUE(completed(7));
  worker.Stop();
  EXPECT_EQ(worker.stats().batches.load(), 2u);
  ExpectConsistent();
}

TEST_F(WorkerTest, AFailedJobIsQueuedAgainWhenItsChunkChanges) {
  DownEmbedder down;
  EmbeddingWorker failing(*pool_, down, nullptr, {.batch_size = 10, .max_attempts = 1});
  ASSERT_EQ(failing.RunOnce().value().failed, 5u);
  Q(*admin_, "UPDATE content_chunks SET content = 'new text', content_hash = md5('new text') WHERE id = $1",
    {chunks_[0]});
  EmbeddingWorker worker(*pool_, *embedder_, index_.get(), {.batch_size = 10});
  auto r = worker.Drain().value();
  EXPECT_EQ(r.completed, 1u);
  EXPECT_TRUE(index_->Contains(chunks_[0]));
  EXPECT_EQ(Count(*admin_, "SELECT count(*) FROM embedding_jobs WHERE status = 'failed'"), 4);
}

// The claim writes only columns that no index of embedding_jobs covers (nor
// an index predicate), so with room on the page it is a heap-only update
// (migration 0014). Same SET list as the worker's claim.
TEST_F(WorkerTest, TheClaimIsAHeapOnlyUpdate) {
  auto tx = pg::Transaction::Begin(*admin_).value();
  auto upd = tx.Exec(
      "UPDATE embedding_jobs j SET status = 'processing', locked_until = clock_timestamp() + interval '1 minute',"
      "  attempt_count = j.attempt_count + 1, last_attempt_at = now(), updated_at = now()"
      " WHERE content_chunk_id = ANY($1::uuid[])",
      {"{" + chunks_[0].ToString() + "," + chunks_[1].ToString() + "}"});
  ASSERT_TRUE(upd.has_value()) << upd.error().ToString();
  EXPECT_EQ(upd->affected(), 2);
  EXPECT_EQ(Count(*admin_, "SELECT pg_stat_get_xact_tuples_hot_updated('embedding_jobs'::regclass)"), 2);
  ASSERT_TRUE(tx.Rollback().has_value());
}

// embedding_jobs has no foreign key to its chunk any more (migration 0014):
// every way a chunk goes away still takes its job and its vector rows along.
TEST_F(WorkerTest, EveryDeleteOfAChunkRemovesItsJobAndEmbeddings) {
  EmbeddingWorker worker(*pool_, *embedder_, index_.get());
  ASSERT_EQ(worker.Drain().value().completed, 5u);
  // A second item with a queued (not yet embedded) chunk.
  Uuid item2 = Uuid::NewV4();
  Q(*admin_,
    "INSERT INTO content_items (id, tenant_id, project_id, title, content_type) VALUES ($1,$2,$3,'D2','text/plain')",
    {item2, tenant_, project_});
  Uuid queued = Uuid::NewV4();
  Q(*admin_,
    "INSERT INTO content_chunks (id, tenant_id, content_item_id, chunk_index, content, content_hash)"
    " VALUES ($1, $2, $3, 0, 'queued text', md5('queued text'))",
    {queued, tenant_, item2});
  auto rows_of = [&](const Uuid& chunk) {
    return Count(*admin_, "SELECT count(*) FROM embedding_jobs WHERE content_chunk_id = $1", {chunk}) +
           Count(*admin_, "SELECT count(*) FROM chunk_embeddings WHERE chunk_id = $1", {chunk});
  };
  ASSERT_EQ(rows_of(queued), 1);
  // A chunk with a pending job and one with an embedding and a re-queued job,
  // deleted directly by the application role under row-level security.
  Q(*admin_, "UPDATE content_chunks SET content = 'changed', content_hash = md5('changed') WHERE id = $1",
    {chunks_[0]});
  ASSERT_EQ(rows_of(chunks_[0]), 2);
  {
    auto app = db_.App();
    auto tx = pg::Transaction::Begin(app).value();
    ASSERT_TRUE(tx.SetTenant(tenant_));
    auto del = tx.Exec("DELETE FROM content_chunks WHERE id = ANY($1::uuid[])",
                       {"{" + chunks_[0].ToString() + "," + chunks_[1].ToString() + "}"});
    ASSERT_TRUE(del.has_value()) << del.error().ToString();
    EXPECT_EQ(del->affected(), 2);
    ASSERT_TRUE(tx.Commit().has_value());
  }
  EXPECT_EQ(rows_of(chunks_[0]), 0);
  EXPECT_EQ(rows_of(chunks_[1]), 0);
  // Through the item's cascade.
  Q(*admin_, "DELETE FROM content_items WHERE id = $1", {item2});
  EXPECT_EQ(rows_of(queued), 0);
  // TRUNCATE (with CASCADE, for the other references) empties the queue too.
  AddChunk(9, "queued before the truncate");
  ASSERT_GT(Count(*admin_, "SELECT count(*) FROM embedding_jobs"), 0);
  Q(*admin_, "TRUNCATE content_chunks CASCADE");
  EXPECT_EQ(Count(*admin_, "SELECT count(*) FROM embedding_jobs"), 0);
  EXPECT_EQ(Count(*admin_, "SELECT count(*) FROM chunk_embeddings"), 0);
}

// A delete that races with a store: the store holds the job (as the worker's
// store statement does) and has written the vector row; the delete waits for
// it, then removes both, with no deadlock and no orphan.
TEST_F(WorkerTest, ADeleteWaitsForAStoreHoldingTheJobAndLeavesNoOrphan) {
  const Uuid chunk = chunks_[3];
  auto store_conn = db_.Admin();
  auto tx = pg::Transaction::Begin(store_conn).value();
  ASSERT_TRUE(tx.Exec("SELECT 1 FROM embedding_jobs WHERE content_chunk_id = $1 FOR UPDATE", {chunk}).has_value());
  auto vec = EncodeVector(std::vector<float>(embedder_->dimension(), 0.5f));
  auto ins = tx.Exec(
      "INSERT INTO chunk_embeddings (tenant_id, chunk_id, model, model_version, dimension, embedding, content_hash)"
      " SELECT tenant_id, id, 'm', '1', $2::integer, $3::bytea, content_hash FROM content_chunks WHERE id = $1",
      {chunk, static_cast<int64_t>(embedder_->dimension()), pg::Param::Bytes(vec)});
  ASSERT_TRUE(ins.has_value()) << ins.error().ToString();
  std::atomic<bool> deleted{false};
  Status delete_status = Ok();
  std::thread deleter([&] {
    auto c = db_.Admin();
    auto r = c.Exec("DELETE FROM content_chunks WHERE id = $1", {chunk});
    if (!r) delete_status = std::unexpected(r.error());
    deleted = true;
  });
  // The delete cannot finish while the store holds the job.
  for (int i = 0; i < 50 && !deleted; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_FALSE(deleted.load());
  ASSERT_TRUE(tx.Commit().has_value());
  deleter.join();
  EXPECT_TRUE(delete_status.has_value()) << delete_status.error().ToString();
  EXPECT_EQ(Count(*admin_, "SELECT count(*) FROM content_chunks WHERE id = $1", {chunk}), 0);
  EXPECT_EQ(Count(*admin_, "SELECT count(*) FROM chunk_embeddings WHERE chunk_id = $1", {chunk}), 0);
  EXPECT_EQ(Count(*admin_, "SELECT count(*) FROM embedding_jobs WHERE content_chunk_id = $1", {chunk}), 0);
}

// A delete that arrives while the store statement holds the jobs but has not
// yet locked the chunks through the chunk_embeddings key. A DELETE locks the
// chunk's row before its BEFORE DELETE trigger runs, then waits in the
// trigger for the job; a store that locks the job before the chunk would wait
// for the deleter in turn (a deadlock, one side rolled back). Made
// deterministic by an uncommitted vector row of another chunk of the batch
// that parks the store statement after it has locked the jobs.
TEST_F(WorkerTest, ADeleteDuringTheStoreStatementDoesNotDeadlock) {
  const Uuid parked = chunks_[0];
  const Uuid doomed = chunks_[2];
  auto blocker = db_.Admin();
  auto btx = pg::Transaction::Begin(blocker).value();
  auto vec = EncodeVector(std::vector<float>(embedder_->dimension(), 0.5f));
  ASSERT_TRUE(btx.Exec("INSERT INTO chunk_embeddings (tenant_id, chunk_id, model, model_version, dimension, "
                       "embedding, content_hash)"
                       " SELECT tenant_id, id, $2, $3, $4::integer, $5::bytea, content_hash FROM content_chunks"
                       " WHERE id = $1",
                       {parked, embedder_->model_name(), embedder_->model_version(),
                        static_cast<int64_t>(embedder_->dimension()), pg::Param::Bytes(vec)})
                  .has_value());
  auto waiting = [&](std::string_view like) {
    return Count(*admin_, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1",
                 {std::string(like)});
  };
  EmbeddingWorker worker(*pool_, *embedder_, index_.get());
  Result<BatchResult> run = BatchResult{};
  std::thread runner([&] { run = worker.RunOnce(); });
  for (int i = 0; i < 500 && waiting("%INSERT INTO chunk_embeddings%") == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(waiting("%INSERT INTO chunk_embeddings%"), 1) << "the store statement is not parked";
  Status delete_status = Ok();
  std::thread deleter([&] {
    auto c = db_.Admin();
    auto r = c.Exec("DELETE FROM content_chunks WHERE id = $1", {doomed});
    if (!r) delete_status = std::unexpected(r.error());
  });
  for (int i = 0; i < 500 && waiting("DELETE FROM content_chunks%") == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(waiting("DELETE FROM content_chunks%"), 1);
  ASSERT_TRUE(btx.Rollback().has_value());
  deleter.join();
  runner.join();
  EXPECT_TRUE(delete_status.has_value()) << delete_status.error().ToString();
  ASSERT_TRUE(run.has_value()) << run.error().ToString();
  EXPECT_EQ(run->claimed, 5u);
  // The delete may commit before or after the completion; either way the
  // doomed chunk leaves nothing behind in PostgreSQL.
  EXPECT_EQ(run->completed + run->discarded, 5u);
  EXPECT_EQ(Count(*admin_, "SELECT count(*) FROM content_chunks WHERE id = $1", {doomed}), 0);
  EXPECT_EQ(Count(*admin_, "SELECT count(*) FROM chunk_embeddings WHERE chunk_id = $1", {doomed}), 0);
  EXPECT_EQ(Count(*admin_, "SELECT count(*) FROM embedding_jobs"), 0);
  EXPECT_EQ(Count(*admin_,
                  "SELECT count(*) FROM chunk_embeddings e JOIN content_chunks c ON c.id = e.chunk_id"
                  " AND c.content_hash = e.content_hash"),
            4);
}

// The two SECURITY DEFINER trigger functions of migration 0014 run as the
// schema's owner. The application role must not be able to attach them to a
// table of its own (a temporary one needs no grant) and so delete or truncate
// the queue of every tenant: EXECUTE on them is not granted to it.
TEST_F(WorkerTest, TheApplicationRoleCannotBorrowTheQueueTriggers) {
  const int64_t jobs = Count(*admin_, "SELECT count(*) FROM embedding_jobs");
  ASSERT_EQ(jobs, 5);
  const Uuid other = Uuid::NewV4();
  Q(*admin_, "INSERT INTO tenants (id, name, slug) VALUES ($1, 'O', $2)", {other, "o-" + other.ToString()});
  auto app = db_.App();
  const std::string attacks[] = {
      "CREATE TEMP TABLE borrowed_delete (id uuid)",
      "CREATE TRIGGER borrowed_delete BEFORE DELETE ON borrowed_delete FOR EACH ROW"
      " EXECUTE FUNCTION cnx_delete_embedding_job()",
      "INSERT INTO borrowed_delete VALUES ('" + chunks_[0].ToString() + "')",
      "DELETE FROM borrowed_delete",
      "CREATE TEMP TABLE borrowed_truncate (id uuid)",
      "CREATE TRIGGER borrowed_truncate AFTER TRUNCATE ON borrowed_truncate FOR EACH STATEMENT"
      " EXECUTE FUNCTION cnx_truncate_embedding_jobs()",
      "TRUNCATE borrowed_truncate",
  };
  int refused = 0;
  for (const auto& sql : attacks) {
    auto tx = pg::Transaction::Begin(app).value();
    ASSERT_TRUE(tx.SetTenant(other));
    auto r = tx.Exec(sql);
    if (r) {
      ASSERT_TRUE(tx.Commit().has_value());
    } else {
      ++refused;
      (void)tx.Rollback();
    }
  }
  EXPECT_EQ(refused, 2);  // the two CREATE TRIGGERs; the rest then runs without a trigger
  EXPECT_EQ(Count(*admin_, "SELECT count(*) FROM embedding_jobs"), jobs);
  EXPECT_EQ(Count(*admin_, "SELECT count(*) FROM embedding_jobs WHERE content_chunk_id = $1", {chunks_[0]}), 1);
}

}  // namespace
}  // namespace cnx::embed
