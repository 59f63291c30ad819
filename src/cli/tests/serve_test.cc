// `cnx serve` as a user runs it: a real process with its embedded PostgreSQL.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "base/clock.h"
#include "base/subprocess.h"
#include "graph/embedded_graph_store.h"

namespace cnx {
namespace {

namespace fs = std::filesystem;
const std::string kCnx = std::string(CNX_BINARY_DIR) + "/src/cli/cnx";

struct Served {
  pid_t pid = 0;
  int port = 0;
  fs::path log;
};

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Starts `cnx serve` on a free port; waits for its "is up" line.
Served Start(const fs::path& data_dir, const std::string& tag, const std::string& extra_args = "") {
  Served s;
  s.log = data_dir.parent_path() / (tag + ".log");
  std::string cmd = "exec " + kCnx + " serve --data-dir " + data_dir.string() + " --listen 127.0.0.1:0 " + extra_args +
                    " > " + s.log.string() + " 2>&1";
  auto pid = SpawnProcess({"/bin/sh", "-c", cmd});
  EXPECT_TRUE(pid.has_value());
  s.pid = *pid;
  std::regex up("is up: http://127\\.0\\.0\\.1:(\\d+)");
  for (int i = 0; i < 600; ++i) {
    std::smatch m;
    std::string out = ReadAll(s.log);
    if (std::regex_search(out, m, up)) {
      s.port = std::stoi(m[1]);
      return s;
    }
    int status;
    if (waitpid(s.pid, &status, WNOHANG) == s.pid) {
      s.pid = 0;
      return s;  // exited: the caller inspects the log
    }
    usleep(100'000);
  }
  ADD_FAILURE() << "cnx serve did not come up:\n" << ReadAll(s.log);
  return s;
}

int Wait(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string Get(int port, const std::string& path) {
  auto r =
      RunProcess({"curl", "-s", "-m", "10", "-w", " %{http_code}", "http://127.0.0.1:" + std::to_string(port) + path});
  return r ? r->output : "";
}

pid_t Postmaster(const fs::path& data_dir) {
  std::ifstream in(data_dir / "pg" / "postmaster.pid");
  pid_t pid = 0;
  in >> pid;
  return pid;
}

TEST(Serve, StartsMigratesServesStopsAndSurvivesKillNine) {
  fs::path root = fs::temp_directory_path() / ("cnx-serve-" + std::to_string(getpid()));
  fs::remove_all(root);
  fs::create_directories(root);
  fs::path data = root / "data";

  // First start: initdb, migrate, serve.
  Served a = Start(data, "a");
  ASSERT_GT(a.port, 0) << ReadAll(a.log);
  EXPECT_EQ(Get(a.port, "/healthz"), "{\"status\":\"ok\"} 200");
  EXPECT_EQ(Get(a.port, "/readyz"), "{\"status\":\"ok\"} 200");
  EXPECT_NE(Get(a.port, "/metrics").find("cnx_pg_pool_app_connections"), std::string::npos);
  // The OpenAPI document lists every route group, not only the REST resources.
  std::string openapi = Get(a.port, "/v1/openapi.json");
  for (const char* path :
       {"\"/v1/projects/{id}\"", "\"/v1/search\"", "\"/v1/content/{id}/related\"", "\"/v1/threads/{id}/context\"",
        "\"/v1/threads/{id}/completions\"", "\"/v1/graph/subgraph\"", "\"/v1/views/{id}/viewers\""}) {
    EXPECT_NE(openapi.find(path), std::string::npos) << path;
  }

  // A second cnx on the same data dir is refused with a clear message.
  Served b = Start(data, "b");
  EXPECT_EQ(b.pid, 0);
  EXPECT_NE(ReadAll(b.log).find("in use by another cnx"), std::string::npos) << ReadAll(b.log);

  // SIGTERM: graceful stop, PostgreSQL stopped too.
  pid_t pm = Postmaster(data);
  ASSERT_GT(pm, 0);
  kill(a.pid, SIGTERM);
  EXPECT_EQ(Wait(a.pid), 0) << ReadAll(a.log);
  for (int i = 0; i < 100 && ProcessAlive(pm); ++i) usleep(50'000);
  EXPECT_FALSE(ProcessAlive(pm));

  // Restart, then kill -9: the postmaster outlives cnx...
  Served c = Start(data, "c");
  ASSERT_GT(c.port, 0) << ReadAll(c.log);
  pm = Postmaster(data);
  kill(c.pid, SIGKILL);
  Wait(c.pid);
  EXPECT_TRUE(ProcessAlive(pm));
  // ...and the next start adopts it.
  Served d = Start(data, "d");
  ASSERT_GT(d.port, 0) << ReadAll(d.log);
  EXPECT_NE(ReadAll(d.log).find("PostgreSQL adopted"), std::string::npos) << ReadAll(d.log);
  EXPECT_EQ(Get(d.port, "/readyz"), "{\"status\":\"ok\"} 200");
  // The URL `cnx pg url` prints reaches the database (psql uses the same).
  auto url = RunProcess({kCnx, "pg", "url", "--data-dir", data.string()});
  ASSERT_TRUE(url.has_value());
  EXPECT_EQ(url->exit_code, 0);
  std::string u = url->output.substr(0, url->output.find('\n'));
  auto psql = RunProcess({"psql", u, "-Atc", "SELECT count(*) FROM schema_migrations"});
  ASSERT_TRUE(psql.has_value());
  EXPECT_EQ(psql->exit_code, 0) << psql->output;
  auto status = RunProcess({kCnx, "migrate", "status", "--pg-url", u});
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->exit_code, 0) << status->output;
  EXPECT_NE(status->output.find("0001  foundation"), std::string::npos) << status->output;
  EXPECT_EQ(status->output.find("pending"), std::string::npos) << status->output;
  // `cnx pg stop` refuses while a cnx supervises the cluster...
  auto refused = RunProcess({kCnx, "pg", "stop", "--data-dir", data.string()});
  ASSERT_TRUE(refused.has_value());
  EXPECT_NE(refused->exit_code, 0);
  kill(d.pid, SIGKILL);
  Wait(d.pid);
  // ...and stops a cluster left behind by a killed one.
  auto stop = RunProcess({kCnx, "pg", "stop", "--data-dir", data.string()});
  ASSERT_TRUE(stop.has_value());
  EXPECT_EQ(stop->exit_code, 0) << stop->output;
  for (int i = 0; i < 100 && ProcessAlive(pm); ++i) usleep(50'000);
  EXPECT_FALSE(ProcessAlive(pm));
  fs::remove_all(root);
}

std::string WaitForLog(const fs::path& log, const std::regex& re, std::smatch& m) {
  for (int i = 0; i < 600; ++i) {
    std::string out = ReadAll(log);
    if (std::regex_search(out, m, re)) return out;
    usleep(100'000);
  }
  return ReadAll(log);
}

// `make run` runs `cnx serve --demo`: the first start creates the demo tenant
// with the documentation ingested, later starts reuse it.
TEST(Serve, DemoIsCreatedOnceAndReused) {
  fs::path root = fs::temp_directory_path() / ("cnx-demo-" + std::to_string(getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "docs" / "sub");
  std::ofstream(root / "README.md") << "# Demo\n\nWrite-ahead log archiving keeps every change.\n";
  std::ofstream(root / "docs" / "guide.md") << "# Guide\n\nTenants are isolated by row-level security.\n";
  std::ofstream(root / "docs" / "sub" / "deep.md") << "# Deep\n\nThe relay confirms an LSN after the bus.\n";
  std::ofstream(root / "docs" / "notes.txt") << "not markdown, not ingested\n";
  fs::path data = root / "data";
  const std::string args = "--demo --demo-docs " + root.string();

  auto count_content = [](int port, const std::string& token, const std::string& project) {
    auto r = RunProcess({"curl", "-s", "-m", "10", "-H", "Authorization: Bearer " + token,
                         "http://127.0.0.1:" + std::to_string(port) + "/v1/projects/" + project + "/content"});
    if (!r) return -1;
    int n = 0;
    for (size_t at = r->output.find("\"contentType\""); at != std::string::npos;
         at = r->output.find("\"contentType\"", at + 1))
      ++n;
    return n;
  };

  Served a = Start(data, "demo-a", args);
  ASSERT_GT(a.port, 0) << ReadAll(a.log);
  std::smatch m;
  std::regex created(
      "Demo tenant created \\((\\d+) documents ingested\\)[^]*CNX_TOKEN=(cnxs_[A-Za-z0-9_-]+)[^]*"
      "\"projectId\":\"([0-9a-f-]{36})\"");
  std::string out = WaitForLog(a.log, created, m);
  ASSERT_FALSE(m.empty()) << out;
  EXPECT_EQ(m[1], "3");
  const std::string project = m[3];
  EXPECT_EQ(count_content(a.port, m[2], project), 3);
  EXPECT_EQ(fs::status(data / "demo.json").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  // The banner's copy-paste commands work as printed: the export line, then
  // each curl (with its continuation line) in a shell.
  auto block = [&out](const std::string& heading) {
    size_t at = out.find(heading);
    if (at == std::string::npos) return std::string();
    at = out.find('\n', at) + 1;
    return out.substr(at, out.find("\n\n", at) - at);
  };
  const std::string exports = block("Demo tenant created");
  ASSERT_NE(exports.find("export CNX_SERVER="), std::string::npos) << out;
  auto run_banner = [&](const std::string& heading) {
    std::string cmd = block(heading);
    EXPECT_NE(cmd.find("curl -s"), std::string::npos) << out;
    auto r = RunProcess({"/bin/sh", "-c", exports + "\n" + cmd});
    return r ? r->output : std::string();
  };
  const std::string search = run_banner("Search the project's documentation:");
  EXPECT_NE(search.find("\"results\":[{"), std::string::npos) << search;
  const std::string context = run_banner("Assemble the context of an LLM call");
  EXPECT_NE(context.find("\"messages\":["), std::string::npos) << context;
  EXPECT_NE(context.find("\"totalTokens\""), std::string::npos) << context;
  kill(a.pid, SIGTERM);
  EXPECT_EQ(Wait(a.pid), 0) << ReadAll(a.log);

  Served b = Start(data, "demo-b", args);
  ASSERT_GT(b.port, 0) << ReadAll(b.log);
  std::regex reused(
      "Demo tenant: sign in as demo@example.com[^]*CNX_TOKEN=(cnxs_[A-Za-z0-9_-]+)[^]*"
      "\"projectId\":\"([0-9a-f-]{36})\"");
  out = WaitForLog(b.log, reused, m);
  ASSERT_FALSE(m.empty()) << out;
  EXPECT_EQ(m[2], project);
  EXPECT_EQ(count_content(b.port, m[1], project), 3);  // the new session works; nothing ingested twice
  kill(b.pid, SIGTERM);
  EXPECT_EQ(Wait(b.pid), 0) << ReadAll(b.log);
  fs::remove_all(root);
}

// Writes through the API reach the graph (read back through /v1/graph); a
// kill -9 in the middle of a write stream and a restart leave no drift
// between PostgreSQL and the graph (cnx verify --target graph exits 0).
TEST(Serve, GraphFollowsWritesAndHasNoDriftAfterKillNine) {
  fs::path root = fs::temp_directory_path() / ("cnx-serve-graph-" + std::to_string(getpid()));
  fs::remove_all(root);
  fs::create_directories(root);
  fs::path data = root / "data";
  Served a = Start(data, "a");
  ASSERT_GT(a.port, 0) << ReadAll(a.log);
  auto signup = [](int port, int i) {
    std::string body = "{\"tenantName\":\"T" + std::to_string(i) + "\",\"email\":\"u" + std::to_string(i) +
                       "@example.com\",\"password\":\"correct horse\",\"displayName\":\"U\"}";
    auto r = RunProcess({"curl", "-s", "-m", "20", "-X", "POST", "-H", "Content-Type: application/json", "-d", body,
                         "http://127.0.0.1:" + std::to_string(port) + "/v1/signup"});
    return r ? r->output : std::string();
  };
  // A stream of writes; kill -9 while the last ones are in flight.
  std::string first;
  for (int i = 0; i < 5; ++i) {
    std::string out = signup(a.port, i);
    if (i == 0) first = out;
  }
  std::string in_flight =
      "exec curl -s -m 20 -X POST -H 'Content-Type: application/json' -d "
      "'{\"tenantName\":\"K\",\"email\":\"k@example.com\",\"password\":\"correct horse\"}' "
      "http://127.0.0.1:" +
      std::to_string(a.port) + "/v1/signup > /dev/null 2>&1";
  auto writer = SpawnProcess({"/bin/sh", "-c", in_flight});
  kill(a.pid, SIGKILL);
  Wait(a.pid);
  if (writer) Wait(*writer);

  Served b = Start(data, "b");
  ASSERT_GT(b.port, 0) << ReadAll(b.log);
  std::smatch token, tenant;
  ASSERT_TRUE(std::regex_search(first, token, std::regex("\"token\":\"([^\"]+)\""))) << first;
  ASSERT_TRUE(std::regex_search(first, tenant, std::regex("\"tenant\":\\{[^}]*\"id\":\"([0-9a-f-]{36})\""))) << first;
  // The tenant node is in the graph (bounded wait: the pipeline catches up).
  std::string node;
  for (int i = 0; i < 100; ++i) {
    auto r = RunProcess({"curl", "-s", "-m", "10", "-w", " %{http_code}", "-H", "Authorization: Bearer " + token.str(1),
                         "http://127.0.0.1:" + std::to_string(b.port) + "/v1/graph/nodes/" + tenant.str(1)});
    node = r ? r->output : "";
    if (node.ends_with(" 200")) break;
    usleep(100'000);
  }
  EXPECT_TRUE(node.ends_with(" 200")) << node;
  EXPECT_NE(node.find("\"label\":\"Tenant\""), std::string::npos) << node;
  // Writes after the restart are projected too; then stop and verify.
  signup(b.port, 9);
  usleep(2'000'000);
  kill(b.pid, SIGTERM);
  EXPECT_EQ(Wait(b.pid), 0) << ReadAll(b.log);
  auto verify = RunProcess({kCnx, "verify", "--target", "graph", "--data-dir", data.string()});
  ASSERT_TRUE(verify.has_value());
  EXPECT_EQ(verify->exit_code, 0) << verify->output;
  EXPECT_NE(verify->output.find("\"drift\": 0"), std::string::npos) << verify->output;
  EXPECT_NE(verify->output.find("\"Tenant\""), std::string::npos) << verify->output;
  // Every tombstone purged (horizon 0), the graph still verifies clean (decision 1500).
  auto purge = RunProcess({kCnx, "graph", "purge-tombstones", "--dir", (data / "graph").string(), "--horizon", "0"});
  ASSERT_TRUE(purge.has_value());
  EXPECT_EQ(purge->exit_code, 0) << purge->output;
  EXPECT_NE(purge->output.find("\"tombstones\": 0}"), std::string::npos) << purge->output;
  verify = RunProcess({kCnx, "verify", "--target", "graph", "--data-dir", data.string()});
  ASSERT_TRUE(verify.has_value());
  EXPECT_EQ(verify->exit_code, 0) << verify->output;
  EXPECT_NE(verify->output.find("\"drift\": 0"), std::string::npos) << verify->output;
  // With Neo4j as the target, verify would read a store that is not the target: it refuses.
  RunOptions neo4j;
  neo4j.extra_env = {"CNX_NEO4J_URL=bolt://127.0.0.1:1"};
  auto refused = RunProcess({kCnx, "verify", "--target", "graph", "--data-dir", data.string()}, neo4j);
  ASSERT_TRUE(refused.has_value());
  EXPECT_NE(refused->exit_code, 0) << refused->output;
  EXPECT_NE(refused->output.find("embedded store only"), std::string::npos) << refused->output;
  // Sync status: every projected entity synced, no dead letters.
  auto status = RunProcess({kCnx, "sync", "status", "--data-dir", data.string()});
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->exit_code, 0) << status->output;
  EXPECT_NE(status->output.find("\"status\": \"synced\""), std::string::npos) << status->output;
  EXPECT_EQ(status->output.find("\"status\": \"failed\""), std::string::npos) << status->output;
  EXPECT_NE(status->output.find("\"deadLetters\": []"), std::string::npos) << status->output;
  fs::remove_all(root);
}

// Without --horizon, `cnx graph purge-tombstones` purges after the configured
// graph.tombstone_horizon, as cnx serve's purger does; 0 there means never.
TEST(GraphPurgeCli, DefaultsToTheConfiguredHorizon) {
  using namespace std::chrono_literals;
  const fs::path dir = fs::temp_directory_path() / ("cnx_graph_purge_cli_" + std::to_string(getpid()));
  fs::remove_all(dir);
  {
    FakeClock two_days_ago(SystemClock::Instance().Now() - 48h);
    auto store = graph::EmbeddedGraphStore::Open(dir, {.clock = &two_days_ago});
    ASSERT_TRUE(store.has_value()) << store.error().ToString();
    graph::MutationBatch b{1, {}};
    for (int i = 0; i < 3; ++i) b.mutations.push_back(graph::DeleteNode{"Entity", "gone" + std::to_string(i), 2});
    ASSERT_TRUE((*store)->Apply(b).has_value());
  }
  for (const char* configured : {"72h", "0"}) {
    RunOptions o;
    o.extra_env = {std::string("CNX_GRAPH_TOMBSTONE_HORIZON=") + configured};
    auto r = RunProcess({kCnx, "graph", "purge-tombstones", "--dir", dir.string()}, o);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->exit_code, 0) << r->output;
    EXPECT_NE(r->output.find("{\"purged\": 0, \"tombstones\": 3}"), std::string::npos)
        << configured << ": " << r->output;
  }
  // An explicit --horizon wins.
  RunOptions o;
  o.extra_env = {"CNX_GRAPH_TOMBSTONE_HORIZON=72h"};
  auto r = RunProcess({kCnx, "graph", "purge-tombstones", "--dir", dir.string(), "--horizon", "24h"}, o);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->exit_code, 0) << r->output;
  EXPECT_NE(r->output.find("{\"purged\": 3, \"tombstones\": 0}"), std::string::npos) << r->output;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace cnx
