// The projector behind the in-process bus: group commit, retries, dead letters.
#include "sync/graph_consumer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include "bus/in_process_bus.h"
#include "graph/embedded_graph_store.h"
#include "schema/testing/test_database.h"
#include "sync/graph_verify.h"

namespace cnx::sync {
namespace {

using schema::testing::TestDatabase;

// A store that fails its first `failures` writes (then behaves), or fails
// every write that touches `poison_id`.
class FlakyStore final : public graph::GraphStore {
 public:
  explicit FlakyStore(int failures) : inner_(graph::EmbeddedGraphStore::InMemory()), failures_(failures) {}
  Status EnsureSchema(const std::vector<std::string>& l) override { return inner_->EnsureSchema(l); }
  Result<graph::ApplyResult> Apply(const graph::MutationBatch& b) override {
    if (failures_.fetch_sub(1) > 0) return Err(Module::kGraph, ErrorCode::kUnavailable, "injected failure");
    for (const auto& m : b.mutations) {
      if (auto* n = std::get_if<graph::UpsertNode>(&m); n && n->id == poison_id) {
        return Err(Module::kGraph, ErrorCode::kUnavailable, "poisoned");
      }
    }
    ++writes;
    return inner_->Apply(b);
  }
  Result<uint64_t> AppliedPosition() override { return inner_->AppliedPosition(); }
  Result<graph::PurgeResult> PurgeTombstones(std::chrono::seconds horizon, size_t limit) override {
    return inner_->PurgeTombstones(horizon, limit);
  }
  Result<std::optional<graph::Node>> GetNode(const std::string& id, const graph::ReadOptions& o) override {
    return inner_->GetNode(id, o);
  }
  Result<std::optional<graph::Relationship>> GetRelationship(const std::string& id,
                                                             const graph::ReadOptions& o) override {
    return inner_->GetRelationship(id, o);
  }
  Result<std::vector<graph::Neighbour>> Neighbours(const graph::NeighbourQuery& q,
                                                   const graph::ReadOptions& o) override {
    return inner_->Neighbours(q, o);
  }
  Result<std::optional<graph::Path>> ShortestPath(const graph::PathQuery& q, const graph::ReadOptions& o) override {
    return inner_->ShortestPath(q, o);
  }
  Result<graph::Subgraph> GetSubgraph(const graph::SubgraphQuery& q, const graph::ReadOptions& o) override {
    return inner_->GetSubgraph(q, o);
  }
  Result<graph::Counts> GetCounts(const graph::ReadOptions& o) override { return inner_->GetCounts(o); }

  std::string poison_id;
  std::atomic<int> writes{0};

 private:
  std::unique_ptr<graph::EmbeddedGraphStore> inner_;
  std::atomic<int> failures_;
};

// Publishes every outbox row as the relay would (topic per table, key = id).
void PublishOutbox(pg::Connection& c, bus::Bus& bus, uint64_t& seq) {
  auto rows = c.Exec("SELECT aggregatetype, aggregateid, payload::text FROM outbox ORDER BY created_at, ctid").value();
  ASSERT_TRUE(c.ExecScript("DELETE FROM outbox"));
  std::vector<bus::Event> events;
  for (int i = 0; i < rows.rows(); ++i) {
    events.push_back({"outbox.event." + std::string(rows[i].Text(0)),
                      std::string(rows[i].Text(1)),
                      std::string(rows[i].Text(2)),
                      {}});
  }
  ASSERT_TRUE(bus.Publish(++seq, std::move(events), [](const bus::BatchAck&) {}));
}

void MakeProjectTree(pg::Connection& c, int threads, Uuid& tenant, Uuid& project) {
  tenant = Uuid::NewV4();
  project = Uuid::NewV4();
  Uuid program = Uuid::NewV4();
  ASSERT_TRUE(c.Exec("INSERT INTO tenants (id, name, slug) VALUES ($1, 'T', $2)",
                     {tenant, "t-" + tenant.ToString().substr(0, 8)}));
  ASSERT_TRUE(c.Exec("INSERT INTO programs (id, tenant_id, name) VALUES ($1, $2, 'P')", {program, tenant}));
  ASSERT_TRUE(c.Exec("INSERT INTO projects (id, tenant_id, program_id, name) VALUES ($1, $2, $3, 'X')",
                     {project, tenant, program}));
  for (int i = 0; i < threads; ++i) {
    ASSERT_TRUE(c.Exec("INSERT INTO threads (tenant_id, project_id, title) VALUES ($1, $2, $3)",
                       {tenant, project, "t" + std::to_string(i)}));
  }
}

// A bus whose deliveries the test makes itself, from threads it controls, to
// force an order the real buses only produce by chance (a chunk's event
// handled before its content item's).
class HandDrivenBus final : public bus::Bus {
 public:
  Status Publish(uint64_t, std::vector<bus::Event>, bus::AckCallback) override {
    return Err(Module::kBus, ErrorCode::kUnimplemented, "hand-driven");
  }
  Result<std::unique_ptr<bus::Subscription>> SubscribeBatch(bus::SubscribeOptions, bus::BatchHandler handler) override {
    handler_ = std::move(handler);
    struct Sub final : bus::Subscription {
      void Close() override {}
    };
    return std::unique_ptr<bus::Subscription>(new Sub());
  }
  uint64_t durable_through() const override { return 0; }
  uint64_t published_through() const override { return 0; }
  Status Flush(std::chrono::milliseconds) override { return Ok(); }

  // Delivers the outbox row of `id` (attempt `attempt`) on a new thread.
  std::future<bus::HandlerResult> Deliver(pg::Connection& c, const std::string& id, int attempt = 1) {
    auto row = c.Exec(
                    "SELECT aggregatetype, payload::text FROM outbox WHERE aggregateid = $1 ORDER BY created_at DESC, "
                    "ctid DESC LIMIT 1",
                    {id})
                   .value();
    EXPECT_EQ(row.rows(), 1) << id;
    auto ev = std::make_shared<bus::Event>(
        bus::Event{"outbox.event." + std::string(row[0].Text(0)), id, std::string(row[0].Text(1)), {}});
    return std::async(std::launch::async, [this, ev, attempt] {
      bus::Delivery d{*ev, attempt, 0, ++offset_};
      bus::HandlerResult r;
      handler_(std::span(&d, 1), std::span(&r, 1));
      return r;
    });
  }

 private:
  bus::BatchHandler handler_;
  std::atomic<int64_t> offset_{0};
};

template <typename F>
bool WaitFor(F done) {
  for (int i = 0; i < 2000 && !done(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return done();
}

TEST(GraphConsumer, ProjectsThroughTheBusAndRetriesAFailingStore) {
  TestDatabase db;
  auto c = db.Admin();
  pg::PoolOptions po;
  po.conninfo = db.AdminUrl();
  pg::Pool pool(po);
  FlakyStore store(/*failures=*/3);
  GraphProjector projector(store, &pool);
  bus::InProcessBus bus;
  GraphConsumerOptions o;
  o.retry_backoff = std::chrono::milliseconds(5);
  o.max_backoff = std::chrono::milliseconds(20);
  auto consumer = GraphConsumer::Start(bus, projector, o);
  ASSERT_TRUE(consumer.has_value()) << consumer.error().ToString();

  Uuid tenant, project;
  MakeProjectTree(c, 200, tenant, project);
  uint64_t seq = 0;
  PublishOutbox(c, bus, seq);
  ASSERT_TRUE(bus.Flush(std::chrono::seconds(60)));
  auto counts = store.GetCounts({}).value();
  EXPECT_EQ(counts.nodes_by_label["Thread"], 200u);
  EXPECT_EQ(counts.relationships_by_type["HAS_THREAD"], 200u);
  EXPECT_EQ(counts.relationships_by_type["HAS_PROJECT"], 1u);
  // Group commit: far fewer store writes than events.
  EXPECT_LT(store.writes.load(), 203 * 2);
  auto dl = c.Exec("SELECT count(*) FROM dead_letters").value();
  EXPECT_EQ(dl[0].Get<int64_t>(0).value(), 0);
  auto st = c.Exec("SELECT count(*) FROM sync_state WHERE status = 'synced'").value();
  EXPECT_EQ(st[0].Get<int64_t>(0).value(), 203);
}

TEST(GraphConsumer, PermanentFailureLandsInDeadLettersAndReplaysAfterTheFix) {
  TestDatabase db;
  auto c = db.Admin();
  pg::PoolOptions po;
  po.conninfo = db.AdminUrl();
  pg::Pool pool(po);
  FlakyStore store(0);
  GraphProjector projector(store, &pool);
  bus::InProcessBus bus;
  GraphConsumerOptions o;
  o.max_attempts = 3;
  o.retry_backoff = std::chrono::milliseconds(5);
  o.max_backoff = std::chrono::milliseconds(10);
  auto consumer = GraphConsumer::Start(bus, projector, o);
  ASSERT_TRUE(consumer.has_value());

  Uuid tenant, project;
  MakeProjectTree(c, 3, tenant, project);
  store.poison_id = project.ToString();
  uint64_t seq = 0;
  PublishOutbox(c, bus, seq);
  // A malformed event too.
  ASSERT_TRUE(bus.Publish(++seq, {{"outbox.event.threads", "k", "{not json", {}}}, [](const bus::BatchAck&) {}));
  ASSERT_TRUE(bus.Flush(std::chrono::seconds(60)));

  // The project, its three threads (their HAS_THREAD has no endpoint) and
  // the malformed event.
  auto dl = c.Exec("SELECT aggregate_type, count(*), min(attempts) FROM dead_letters GROUP BY 1 ORDER BY 1").value();
  ASSERT_EQ(dl.rows(), 3);
  EXPECT_EQ(dl[0].Get<std::string>(0).value(), "outbox.event.threads");  // the malformed one
  EXPECT_EQ(dl[1].Get<std::string>(0).value(), "projects");
  EXPECT_EQ(dl[1].Get<int32_t>(2).value(), 3);
  EXPECT_EQ(dl[2].Get<std::string>(0).value(), "threads");
  EXPECT_EQ(dl[2].Get<int64_t>(1).value(), 3);
  auto st = c.Exec("SELECT status FROM sync_state WHERE aggregate_id = $1", {project.ToString()}).value();
  EXPECT_EQ(st[0].Get<std::string>(0).value(), "failed");
  EXPECT_FALSE(store.GetNode(project.ToString(), {}).value().has_value());

  // The fix, then the replay. A letter older than the tombstone horizon is
  // not replayed from its payload (decision 1500): a delete that followed it
  // may be forgotten by now. Its threads then wait for their endpoint.
  store.poison_id.clear();
  ASSERT_TRUE(
      c.Exec("UPDATE dead_letters SET created_at = now() - interval '2 days' WHERE aggregate_type = 'projects'"));
  EXPECT_EQ(projector.ReplayDeadLetters(1000, std::chrono::hours(24)).value(), 0u);
  EXPECT_FALSE(store.GetNode(project.ToString(), {}).value().has_value());
  EXPECT_EQ(projector.ReplayDeadLetters().value(), 4u);
  EXPECT_TRUE(store.GetNode(project.ToString(), {}).value().has_value());
  EXPECT_EQ(store.GetCounts({}).value().relationships_by_type["HAS_THREAD"], 3u);
  st = c.Exec("SELECT status FROM sync_state WHERE aggregate_id = $1", {project.ToString()}).value();
  EXPECT_EQ(st[0].Get<std::string>(0).value(), "synced");
  auto left = c.Exec("SELECT count(*) FROM dead_letters WHERE replayed_at IS NULL").value();
  EXPECT_EQ(left[0].Get<int64_t>(0).value(), 1);  // the malformed one stays
}

// A payload that is not even UTF-8 cannot be projected either: it is kept in
// the dead letters like any malformed one, and the handler does not throw
// (which would end the process on the bus thread).
TEST(GraphConsumer, NonUtf8PayloadIsDeadLetteredNotThrown) {
  TestDatabase db;
  auto c = db.Admin();
  pg::PoolOptions po;
  po.conninfo = db.AdminUrl();
  pg::Pool pool(po);
  FlakyStore store(0);
  GraphProjector projector(store, &pool);
  bus::InProcessBus bus;
  auto consumer = GraphConsumer::Start(bus, projector, {});
  ASSERT_TRUE(consumer.has_value());
  uint64_t seq = 0;
  ASSERT_TRUE(
      bus.Publish(++seq, {{"outbox.event.threads", "k", "\xff\xfe{not json \xc3", {}}}, [](const bus::BatchAck&) {}));
  ASSERT_TRUE(bus.Flush(std::chrono::seconds(60)));
  auto dl = c.Exec("SELECT aggregate_type, aggregate_id FROM dead_letters").value();
  ASSERT_EQ(dl.rows(), 1);
  EXPECT_EQ(dl[0].Get<std::string>(0).value(), "outbox.event.threads");
  EXPECT_EQ(dl[0].Get<std::string>(1).value(), "k");

  // The consumer goes on with the next events.
  Uuid tenant, project;
  MakeProjectTree(c, 1, tenant, project);
  PublishOutbox(c, bus, seq);
  ASSERT_TRUE(bus.Flush(std::chrono::seconds(60)));
  EXPECT_TRUE(store.GetNode(project.ToString(), {}).value().has_value());
}

// Regression (heavy ingestion left chunks in "retrying" and one in the dead
// letters): a chunk handled before its content item must wait for it without
// using up attempts. With max_attempts 1, any attempt spent would dead-letter.
TEST(GraphConsumer, RelationshipWaitsForItsEndpointWithoutSpendingAttempts) {
  TestDatabase db;
  auto c = db.Admin();
  pg::PoolOptions po;
  po.conninfo = db.AdminUrl();
  pg::Pool pool(po);
  auto store = graph::EmbeddedGraphStore::InMemory();
  GraphProjector projector(*store, &pool);
  HandDrivenBus bus;
  GraphConsumerOptions o;
  o.max_attempts = 1;
  o.endpoint_wait = std::chrono::minutes(5);
  auto consumer = GraphConsumer::Start(bus, projector, o);
  ASSERT_TRUE(consumer.has_value());

  Uuid tenant, project;
  MakeProjectTree(c, 0, tenant, project);
  Uuid item = Uuid::NewV4(), chunk = Uuid::NewV4();
  ASSERT_TRUE(
      c.Exec("INSERT INTO content_items (id, tenant_id, project_id, title, content_type) "
             "VALUES ($1, $2, $3, 'Doc', 'text/plain')",
             {item, tenant, project}));
  ASSERT_TRUE(
      c.Exec("INSERT INTO content_chunks (id, tenant_id, content_item_id, chunk_index, content, content_hash) "
             "VALUES ($1, $2, $3, 0, 'text', 'h')",
             {chunk, tenant, item}));
  auto program = c.Exec("SELECT program_id::text FROM projects WHERE id = $1", {project}).value();
  for (const auto& id : {tenant.ToString(), std::string(program[0].Text(0)), project.ToString()}) {
    EXPECT_EQ(bus.Deliver(c, id).get().outcome, bus::HandlerResult::Outcome::kOk);
  }

  // The chunk first: its node goes in, HAS_CHUNK waits (parked, sync_state pending).
  auto chunk_done = bus.Deliver(c, chunk.ToString());
  ASSERT_TRUE(WaitFor([&] { return (*consumer)->stats().parked == 1; }));
  EXPECT_EQ(chunk_done.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  EXPECT_TRUE(store->GetNode(chunk.ToString()).value().has_value());
  auto st = c.Exec("SELECT status, attempts FROM sync_state WHERE aggregate_id = $1", {chunk.ToString()}).value();
  ASSERT_EQ(st.rows(), 1);
  EXPECT_EQ(st[0].Get<std::string>(0).value(), "pending");
  EXPECT_EQ(st[0].Get<int32_t>(1).value(), 0);

  // Then the content item: both complete, nothing is dead-lettered.
  EXPECT_EQ(bus.Deliver(c, item.ToString()).get().outcome, bus::HandlerResult::Outcome::kOk);
  EXPECT_EQ(chunk_done.get().outcome, bus::HandlerResult::Outcome::kOk);
  EXPECT_EQ(store->GetCounts({}).value().relationships_by_type["HAS_CHUNK"], 1u);
  st = c.Exec("SELECT status, attempts FROM sync_state WHERE aggregate_id = $1", {chunk.ToString()}).value();
  EXPECT_EQ(st[0].Get<std::string>(0).value(), "synced");
  EXPECT_EQ(st[0].Get<int32_t>(1).value(), 0);
  EXPECT_EQ(c.Exec("SELECT count(*) FROM dead_letters").value()[0].Get<int64_t>(0).value(), 0);
  EXPECT_EQ((*consumer)->stats().released, 0u);
}

// A parked delivery that never sees its endpoint goes back to the ordinary
// retry path after endpoint_wait; one whose endpoint was deleted is done.
TEST(GraphConsumer, WaitingEndsAfterTheLimitAndADeletedEndpointEndsIt) {
  TestDatabase db;
  auto c = db.Admin();
  pg::PoolOptions po;
  po.conninfo = db.AdminUrl();
  pg::Pool pool(po);
  auto store = graph::EmbeddedGraphStore::InMemory();
  GraphProjector projector(*store, &pool);
  HandDrivenBus bus;
  GraphConsumerOptions o;
  o.max_attempts = 3;
  o.endpoint_wait = std::chrono::milliseconds(100);
  auto consumer = GraphConsumer::Start(bus, projector, o);
  ASSERT_TRUE(consumer.has_value());

  Uuid tenant, project;
  MakeProjectTree(c, 1, tenant, project);
  auto thread = c.Exec("SELECT id::text FROM threads WHERE project_id = $1", {project}).value();
  std::string thread_id(thread[0].Text(0));
  // The thread's project never arrives: after the wait, an ordinary retry.
  auto r = bus.Deliver(c, thread_id).get();
  EXPECT_EQ(r.outcome, bus::HandlerResult::Outcome::kRetryLater);
  EXPECT_EQ((*consumer)->stats().parked, 1u);
  EXPECT_EQ((*consumer)->stats().released, 1u);
  // A later attempt is not parked: it retries at once (the bus backs off).
  EXPECT_EQ(bus.Deliver(c, thread_id, 2).get().outcome, bus::HandlerResult::Outcome::kRetryLater);
  EXPECT_EQ((*consumer)->stats().parked, 1u);

  // A chunk whose content item was created and deleted before the chunk's
  // event is handled: its HAS_CHUNK can never exist, so it is done (synced).
  Uuid item = Uuid::NewV4(), chunk = Uuid::NewV4();
  ASSERT_TRUE(
      c.Exec("INSERT INTO content_items (id, tenant_id, project_id, title, content_type) "
             "VALUES ($1, $2, $3, 'Doc', 'text/plain')",
             {item, tenant, project}));
  ASSERT_TRUE(
      c.Exec("INSERT INTO content_chunks (id, tenant_id, content_item_id, chunk_index, content, content_hash) "
             "VALUES ($1, $2, $3, 0, 'text', 'h')",
             {chunk, tenant, item}));
  auto chunk_insert = bus.Deliver(c, chunk.ToString());  // parks: no item yet
  ASSERT_TRUE(WaitFor([&] { return (*consumer)->stats().parked == 2; }));
  ASSERT_TRUE(c.Exec("DELETE FROM content_items WHERE id = $1", {item}));  // cascades to the chunk
  // The item's delete (its insert was never handled) leaves a tombstone.
  EXPECT_EQ(bus.Deliver(c, item.ToString()).get().outcome, bus::HandlerResult::Outcome::kOk);
  EXPECT_EQ(chunk_insert.get().outcome, bus::HandlerResult::Outcome::kOk);
  auto st = c.Exec("SELECT status FROM sync_state WHERE aggregate_id = $1", {chunk.ToString()}).value();
  EXPECT_EQ(st[0].Get<std::string>(0).value(), "synced");
  EXPECT_EQ(bus.Deliver(c, chunk.ToString()).get().outcome, bus::HandlerResult::Outcome::kOk);  // the delete
  EXPECT_FALSE(store->GetNode(chunk.ToString()).value().has_value());
  EXPECT_EQ(c.Exec("SELECT count(*) FROM dead_letters").value()[0].Get<int64_t>(0).value(), 0);
}

// A project configuration through the bus: with many workers, chunks and
// their items arrive in any order; no chunk may be projected.
TEST(GraphConsumer, ProjectConfigurationHoldsUnderConcurrentDelivery) {
  TestDatabase db;
  auto c = db.Admin();
  pg::PoolOptions po;
  po.conninfo = db.AdminUrl();
  pg::Pool pool(po);
  auto store = graph::EmbeddedGraphStore::InMemory();
  GraphProjector projector(*store, &pool);
  bus::InProcessBus bus;
  auto consumer = GraphConsumer::Start(bus, projector, {});
  ASSERT_TRUE(consumer.has_value());
  Uuid tenant, project;
  MakeProjectTree(c, 0, tenant, project);
  ASSERT_TRUE(
      c.Exec("INSERT INTO knowledge_graph_configurations (tenant_id, project_id, configuration) "
             "VALUES ($1, $2, '{\"projection\": {\"labels\": [\"Tenant\", \"Program\", \"Project\", "
             "\"ContentItem\"]}}')",
             {tenant, project}));
  uint64_t seq = 0;
  PublishOutbox(c, bus, seq);
  for (int i = 0; i < 100; ++i) {
    Uuid item = Uuid::NewV4();
    ASSERT_TRUE(c.ExecScript("BEGIN"));
    ASSERT_TRUE(
        c.Exec("INSERT INTO content_items (id, tenant_id, project_id, title, content_type) "
               "VALUES ($1, $2, $3, 'D', 'text/plain')",
               {item, tenant, project}));
    for (int k = 0; k < 5; ++k) {
      ASSERT_TRUE(
          c.Exec("INSERT INTO content_chunks (tenant_id, content_item_id, chunk_index, content, content_hash) "
                 "VALUES ($1, $2, $3, 'x', 'h')",
                 {tenant, item, k}));
    }
    ASSERT_TRUE(c.Exec("UPDATE content_items SET title = 'E' WHERE id = $1", {item}));
    ASSERT_TRUE(c.ExecScript("COMMIT"));
    if (i % 10 == 9) PublishOutbox(c, bus, seq);
  }
  ASSERT_TRUE(bus.Flush(std::chrono::seconds(60)));
  auto counts = store->GetCounts({}).value();
  EXPECT_EQ(counts.nodes_by_label["ContentItem"], 100u);
  EXPECT_FALSE(counts.nodes_by_label.contains("ContentChunk")) << counts.nodes_by_label["ContentChunk"];
  EXPECT_EQ(VerifyGraph(BuildExpectedGraph(c).value(), *store).value().total_drift(), 0u);
}

}  // namespace
}  // namespace cnx::sync
