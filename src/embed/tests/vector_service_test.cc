// The vector index lifecycle: start (rebuild or checkpoint + catch-up), the
// worker feeding it, delete events from the bus, checkpoint on stop.
#include "embed/vector_service.h"

#include <gtest/gtest.h>

#include <thread>

#include "bus/in_process_bus.h"
#include "embed/lexical_embedder.h"
#include "schema/testing/test_database.h"

namespace cnx::embed {
namespace {

using schema::testing::TestDatabase;

void Q(pg::Connection& c, std::string_view sql, std::initializer_list<pg::Param> params = {}) {
  auto r = c.Exec(sql, params);
  ASSERT_TRUE(r.has_value()) << sql << ": " << r.error().ToString();
}

template <typename Pred>
bool WaitFor(Pred pred) {
  for (int i = 0; i < 500; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

TEST(DeletedChunkIdTest, OnlyChunkDeletes) {
  Uuid id = Uuid::NewV4();
  auto del = R"({"op":"d","table":"content_chunks","id":")" + id.ToString() + R"(","old":{}})";
  ASSERT_TRUE(DeletedChunkId(del).has_value());
  EXPECT_EQ(*DeletedChunkId(del), id);
  EXPECT_FALSE(DeletedChunkId(R"({"op":"u","table":"content_chunks","id":")" + id.ToString() + "\"}").has_value());
  EXPECT_FALSE(DeletedChunkId(R"({"op":"d","table":"content_items","id":")" + id.ToString() + "\"}").has_value());
  EXPECT_FALSE(DeletedChunkId("not json").has_value());
  EXPECT_FALSE(DeletedChunkId(R"({"op":"d","table":"content_chunks","id":"zz"})").has_value());
}

// Inserts and updates of chunks (nearly every event on the topic) are told
// apart by the event's type header without parsing the chunk's text; without
// the header, or for a delete, the payload decides.
TEST(DeletedChunkIdTest, TypeHeaderSkipsThePayload) {
  Uuid id = Uuid::NewV4();
  const std::string del = R"({"op":"d","table":"content_chunks","id":")" + id.ToString() + R"(","old":{}})";
  bus::Event e;
  e.topic = "outbox.event.content_chunks";
  e.value = del;
  ASSERT_TRUE(DeletedChunkId(e).has_value());  // no header: the payload
  EXPECT_EQ(*DeletedChunkId(e), id);
  e.headers.push_back({"type", "content_chunks.deleted"});
  ASSERT_TRUE(DeletedChunkId(e).has_value());
  EXPECT_EQ(*DeletedChunkId(e), id);
  // The header wins for inserts and updates: this payload is never read.
  e.headers.back().value = "content_chunks.created";
  EXPECT_FALSE(DeletedChunkId(e).has_value());
  e.headers.back().value = "content_chunks.updated";
  EXPECT_FALSE(DeletedChunkId(e).has_value());
  e.headers.back().value = "something.else";
  EXPECT_TRUE(DeletedChunkId(e).has_value());
}

TEST(VectorServiceTest, LifecycleAcrossRestarts) {
  TestDatabase db;
  auto admin = db.Admin();
  Uuid tenant = Uuid::NewV4(), program = Uuid::NewV4(), project = Uuid::NewV4(), item = Uuid::NewV4();
  Q(admin, "INSERT INTO tenants (id, name, slug) VALUES ($1, 'T', $2)", {tenant, "t-" + tenant.ToString()});
  Q(admin, "INSERT INTO programs (id, tenant_id, name) VALUES ($1, $2, 'P')", {program, tenant});
  Q(admin, "INSERT INTO projects (id, tenant_id, program_id, name) VALUES ($1, $2, $3, 'Proj')",
    {project, tenant, program});
  Q(admin,
    "INSERT INTO content_items (id, tenant_id, project_id, title, content_type) VALUES ($1,$2,$3,'Doc','text/plain')",
    {item, tenant, project});
  std::vector<Uuid> chunks;
  auto add_chunk = [&](int i) {
    Uuid id = Uuid::NewV4();
    std::string text = "service chunk " + std::to_string(i);
    Q(admin,
      "INSERT INTO content_chunks (id, tenant_id, content_item_id, chunk_index, content, content_hash)"
      " VALUES ($1, $2, $3, $4, $5, md5($5))",
      {id, tenant, item, static_cast<int32_t>(i), text});
    chunks.push_back(id);
  };
  for (int i = 0; i < 20; ++i) add_chunk(i);

  pg::PoolOptions po;
  po.conninfo = db.AdminUrl();
  pg::Pool pool(po);
  auto embedder = LexicalHashEmbedder::Create().value();
  const auto dir = std::filesystem::path(CNX_BINARY_DIR) / "vector_service_test" / db.name();
  std::filesystem::remove_all(dir);
  VectorServiceOptions opts;
  opts.dir = dir;
  opts.worker.idle_poll = std::chrono::milliseconds(20);

  {
    bus::InProcessBus bus;
    auto svc = VectorService::Start(opts, pool, *embedder, &bus);
    ASSERT_TRUE(svc.has_value()) << svc.error().ToString();
    EXPECT_TRUE((*svc)->stats().rebuilt);  // no checkpoint yet
    ASSERT_TRUE(WaitFor([&] { return (*svc)->index().Count() == 20; }));

    // A chunk is deleted; its delete event removes the vector.
    Q(admin, "DELETE FROM content_chunks WHERE id = $1", {chunks[0]});
    bus::Event ev{.topic = "outbox.event.content_chunks",
                  .key = chunks[0].ToString(),
                  .value = R"({"op":"d","table":"content_chunks","id":")" + chunks[0].ToString() + "\"}"};
    ASSERT_TRUE(bus.Publish(1, {ev}, [](const bus::BatchAck&) {}).has_value());
    ASSERT_TRUE(WaitFor([&] { return !(*svc)->index().Contains(chunks[0]); }));
    EXPECT_EQ((*svc)->stats().deletes.load(), 1u);
    (*svc)->Stop();  // writes the checkpoint
  }
  ASSERT_TRUE(std::filesystem::exists(dir));

  // While the server is down, one more chunk is embedded (by a worker without index).
  add_chunk(20);
  EmbeddingWorker offline(pool, *embedder, nullptr);
  ASSERT_EQ(offline.Drain().value().completed, 1u);

  VectorServiceOptions again = opts;
  again.run_worker = false;
  auto svc = VectorService::Start(again, pool, *embedder, nullptr);
  ASSERT_TRUE(svc.has_value()) << svc.error().ToString();
  EXPECT_FALSE((*svc)->stats().rebuilt);  // loaded the checkpoint
  EXPECT_GT((*svc)->stats().loaded_position, 0u);
  EXPECT_GE((*svc)->stats().caught_up, 1u);
  EXPECT_EQ((*svc)->index().Count(), 20u);
  EXPECT_TRUE((*svc)->index().Contains(chunks[20]));
  EXPECT_FALSE((*svc)->index().Contains(chunks[0]));
  auto conn = pool.Acquire().value();
  EXPECT_TRUE(Verify(*conn, (*svc)->model(), (*svc)->index()).value().clean());
  (*svc)->Stop();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cnx::embed
