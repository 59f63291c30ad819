// Model change: a checkpoint of lexical-hash-v1 at 384 dimensions, a server
// configured with 256 dimensions. The old index keeps serving (searchable
// with the old query embedder) while every chunk is re-embedded in the
// background; then index and query embedder switch together, and the next
// start loads the new model's checkpoint.
#include <gtest/gtest.h>

#include <fstream>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "bus/in_process_bus.h"
#include "embed/lexical_embedder.h"
#include "embed/model_change.h"
#include "embed/vector_service.h"
#include "schema/testing/test_database.h"

namespace cnx::embed {
namespace {

using schema::testing::TestDatabase;

void Q(pg::Connection& c, std::string_view sql, std::initializer_list<pg::Param> params = {}) {
  auto r = c.Exec(sql, params);
  ASSERT_TRUE(r.has_value()) << sql << ": " << r.error().ToString();
}

int64_t Count(pg::Connection& c, std::string_view sql, std::initializer_list<pg::Param> params = {}) {
  auto r = c.Exec(sql, params);
  EXPECT_TRUE(r.has_value()) << sql;
  return r ? (*r)[0].Get<int64_t>(0).value_or(-1) : -1;
}

template <typename Pred>
bool WaitFor(Pred pred) {
  for (int i = 0; i < 1500; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

// Delegates to an embedder, but Embed() waits until the gate opens.
class GatedEmbedder : public Embedder {
 public:
  explicit GatedEmbedder(Embedder& inner) : inner_(inner) {}
  std::string_view model_name() const override { return inner_.model_name(); }
  std::string_view model_version() const override { return inner_.model_version(); }
  size_t dimension() const override { return inner_.dimension(); }
  Result<std::vector<std::vector<float>>> Embed(std::span<const std::string> texts) override {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return open_; });
    lock.unlock();
    return inner_.Embed(texts);
  }
  void Open() {
    {
      std::lock_guard lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }

 private:
  Embedder& inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

class ModelChangeTest : public ::testing::Test {
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
    static const char* kTopics[] = {"vacuum reclaims dead tuples", "write-ahead log durability", "btree index lookups",
                                    "logical replication slots", "query planner statistics"};
    for (int i = 0; i < 40; ++i) {
      Uuid id = Uuid::NewV4();
      std::string text = std::string(kTopics[i % 5]) + " note " + std::to_string(i);
      Q(*admin_,
        "INSERT INTO content_chunks (id, tenant_id, content_item_id, chunk_index, content, content_hash)"
        " VALUES ($1, $2, $3, $4, $5, md5($5))",
        {id, tenant_, item_, static_cast<int32_t>(i), text});
      chunks_.push_back(id);
    }
    pg::PoolOptions po;
    po.conninfo = db_.AdminUrl();
    po.max_size = 4;
    pool_ = std::make_unique<pg::Pool>(po);
    dir_ = std::filesystem::path(CNX_BINARY_DIR) / "model_change_test" / db_.name();
    std::filesystem::remove_all(dir_);
    opts_.dir = dir_;
    opts_.worker.idle_poll = std::chrono::milliseconds(20);
    opts_.reembed_batch = 7;
    opts_.previous_embedder = [](const std::string& tag) -> Result<std::unique_ptr<Embedder>> {
      if (tag != "lexical-hash-v1/1-d384") return Err(Module::kEmbed, ErrorCode::kNotFound, "unknown model " + tag);
      auto e = CNX_TRY(LexicalHashEmbedder::Create({.dimension = 384}));
      return std::unique_ptr<Embedder>(std::move(e));
    };
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // The best hit for `text` embedded with the service's query embedder.
  std::optional<Uuid> Top(VectorService& svc, const std::string& text) {
    std::vector<std::string> q{text};
    auto v = svc.query_embedder().Embed(q);
    EXPECT_TRUE(v.has_value());
    if (!v) return std::nullopt;
    auto hits = svc.index().Search((*v)[0], 1, {.tenant = tenant_, .projects = {}});
    EXPECT_TRUE(hits.has_value()) << (hits ? "" : hits.error().ToString());
    if (!hits || hits->empty()) return std::nullopt;
    return (*hits)[0].id;
  }

  TestDatabase db_;
  std::unique_ptr<pg::Connection> admin_;
  Uuid tenant_ = Uuid::NewV4(), program_ = Uuid::NewV4(), project_ = Uuid::NewV4(), item_ = Uuid::NewV4();
  std::vector<Uuid> chunks_;
  std::unique_ptr<pg::Pool> pool_;
  std::filesystem::path dir_;
  VectorServiceOptions opts_;
};

TEST_F(ModelChangeTest, OldVectorsServeWhileReembeddingThenSwitchAtomically) {
  auto d384 = LexicalHashEmbedder::Create({.dimension = 384}).value();
  auto d256 = LexicalHashEmbedder::Create({.dimension = 256}).value();
  const std::string old_version(d384->model_version()), new_version(d256->model_version());
  ASSERT_NE(old_version, new_version);

  {  // The old model embeds everything and checkpoints.
    bus::InProcessBus bus;
    auto svc = VectorService::Start(opts_, *pool_, *d384, &bus);
    ASSERT_TRUE(svc.has_value()) << svc.error().ToString();
    ASSERT_TRUE(WaitFor([&] { return (*svc)->index().Count() == chunks_.size(); }));
    (*svc)->Stop();
  }
  auto ckpt = ReadCheckpointModel(dir_);
  ASSERT_TRUE(ckpt.has_value());
  EXPECT_EQ(ckpt->model_tag, "lexical-hash-v1/" + old_version);
  EXPECT_EQ(ckpt->dimension, 384u);

  // A chunk's text changes while the server is down: its job is pending.
  Q(*admin_,
    "UPDATE content_chunks SET content = 'btree index lookups, revised', content_hash = md5('x') WHERE id = $1",
    {chunks_[2]});

  GatedEmbedder gated(*d256);
  {
    bus::InProcessBus bus;
    auto svc = VectorService::Start(opts_, *pool_, gated, &bus);
    ASSERT_TRUE(svc.has_value()) << svc.error().ToString();
    VectorService& s = **svc;
    // Nothing re-embedded yet (the embedder is held): the old model serves.
    EXPECT_TRUE(s.stats().migrating);
    EXPECT_EQ(s.stats().migrated_from, "lexical-hash-v1/" + old_version);
    EXPECT_EQ(s.index().dimension(), 384u);
    EXPECT_EQ(s.query_embedder().model_version(), old_version);
    EXPECT_EQ(s.index().Count(), chunks_.size());
    EXPECT_EQ(Top(s, "write-ahead log durability note 11"), chunks_[11]);
    EXPECT_EQ(Count(*admin_, "SELECT count(*) FROM chunk_embeddings WHERE model_version = $1", {new_version}), 0);
    EXPECT_FALSE(s.WaitForModelChange(std::chrono::milliseconds(200)));
    // A checkpoint taken meanwhile is still the old model's (a restart resumes).
    ASSERT_TRUE(s.CheckpointNow().has_value());
    EXPECT_EQ(ReadCheckpointModel(dir_)->model_tag, "lexical-hash-v1/" + old_version);

    gated.Open();
    ASSERT_TRUE(s.WaitForModelChange(std::chrono::seconds(30)));
    EXPECT_FALSE(s.stats().migrating);
    EXPECT_EQ(s.index().dimension(), 256u);
    EXPECT_EQ(s.query_embedder().model_version(), new_version);
    // Every chunk has a row of the new model for its current text; the old rows stay.
    EXPECT_EQ(Count(*admin_,
                    "SELECT count(*) FROM content_chunks c JOIN chunk_embeddings e ON e.chunk_id = c.id"
                    " AND e.model_version = $1 AND e.content_hash = c.content_hash",
                    {new_version}),
              static_cast<int64_t>(chunks_.size()));
    EXPECT_GE(Count(*admin_, "SELECT count(*) FROM chunk_embeddings WHERE model_version = $1", {old_version}),
              static_cast<int64_t>(chunks_.size()) - 1);
    EXPECT_TRUE(WaitFor([&] { return s.index().Count() == chunks_.size(); })) << s.index().Count();
    EXPECT_EQ(Top(s, "write-ahead log durability note 11"), chunks_[11]);
    EXPECT_EQ(Top(s, "btree index lookups, revised"), chunks_[2]);
    EXPECT_EQ(ReadCheckpointModel(dir_)->model_tag, "lexical-hash-v1/" + new_version);
    s.Stop();
  }

  {  // The next start serves the new model's checkpoint directly.
    bus::InProcessBus bus;
    auto svc = VectorService::Start(opts_, *pool_, *d256, &bus);
    ASSERT_TRUE(svc.has_value()) << svc.error().ToString();
    EXPECT_FALSE((*svc)->stats().migrating);
    EXPECT_FALSE((*svc)->stats().rebuilt);
    EXPECT_EQ((*svc)->index().Count(), chunks_.size());
    EXPECT_EQ(Top(**svc, "logical replication slots note 3"), chunks_[3]);
  }
}

TEST_F(ModelChangeTest, WithoutAnEmbedderForTheOldModelTheIndexIsRebuilt) {
  auto d384 = LexicalHashEmbedder::Create({.dimension = 384}).value();
  auto d256 = LexicalHashEmbedder::Create({.dimension = 256}).value();
  {
    bus::InProcessBus bus;
    auto svc = VectorService::Start(opts_, *pool_, *d384, &bus);
    ASSERT_TRUE(svc.has_value());
    ASSERT_TRUE(WaitFor([&] { return (*svc)->index().Count() == chunks_.size(); }));
  }
  opts_.previous_embedder = nullptr;
  bus::InProcessBus bus;
  auto svc = VectorService::Start(opts_, *pool_, *d256, &bus);
  ASSERT_TRUE(svc.has_value());
  EXPECT_FALSE((*svc)->stats().migrating);
  EXPECT_TRUE((*svc)->stats().rebuilt);
  EXPECT_EQ((*svc)->index().dimension(), 256u);
}

// The old model's checkpoint holds bfloat16 graphs and the setting is now
// float32 (vector.storage changed with the model): a float32 index cannot
// take them, so the old model serves from a bfloat16 index until the new
// model's float32 index is complete — the service starts either way.
TEST_F(ModelChangeTest, OldBfloat16CheckpointServesWhenTheSettingIsFloat32) {
  auto d384 = LexicalHashEmbedder::Create({.dimension = 384}).value();
  auto d256 = LexicalHashEmbedder::Create({.dimension = 256}).value();
  opts_.hnsw.exact_threshold = 16;  // graph partitions, not exact ones
  opts_.hnsw.storage = vector::Storage::kBfloat16;
  {
    bus::InProcessBus bus;
    auto svc = VectorService::Start(opts_, *pool_, *d384, &bus);
    ASSERT_TRUE(svc.has_value()) << svc.error().ToString();
    // Count() moves before the partition is promoted to a graph (UpsertInto).
    ASSERT_TRUE(WaitFor([&] {
      return (*svc)->index().Count() == chunks_.size() && (*svc)->index().Stats().graph_partitions == 1;
    })) << (*svc)->index().Stats().graph_partitions;
    (*svc)->Stop();
  }
  opts_.hnsw.storage = vector::Storage::kFloat32;
  GatedEmbedder gated(*d256);
  bus::InProcessBus bus;
  auto svc = VectorService::Start(opts_, *pool_, gated, &bus);
  ASSERT_TRUE(svc.has_value()) << svc.error().ToString();
  VectorService& s = **svc;
  EXPECT_TRUE(s.stats().migrating);
  EXPECT_EQ(s.index().dimension(), 384u);
  EXPECT_EQ(s.index().Count(), chunks_.size());
  EXPECT_EQ(Top(s, "write-ahead log durability note 11"), chunks_[11]);
  gated.Open();
  ASSERT_TRUE(s.WaitForModelChange(std::chrono::seconds(30)));
  EXPECT_EQ(s.index().dimension(), 256u);
  EXPECT_TRUE(WaitFor([&] { return s.index().Count() == chunks_.size(); })) << s.index().Count();
  EXPECT_EQ(Top(s, "write-ahead log durability note 11"), chunks_[11]);
  s.Stop();
}

// An old model's checkpoint that cannot be loaded (here: corrupt) does not
// keep the service from starting: it rebuilds for the new model.
TEST_F(ModelChangeTest, UnloadableOldCheckpointIsRebuiltForTheNewModel) {
  auto d384 = LexicalHashEmbedder::Create({.dimension = 384}).value();
  auto d256 = LexicalHashEmbedder::Create({.dimension = 256}).value();
  opts_.hnsw.exact_threshold = 16;
  {
    bus::InProcessBus bus;
    auto svc = VectorService::Start(opts_, *pool_, *d384, &bus);
    ASSERT_TRUE(svc.has_value()) << svc.error().ToString();
    ASSERT_TRUE(WaitFor([&] { return (*svc)->index().Count() == chunks_.size(); }));
    (*svc)->Stop();
  }
  // Truncate every graph file of the live checkpoint.
  std::string current;
  std::ifstream(dir_ / "CURRENT") >> current;
  size_t truncated = 0;
  for (const auto& f : std::filesystem::directory_iterator(dir_ / current))
    if (f.path().extension() == ".hnsw" || f.path().filename().string().find("graph") != std::string::npos) {
      std::filesystem::resize_file(f.path(), std::filesystem::file_size(f.path()) / 2);
      ++truncated;
    }
  ASSERT_GT(truncated, 0u);
  ASSERT_TRUE(ReadCheckpointModel(dir_).has_value());
  bus::InProcessBus bus;
  auto svc = VectorService::Start(opts_, *pool_, *d256, &bus);
  ASSERT_TRUE(svc.has_value()) << svc.error().ToString();
  EXPECT_FALSE((*svc)->stats().migrating);
  EXPECT_TRUE((*svc)->stats().rebuilt);
  EXPECT_EQ((*svc)->index().dimension(), 256u);
}

}  // namespace
}  // namespace cnx::embed
