// cnx serve: starts (or connects to) PostgreSQL, migrates, and serves HTTP
// until SIGINT/SIGTERM, then shuts down in order: HTTP (in-flight requests
// finish), background jobs, pools, and the embedded cluster (fast stop).
#include <signal.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <thread>

#include "api/graph_routes.h"
#include "api/rest.h"
#include "api/server.h"
#include "base/log.h"
#include "base/metrics.h"
#include "cli/demo.h"
#include "cli/settings.h"
#include "collab/annotations.h"
#include "collab/routes.h"
#include "collab/views.h"
#include "context/chat_client.h"
#include "context/routes.h"
#include "domain/maintenance.h"
#include "domain/store.h"
#include "embed/lexical_embedder.h"
#include "embed/vector_service.h"
#include "graph/neo4j_graph_store.h"
#include "pg/pool.h"
#include "schema/migrations.h"
#include "search/hybrid_searcher.h"
#include "search/routes.h"
#include "sync/pipeline.h"

namespace cnx::cli {
namespace {

// Runs `job` every `interval` on its own thread until Stop().
class Periodic {
 public:
  Periodic(std::chrono::milliseconds interval, std::function<void()> job)
      : thread_([this, interval, job = std::move(job)] {
          std::unique_lock lock(mu_);
          while (!cv_.wait_for(lock, interval, [this] { return stop_; })) {
            lock.unlock();
            job();
            lock.lock();
          }
        }) {}
  ~Periodic() { Stop(); }
  void Stop() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

void RegisterPoolMetrics(MetricsRegistry& m, const std::string& name, pg::Pool& pool) {
  auto g = [&](const char* what, std::function<double(const pg::PoolStats&)> f) {
    m.AddGaugeCallback("cnx_pg_pool_" + name + "_" + what, std::string("PostgreSQL pool ") + name + ": " + what,
                       [&pool, f] { return f(pool.Stats()); });
  };
  g("connections", [](const pg::PoolStats& s) { return static_cast<double>(s.size); });
  g("idle", [](const pg::PoolStats& s) { return static_cast<double>(s.idle); });
  g("in_use", [](const pg::PoolStats& s) { return static_cast<double>(s.in_use); });
  g("acquire_waits_total", [](const pg::PoolStats& s) { return static_cast<double>(s.waits); });
  g("acquire_timeouts_total", [](const pg::PoolStats& s) { return static_cast<double>(s.timeouts); });
}

Result<sync::PipelineOptions> PipelineOptionsFrom(const Config& config, const std::string& admin_url) {
  sync::PipelineOptions o;
  o.replication_conninfo = admin_url;
  o.graph_dir = std::filesystem::path(config.GetString("data_dir", "cnx-data")) / "graph";
  o.kafka_brokers = config.GetString("kafka.brokers", "");
  o.graph_workers = static_cast<int>(CNX_TRY(config.GetInt("graph.workers", 64)));
  // Graph tombstones expire after this (decision 1500): 0 never, else at least an hour.
  auto horizon = CNX_TRY(config.GetDuration("graph.tombstone_horizon", std::chrono::hours(24)));
  if (horizon.count() != 0 && horizon < std::chrono::hours(1)) {
    return Err(Module::kCli, ErrorCode::kInvalidArgument,
               "graph.tombstone_horizon must be 0 (never purge) or at least 1h (docs/decisions/1500-*.md)");
  }
  o.tombstone_horizon = std::chrono::duration_cast<std::chrono::seconds>(horizon);
  o.tombstone_purge_interval = CNX_TRY(config.GetDuration("graph.tombstone_purge_interval", std::chrono::minutes(1)));
  if (o.tombstone_purge_interval.count() <= 0) {
    return Err(Module::kCli, ErrorCode::kInvalidArgument, "graph.tombstone_purge_interval must be positive");
  }
  if (auto url = config.Find("neo4j.url"); url && !url->empty()) {
    auto b = CNX_TRY(graph::ParseBoltUrl(*url));
    b.user = config.GetString("neo4j.user", "neo4j");
    b.password = config.GetString("neo4j.password", "");
    b.database = config.GetString("neo4j.database", "neo4j");
    o.neo4j = b;
  }
  return o;
}

int Serve(const FlagSet& flags) {
  // Signals are taken by sigwait() below; block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto config = flags.Resolve();
  if (!config) return Fail(config.error());
  api::ServerConfig http;
  http.listen = config->GetString("listen", "127.0.0.1:8080");
  auto pool_size = config->GetInt("pg.pool_size", 16);
  auto statement_cache = config->GetInt("pg.statement_cache", 256);
  auto refresh = config->GetDuration("views.refresh_interval", std::chrono::minutes(1));
  auto threads = config->GetInt("http.threads", 2);
  if (!pool_size) return Fail(pool_size.error());
  if (!statement_cache) return Fail(statement_cache.error());
  if (*statement_cache < 0)
    return Fail(Error(Module::kCli, ErrorCode::kInvalidArgument, "pg.statement_cache must be >= 0"));
  if (!refresh) return Fail(refresh.error());
  if (!threads) return Fail(threads.error());
  http.io_threads = static_cast<int>(*threads);
  http.blocking_threads = static_cast<int>(*pool_size);

  auto db = OpenDatabase(*config);
  if (!db) return Fail(db.error());
  if (db->cluster) {
    spdlog::info("PostgreSQL {} on 127.0.0.1:{} (cluster {})", db->cluster->adopted() ? "adopted" : "started",
                 db->cluster->info().port, db->cluster->info().cluster_dir.string());
  }
  {
    auto conn = pg::Connection::Open(db->admin_url);
    if (!conn) return Fail(conn.error());
    auto report = schema::Migrate(*conn);
    if (!report) return Fail(report.error());
    spdlog::info("schema at version {} ({} migration(s) applied now)", report->current_version, report->applied.size());
  }

  // The application pool acts as cnx_app: row-level security applies to it.
  pg::PoolOptions app_opts;
  app_opts.conninfo = db->admin_url;
  app_opts.max_size = static_cast<size_t>(*pool_size);
  app_opts.connect.on_connect = {"SET ROLE cnx_app", "SET TimeZone = 'UTC'"};
  app_opts.connect.statement_cache_size = static_cast<size_t>(*statement_cache);
  pg::Pool app_pool(app_opts);
  // The system pool runs tenant-independent work (migrations check, views, workers).
  pg::PoolOptions sys_opts;
  sys_opts.conninfo = db->admin_url;
  sys_opts.max_size = 4;
  sys_opts.connect.statement_cache_size = static_cast<size_t>(*statement_cache);
  pg::Pool sys_pool(sys_opts);

  MetricsRegistry metrics;
  RegisterPoolMetrics(metrics, "app", app_pool);
  RegisterPoolMetrics(metrics, "system", sys_pool);

  const int latest = schema::CompiledMigrations().back().version;
  auto readiness = [&]() -> Status {
    auto c = sys_pool.Acquire();
    if (!c) return std::unexpected(c.error().WithContext("database"));
    auto r = (*c)->Exec("SELECT coalesce(max(version), 0) FROM schema_migrations");
    if (!r) return std::unexpected(r.error().WithContext("database"));
    int v = (*r)[0].Get<int32_t>(0).value_or(0);
    if (v < latest) {
      return Err(Module::kSchema, ErrorCode::kFailedPrecondition,
                 "schema at version " + std::to_string(v) + ", expected " + std::to_string(latest));
    }
    return Ok();
  };

  Periodic views(*refresh, [&] {
    auto c = sys_pool.Acquire();
    auto st = c ? schema::RefreshViews(**c) : Status(std::unexpected(c.error()));
    if (!st) spdlog::warn("refreshing materialised views: {}", st.error().ToString());
  });

  auto demo_on = config->GetBool("demo.enabled", false);
  if (!demo_on) return Fail(demo_on.error());

  // Expired idempotency records, locks, sessions, silent viewers and sync
  // states of deleted aggregates (docs/operations.md#housekeeping).
  auto purge_interval = config->GetDuration("maintenance.purge_interval", std::chrono::minutes(10));
  if (!purge_interval) return Fail(purge_interval.error());
  Periodic purge(*purge_interval, [&] {
    auto c = sys_pool.Acquire();
    auto n = c ? domain::PurgeExpired(**c, {}) : Result<domain::PurgeCounts>(std::unexpected(c.error()));
    if (!n) {
      spdlog::warn("purging expired rows: {}", n.error().ToString());
    } else if (n->idempotency_keys + n->locks + n->sessions + n->viewers + n->sync_tombstones > 0) {
      spdlog::info(
          "purged {} idempotency records, {} locks, {} sessions, {} silent viewers, {} sync states of deleted "
          "aggregates",
          n->idempotency_keys, n->locks, n->sessions, n->viewers, n->sync_tombstones);
    }
  });

  // The /v1 REST API (docs/api.md).
  domain::StoreOptions store_opts;
  auto opslimit = config->GetInt("auth.pwhash_opslimit", 2);
  auto memlimit = config->GetInt("auth.pwhash_memlimit_kib", 64 * 1024);
  auto session_ttl = config->GetDuration("auth.session_ttl", std::chrono::hours(24 * 30));
  auto credential_cache = config->GetDuration("auth.credential_cache", std::chrono::seconds(60));
  auto rate = config->GetInt("http.rate_limit_per_second", 100);
  auto burst = config->GetInt("http.rate_limit_burst", 200);
  auto io_db = config->GetInt("http.io_thread_db_connections", 2);
  for (const auto* r : {&opslimit, &memlimit, &rate, &burst, &io_db}) {
    if (!*r) return Fail(r->error());
  }
  if (!session_ttl) return Fail(session_ttl.error());
  if (!credential_cache) return Fail(credential_cache.error());
  store_opts.pwhash_opslimit = static_cast<unsigned long long>(std::max<int64_t>(1, *opslimit));
  store_opts.pwhash_memlimit = static_cast<size_t>(std::max<int64_t>(8, *memlimit)) * 1024;
  store_opts.session_ttl = std::chrono::duration_cast<std::chrono::seconds>(*session_ttl);
  auto embed_dimension = config->GetInt("embed.dimension", 384);
  if (!embed_dimension) return Fail(embed_dimension.error());
  auto embedder = embed::LexicalHashEmbedder::Create({.dimension = static_cast<size_t>(*embed_dimension)});
  if (!embedder) return Fail(embedder.error());
  // ingest-status counts the vectors of the model the index serves.
  store_opts.embedding_model = std::string((*embedder)->model_name());
  store_opts.embedding_model_version = std::string((*embedder)->model_version());
  domain::Store store(app_pool, store_opts);
  api::RestConfig rest;
  rest.rate_per_second = static_cast<double>(*rate);
  rest.rate_burst = static_cast<double>(*burst);
  rest.io_thread_connections = static_cast<size_t>(std::clamp<int64_t>(*io_db, 0, 64));

  // Change capture: outbox -> relay -> bus -> graph projection.
  auto pipeline_opts = PipelineOptionsFrom(*config, db->admin_url);
  if (!pipeline_opts) return Fail(pipeline_opts.error());
  auto pipeline = sync::Pipeline::Start(std::move(*pipeline_opts), sys_pool, metrics);
  if (!pipeline) return Fail(pipeline.error());

  // Vector index: <data-dir>/vector, fed by the embedding worker, deletes via the bus.
  auto vector_interval = config->GetDuration("vector.checkpoint_interval", std::chrono::minutes(1));
  if (!vector_interval) return Fail(vector_interval.error());
  embed::VectorServiceOptions vector_opts;
  vector_opts.dir = std::filesystem::path(config->GetString("data_dir", "cnx-data")) / "vector";
  vector_opts.checkpoint_interval = std::chrono::duration_cast<std::chrono::milliseconds>(*vector_interval);
  auto ef_construction = config->GetInt("vector.ef_construction", 200);
  auto exact_threshold = config->GetInt("vector.exact_threshold", 4096);
  if (!ef_construction) return Fail(ef_construction.error());
  if (!exact_threshold) return Fail(exact_threshold.error());
  vector_opts.hnsw.ef_construction = static_cast<size_t>(std::clamp<int64_t>(*ef_construction, 8, 4096));
  vector_opts.hnsw.exact_threshold = static_cast<size_t>(std::max<int64_t>(*exact_threshold, 0));
  auto storage = vector::ParseStorage(config->GetString("vector.storage", "bfloat16"));
  if (!storage) return Fail(storage.error());
  vector_opts.hnsw.storage = *storage;
  auto worker_threads = config->GetInt("embed.worker_threads", 2);
  auto worker_batch = config->GetInt("embed.batch_size", 128);
  if (!worker_threads) return Fail(worker_threads.error());
  if (!worker_batch) return Fail(worker_batch.error());
  vector_opts.worker.threads = static_cast<size_t>(std::clamp<int64_t>(*worker_threads, 1, 16));
  vector_opts.worker.batch_size = static_cast<size_t>(std::clamp<int64_t>(*worker_batch, 1, 4096));
  auto fill_wait = config->GetDuration("embed.fill_wait", std::chrono::milliseconds(50));
  if (!fill_wait) return Fail(fill_wait.error());
  vector_opts.worker.fill_wait =
      std::clamp<std::chrono::milliseconds>(std::chrono::duration_cast<std::chrono::milliseconds>(*fill_wait),
                                            std::chrono::milliseconds(0), std::chrono::milliseconds(10'000));
  // A checkpoint of another lexical dimension keeps serving while every chunk
  // is re-embedded (docs/retrieval.md, "Model change").
  vector_opts.previous_embedder = [](const std::string& tag) -> Result<std::unique_ptr<embed::Embedder>> {
    constexpr std::string_view kLexical = "lexical-hash-v1/1-d";
    size_t dimension = 0;
    if (tag.starts_with(kLexical)) dimension = std::strtoul(tag.c_str() + kLexical.size(), nullptr, 10);
    if (dimension == 0) return Err(Module::kCli, ErrorCode::kNotFound, "no embedder configured for " + tag);
    auto e = CNX_TRY(embed::LexicalHashEmbedder::Create({.dimension = dimension}));
    return std::unique_ptr<embed::Embedder>(std::move(e));
  };
  auto vectors = embed::VectorService::Start(vector_opts, sys_pool, **embedder, &(*pipeline)->bus());
  if (!vectors) return Fail(vectors.error());

  api::Router router;
  // One authentication and rate-limit gate for every route group, so the
  // limit is per credential across the API.
  api::Gate gate(store, {rest.rate_per_second, rest.rate_burst,
                         std::chrono::duration_cast<std::chrono::seconds>(*credential_cache)});
  auto context_defaults = context::RouteDefaultsFromConfig(*config);
  if (!context_defaults) return Fail(context_defaults.error());
  // /v1/openapi.json describes every route group.
  std::vector<api::OperationDoc> more_docs = api::GraphOperationDocs();
  for (auto docs : {search::SearchOperationDocs(), context::ContextOperationDocs(*context_defaults),
                    collab::ViewOperationDocs(), collab::CollabOperationDocs()}) {
    more_docs.insert(more_docs.end(), docs.begin(), docs.end());
  }
  if (auto st = api::RegisterRestRoutes(router, {store, rest, &gate, std::move(more_docs)}); !st) {
    return Fail(st.error());
  }
  // Real-time collaboration (docs/collab.md).
  collab::HubOptions hub_opts;
  auto snap_ops = config->GetInt("collab.snapshot_every_ops", 1000);
  auto snap_interval = config->GetDuration("collab.snapshot_interval", std::chrono::seconds(30));
  auto idle = config->GetDuration("collab.idle_eviction", std::chrono::seconds(60));
  if (!snap_ops) return Fail(snap_ops.error());
  if (!snap_interval) return Fail(snap_interval.error());
  if (!idle) return Fail(idle.error());
  hub_opts.snapshot_every_ops = static_cast<size_t>(std::max<int64_t>(1, *snap_ops));
  hub_opts.snapshot_interval = std::chrono::duration_cast<std::chrono::milliseconds>(*snap_interval);
  hub_opts.idle_eviction = std::chrono::duration_cast<std::chrono::milliseconds>(*idle);
  hub_opts.text_root = config->GetString("collab.text_root", "content");
  auto hold_pending = config->GetInt("collab.broadcast_hold_pending", 8);
  auto max_hold = config->GetDuration("collab.broadcast_max_hold", std::chrono::milliseconds(3));
  if (!hold_pending) return Fail(hold_pending.error());
  if (!max_hold) return Fail(max_hold.error());
  hub_opts.broadcast_hold_pending = static_cast<size_t>(std::max<int64_t>(1, *hold_pending));
  hub_opts.broadcast_max_hold = std::chrono::duration_cast<std::chrono::microseconds>(*max_hold);
  auto drain_wait = config->GetDuration("collab.drain_wait", std::chrono::seconds(10));
  if (!drain_wait) return Fail(drain_wait.error());
  hub_opts.drain_wait = std::chrono::duration_cast<std::chrono::milliseconds>(*drain_wait);
  collab::Hub* anchor_hub = nullptr;  // set once the hub exists: annotations follow materialised text
  hub_opts.materialize = [&store, &app_pool, &anchor_hub, root = hub_opts.text_root](
                             const Uuid& tenant, const Uuid& user, const Uuid& doc,
                             const std::string& text) -> Result<bool> {
    auto wrote = store.WriteContentText(tenant, user, doc, text);
    if (!wrote) return Err(Module::kCollab, wrote.error().code, wrote.error().detail);
    if (anchor_hub != nullptr) {
      if (auto n = collab::ReanchorAnnotations(app_pool, *anchor_hub, tenant, doc, root); !n) {
        spdlog::warn("collab: re-anchoring annotations of {} failed: {}", doc.ToString(), n.error().ToString());
      }
    }
    return *wrote;
  };
  auto hub = std::make_unique<collab::Hub>(app_pool, hub_opts);
  store.SetLiveContent(hub.get());  // REST body writes of live documents merge (docs/collab.md)
  anchor_hub = hub.get();
  if (auto st = collab::RegisterCollabRoutes(router, {*hub, store, {}, &gate}); !st) return Fail(st.error());
  if (auto st = collab::RegisterAnnotationRoutes(router, {*hub, store, app_pool, hub_opts.text_root}); !st) {
    return Fail(st.error());
  }
  collab::ViewTrackerOptions view_opts;
  auto view_interval = config->GetDuration("collab.view_update_interval", std::chrono::milliseconds(1000));
  if (!view_interval) return Fail(view_interval.error());
  view_opts.min_interval = std::chrono::duration_cast<std::chrono::milliseconds>(*view_interval);
  auto view_tracker = std::make_unique<collab::ViewTracker>(app_pool, view_opts);
  if (auto st = collab::RegisterViewRoutes(router, {*view_tracker, store, &gate}); !st) return Fail(st.error());
  if (auto st = api::RegisterGraphRoutes(router, {.store = store, .graph = (*pipeline)->graph(), .gate = &gate}); !st)
    return Fail(st.error());
  // Hybrid search over the vector index and PostgreSQL full text (docs/search.md).
  search::HybridSearcher searcher(app_pool, (*vectors)->index(), (*vectors)->query_embedder());
  if (auto st = search::RegisterSearchRoutes(router, {store, searcher, &gate}); !st) return Fail(st.error());
  // Context assembly and the LLM gateway (docs/context.md).
  auto assembler_opts = context::AssemblerOptionsFromConfig(*config);
  if (!assembler_opts) return Fail(assembler_opts.error());
  auto chat_config = context::ChatConfigFromConfig(*config, [](const char* name) { return std::getenv(name); });
  if (!chat_config) return Fail(chat_config.error());
  std::unique_ptr<context::ChatClient> chat;
  if (*chat_config) {
    chat = std::make_unique<context::ChatClient>(**chat_config);
    spdlog::info("llm: chat completions at {} (model {})", chat->Endpoint(), chat->config().model);
  } else {
    spdlog::info("llm: no provider configured (llm.base_url); /completions answers 503");
  }
  context::Assembler assembler(app_pool, searcher, std::move(*assembler_opts));
  if (auto st = context::RegisterContextRoutes(router, {store, assembler, chat.get(), *context_defaults, &gate}); !st) {
    return Fail(st.error());
  }
  api::Server server(http, std::move(router), metrics, readiness);
  auto endpoint = server.Start();
  if (!endpoint) return Fail(endpoint.error());
  std::string where = endpoint->address().to_string() + ":" + std::to_string(endpoint->port());
  spdlog::info("cnx serving on http://{} (data dir {})", where, config->GetString("data_dir", "cnx-data"));
  std::printf("ContextNexus is up: http://%s  (try: curl http://%s/readyz)\n", where.c_str(), where.c_str());
  std::fflush(stdout);
  if (*demo_on) {
    auto demo = SetUpDemo(store, config->GetString("data_dir", "cnx-data"), config->GetString("demo.docs_root", "."));
    if (!demo) {
      spdlog::error("demo: {} (the server runs on without it)", demo.error().ToString());
    } else {
      std::printf("%s\n", DemoBanner(*demo, "http://" + where).c_str());
      std::fflush(stdout);
    }
  }

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("received {}, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
  server.Shutdown();
  store.SetLiveContent(nullptr);
  hub.reset();  // the last group commit and snapshots, before the database stops
  views.Stop();
  purge.Stop();
  (*vectors)->Stop();
  (*pipeline)->Stop();
  if (db->cluster) {
    auto st = db->cluster->Stop();
    if (!st) return Fail(st.error());
    spdlog::info("PostgreSQL stopped");
  }
  return 0;
}

void AddServe(CLI::App& app) {
  static FlagSet flags;
  auto* cmd = app.add_subcommand("serve", "Run the server (embedded PostgreSQL unless --pg-url is given)");
  AddDatabaseFlags(cmd, flags);
  flags.Add(cmd, "listen", "listen", "HTTP listen address host:port (default 127.0.0.1:8080)");
  flags.Add(cmd, "pg-pool-size", "pg.pool_size", "Application connection pool size (default 16)");
  flags.Add(cmd, "views-refresh-interval", "views.refresh_interval",
            "How often materialised views are refreshed, e.g. 30s, 5m (default 1m)");
  flags.AddSwitch(cmd, "demo", "demo.enabled",
                  "On first start create a demo tenant with the documentation under --demo-docs ingested; print "
                  "its credentials and example calls on every start");
  flags.Add(cmd, "demo-docs", "demo.docs_root", "Where the demo's README.md and docs/ are (default .)");
  flags.Add(cmd, "purge-interval", "maintenance.purge_interval",
            "How often expired idempotency records, locks and sessions are deleted (default 10m)");
  flags.Add(cmd, "kafka-brokers", "kafka.brokers", "Kafka bootstrap servers; empty: the in-process bus");
  flags.Add(cmd, "vector-checkpoint-interval", "vector.checkpoint_interval",
            "How often the vector index is checkpointed to <data-dir>/vector (default 1m)");
  flags.Add(cmd, "neo4j-url", "neo4j.url", "Neo4j Bolt URL (bolt://host:7687); empty: the embedded graph store");
  flags.Add(cmd, "neo4j-user", "neo4j.user", "Neo4j user (default neo4j)");
  flags.Add(cmd, "neo4j-password", "neo4j.password", "Neo4j password");
  flags.Add(cmd, "neo4j-database", "neo4j.database", "Neo4j database (default neo4j)");
  flags.Add(cmd, "rate-limit", "http.rate_limit_per_second",
            "Requests per second per token (or client IP before login); 0 disables (default 100)");
  flags.Add(cmd, "rate-burst", "http.rate_limit_burst", "Token bucket size (default 200)");
  flags.Add(cmd, "collab-text-root", "collab.text_root",
            "Name of the Y.Text root that holds a collaborative document's text (default content)");
  flags.Add(cmd, "collab-snapshot-every", "collab.snapshot_every_ops",
            "Snapshot a collaborative document every N operations (default 1000)");
  flags.Add(cmd, "llm-base-url", "llm.base_url",
            "OpenAI-compatible chat completions server (http://host:port[/v1]); empty: no LLM provider");
  flags.Add(cmd, "llm-model", "llm.model", "Default model of the context and completions routes (default gpt-4o)");
  flags.Add(cmd, "llm-api-key-env", "llm.api_key_env",
            "Environment variable holding the provider's API key (default OPENAI_API_KEY)");
  flags.Add(cmd, "pwhash-opslimit", "auth.pwhash_opslimit", "argon2id passes (default 2, libsodium interactive)");
  flags.Add(cmd, "pwhash-memlimit-kib", "auth.pwhash_memlimit_kib", "argon2id memory in KiB (default 65536)");
  OnRun(cmd, [] { return Serve(flags); });
}

}  // namespace
CNX_REGISTER_COMMANDS(serve, AddServe);
}  // namespace cnx::cli
