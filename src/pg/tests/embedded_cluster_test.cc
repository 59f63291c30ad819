// The supervisor's start / restart / adopt / stale-pid / refuse-second paths,
// and the as-root path, against real PostgreSQL processes.
#include "pg/embedded_cluster.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "base/subprocess.h"
#include "pg/connection.h"

namespace cnx::pg {
namespace {

namespace fs = std::filesystem;

fs::path TempDir(const std::string& tag) {
  fs::path d = fs::temp_directory_path() / ("cnx-" + tag + "-" + std::to_string(getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

ClusterOptions Options(const fs::path& dir) {
  ClusterOptions o;
  o.data_dir = dir;
  o.extra_settings = {"fsync = off"};
  return o;
}

int64_t CountMarkerOn(Connection& conn) {
  return conn.Exec("SELECT count(*) FROM marker").value()[0].Get<int64_t>(0).value();
}

int64_t CountMarker(const EmbeddedCluster& c) {
  auto conn = Connection::Open(c.Url()).value();
  auto r = conn.Exec("SELECT count(*) FROM marker").value();
  return r[0].Get<int64_t>(0).value();
}

TEST(EmbeddedCluster, StartRestartAdoptStaleAndSecondInstance) {
  fs::path dir = TempDir("sup");
  int first_port = 0;
  {
    auto c = EmbeddedCluster::Start(Options(dir));
    ASSERT_TRUE(c.has_value()) << c.error().ToString();
    EXPECT_FALSE((*c)->adopted());
    first_port = (*c)->info().port;
    EXPECT_GT(first_port, 0);
    auto conn = Connection::Open((*c)->Url());
    ASSERT_TRUE(conn.has_value()) << conn.error().ToString();
    EXPECT_GE(conn->server_version(), 150000);
    EXPECT_TRUE(conn->ExecScript("CREATE TABLE marker (x int); INSERT INTO marker VALUES (1)"));
    auto wal = conn->Exec("SHOW wal_level").value();
    EXPECT_EQ(wal[0].Get<std::string>(0).value(), "logical");
    // The product's own connections go through the Unix-domain socket.
    auto by_socket = Connection::Open((*c)->info().SocketUrl());
    ASSERT_TRUE(by_socket.has_value()) << by_socket.error().ToString();
    EXPECT_EQ(CountMarkerOn(*by_socket), 1);
    // Credentials are private to the owner.
    struct stat st;
    ASSERT_EQ(stat((dir / "pg.credentials").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    // A wrong password is refused (scram-sha-256, not trust).
    ClusterInfo wrong = (*c)->info();
    wrong.password = "not-the-password";
    auto bad = Connection::Open(wrong.Url());
    ASSERT_FALSE(bad.has_value());
    EXPECT_EQ(bad.error().code(), ErrorCode::kUnauthenticated);

    // A second supervisor on the same data dir is refused with a clear message.
    auto second = EmbeddedCluster::Start(Options(dir));
    ASSERT_FALSE(second.has_value());
    EXPECT_EQ(second.error().code(), ErrorCode::kFailedPrecondition);
    EXPECT_NE(second.error().message().find("in use by another cnx"), std::string::npos);
    // `cnx pg url` can still read it.
    auto info = EmbeddedCluster::Inspect(dir).value();
    EXPECT_TRUE(info.running);
    EXPECT_EQ(info.port, first_port);
    // Stopping it behind the supervisor's back is refused too.
    EXPECT_FALSE(EmbeddedCluster::StopUnsupervised(Options(dir)).has_value());
  }  // stops the server (fast) and releases the lock

  EXPECT_FALSE(EmbeddedCluster::Inspect(dir).value().running);
  {
    // Restart reuses the cluster (no new initdb: the data is there) and its port.
    auto c = EmbeddedCluster::Start(Options(dir));
    ASSERT_TRUE(c.has_value()) << c.error().ToString();
    EXPECT_FALSE((*c)->adopted());
    EXPECT_EQ((*c)->info().port, first_port);
    EXPECT_EQ(CountMarker(**c), 1);
  }

  {
    // A supervisor that dies without stopping the server (kill -9) leaves a
    // running postmaster: the next start adopts it.
    auto opts = Options(dir);
    opts.stop_on_close = false;
    auto c = EmbeddedCluster::Start(opts);
    ASSERT_TRUE(c.has_value());
  }
  pid_t left_running = EmbeddedCluster::Inspect(dir).value().postmaster_pid;
  EXPECT_TRUE(ProcessAlive(left_running));
  {
    auto c = EmbeddedCluster::Start(Options(dir));
    ASSERT_TRUE(c.has_value()) << c.error().ToString();
    EXPECT_TRUE((*c)->adopted());
    EXPECT_EQ((*c)->info().postmaster_pid, left_running);
    EXPECT_EQ(CountMarker(**c), 1);
    // The adopted server's socket directory comes from its postmaster.pid.
    auto by_socket = Connection::Open((*c)->info().SocketUrl());
    ASSERT_TRUE(by_socket.has_value()) << by_socket.error().ToString();
    EXPECT_NE((*c)->info().SocketUrl(), (*c)->info().Url());
    EXPECT_EQ(CountMarkerOn(*by_socket), 1);
  }
  // pg_ctl -w returns once the pid file is gone; the process exits right after.
  for (int i = 0; i < 100 && ProcessAlive(left_running); ++i) usleep(50'000);
  EXPECT_FALSE(ProcessAlive(left_running));

  // A stale postmaster.pid (its process is gone) does not prevent a start.
  fs::path cluster_dir = fs::canonical(dir / "pg");
  pid_t dead = fork();
  if (dead == 0) _exit(0);
  waitpid(dead, nullptr, 0);
  {
    std::ofstream pid(cluster_dir / "postmaster.pid");
    pid << dead << "\n" << cluster_dir.string() << "\n1700000000\n" << first_port << "\n/tmp\n127.0.0.1\n";
  }
  {
    auto c = EmbeddedCluster::Start(Options(dir));
    ASSERT_TRUE(c.has_value()) << c.error().ToString();
    EXPECT_FALSE((*c)->adopted());
    EXPECT_EQ(CountMarker(**c), 1);
  }
  fs::remove_all(dir);
}

TEST(EmbeddedCluster, AsRootRunsUnprivilegedEvenUnderAPrivateDirectory) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  // Like a checkout under /root: the parent is not traversable by others.
  fs::path parent = TempDir("root-private");
  ASSERT_EQ(chmod(parent.c_str(), 0700), 0);
  fs::path dir = parent / "data";
  auto c = EmbeddedCluster::Start(Options(dir));
  ASSERT_TRUE(c.has_value()) << c.error().ToString();
  // The cluster was placed where the PostgreSQL user can reach it.
  EXPECT_TRUE(fs::is_symlink(dir / "pg"));
  fs::path real = fs::canonical(dir / "pg");
  EXPECT_EQ(real.string().rfind("/var/lib/cnx/clusters/", 0), 0u) << real;
  // The server does not run as root.
  struct stat st;
  ASSERT_EQ(stat(("/proc/" + std::to_string((*c)->info().postmaster_pid)).c_str(), &st), 0);
  EXPECT_NE(st.st_uid, 0u);
  auto conn = Connection::Open((*c)->Url());
  ASSERT_TRUE(conn.has_value()) << conn.error().ToString();
  // Root reaches it through the socket in the PostgreSQL user's directory too.
  std::string socket_url = (*c)->info().SocketUrl("postgres");
  EXPECT_NE(socket_url, (*c)->info().Url("postgres"));
  auto by_socket = Connection::Open(socket_url);
  EXPECT_TRUE(by_socket.has_value()) << socket_url << ": " << by_socket.error().ToString();
  ASSERT_TRUE((*c)->Stop());
  c->reset();
  fs::remove_all(real);
  fs::remove_all(parent);
}

// Relocated clusters of deleted data directories are removed at the next
// relocated start; those still linked from their data directory stay.
TEST(EmbeddedCluster, AsRootAClusterLeftByADeletedDataDirectoryIsRemoved) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  fs::path parent = TempDir("root-sweep");
  ASSERT_EQ(chmod(parent.c_str(), 0700), 0);
  auto start_stop = [&](const fs::path& dir) {
    auto c = EmbeddedCluster::Start(Options(dir));
    EXPECT_TRUE(c.has_value()) << c.error().ToString();
    fs::path real = c ? (*c)->info().cluster_dir : fs::path();
    if (c) {
      EXPECT_TRUE((*c)->Stop());
    }
    return real;
  };
  fs::path kept = start_stop(parent / "kept");
  fs::path gone = start_stop(parent / "gone");
  ASSERT_FALSE(kept.empty());
  ASSERT_FALSE(gone.empty());
  ASSERT_EQ(kept.parent_path(), fs::path("/var/lib/cnx/clusters"));
  EXPECT_TRUE(fs::exists(fs::path(gone).concat(".owner")));
  fs::remove_all(parent / "gone");

  fs::path third = start_stop(parent / "third");
  EXPECT_FALSE(fs::exists(gone)) << gone;
  EXPECT_FALSE(fs::exists(fs::path(gone).concat(".owner")));
  EXPECT_TRUE(fs::exists(kept / "PG_VERSION")) << kept;
  // The kept one still starts with its data.
  auto again = EmbeddedCluster::Start(Options(parent / "kept"));
  ASSERT_TRUE(again.has_value()) << again.error().ToString();
  EXPECT_EQ((*again)->info().cluster_dir, kept);
  ASSERT_TRUE((*again)->Stop());
  again->reset();
  for (const auto& d : {kept, third}) {
    fs::remove_all(d);
    fs::remove(fs::path(d).concat(".owner"));
  }
  fs::remove_all(parent);
}

// Our own connections go through the socket directory only when no one but
// the server's OS user can put a socket there: the directory for long paths
// is a predictable name under /tmp that another local user may have made.
TEST(ClusterInfo, SocketUrlOnlyThroughADirectoryNoOneElseCanWrite) {
  fs::path root = TempDir("socket-url");
  ClusterInfo info;
  info.cluster_dir = root / "cluster";
  fs::create_directories(info.cluster_dir);
  ASSERT_EQ(chmod(info.cluster_dir.c_str(), 0700), 0);
  info.user = "cnx";
  info.password = "pw";
  info.port = 5999;
  const std::string tcp = info.Url("db");

  info.socket_dir = info.cluster_dir.string();  // the usual case
  EXPECT_EQ(info.SocketUrl("db").rfind("postgresql://cnx:pw@/db?host=", 0), 0u) << info.SocketUrl("db");

  // Any character of the path survives the URI (libpq decodes the query).
  fs::path odd = root / "we ird@?&=%#+,é";
  fs::create_directories(odd);
  ASSERT_EQ(chmod(odd.c_str(), 0700), 0);
  info.socket_dir = odd.string();
  const std::string odd_db = "my db/ä?x";  // and of the database name, on both transports
  for (const std::string& url : {info.SocketUrl(odd_db), info.Url(odd_db)}) {
    char* err = nullptr;
    PQconninfoOption* parsed = PQconninfoParse(url.c_str(), &err);
    ASSERT_NE(parsed, nullptr) << (err ? err : "");
    std::map<std::string, std::string> got;
    for (auto* o = parsed; o->keyword != nullptr; ++o) {
      if (o->val) got[o->keyword] = o->val;
    }
    PQconninfoFree(parsed);
    EXPECT_EQ(got["dbname"], odd_db) << url;
  }
  {
    char* err = nullptr;
    PQconninfoOption* parsed = PQconninfoParse(info.SocketUrl("db").c_str(), &err);
    ASSERT_NE(parsed, nullptr) << (err ? err : "");
    std::map<std::string, std::string> got;
    for (auto* o = parsed; o->keyword != nullptr; ++o) {
      if (o->val) got[o->keyword] = o->val;
    }
    PQconninfoFree(parsed);
    EXPECT_EQ(got["host"], odd.string());
    EXPECT_EQ(got["port"], "5999");
    EXPECT_EQ(got["dbname"], "db");
    EXPECT_EQ(got["user"], "cnx");
  }

  fs::path shared = root / "shared";  // writable by everyone
  fs::create_directories(shared);
  ASSERT_EQ(chmod(shared.c_str(), 0777), 0);
  info.socket_dir = shared.string();
  EXPECT_EQ(info.SocketUrl("db"), tcp);

  fs::path link = root / "link";  // a symbolic link to a directory
  fs::create_directory_symlink(info.cluster_dir, link);
  info.socket_dir = link.string();
  EXPECT_EQ(info.SocketUrl("db"), tcp);

  info.socket_dir = (root / "missing").string();
  EXPECT_EQ(info.SocketUrl("db"), tcp);

  if (geteuid() == 0) {  // a directory another user owns
    fs::path foreign = root / "foreign";
    fs::create_directories(foreign);
    ASSERT_EQ(chmod(foreign.c_str(), 0700), 0);
    ASSERT_EQ(chown(foreign.c_str(), 65534, 65534), 0);
    info.socket_dir = foreign.string();
    EXPECT_EQ(info.SocketUrl("db"), tcp);
  }
  fs::remove_all(root);
}

}  // namespace
}  // namespace cnx::pg
