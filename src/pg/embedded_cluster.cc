#include "pg/embedded_cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include <spdlog/spdlog.h>

#include "base/subprocess.h"
#include "base/uuid.h"
#include "pg/connection.h"

namespace cnx::pg {

namespace fs = std::filesystem;

namespace {

constexpr const char* kSuperuser = "cnx";
constexpr const char* kCredentialsFile = "pg.credentials";
constexpr const char* kLockFile = "cnx.lock";
constexpr const char* kRelocatedRoot = "/var/lib/cnx/clusters";

Error Precondition(std::string msg) {
  return Error(Module::kPg, ErrorCode::kFailedPrecondition, std::move(msg));
}
Error Unavailable(std::string msg) {
  return Error(Module::kPg, ErrorCode::kUnavailable, std::move(msg));
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Tail(const std::string& s, size_t n) {
  return s.size() <= n ? s : s.substr(s.size() - n);
}

std::string RandomHex(size_t bytes) {
  std::vector<uint8_t> b(bytes);
  SecureRandom(b.data(), b.size());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (uint8_t x : b) {
    s.push_back(kHex[x >> 4]);
    s.push_back(kHex[x & 15]);
  }
  return s;
}

uint64_t Fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

Result<std::string> FindBindir(const std::string& configured) {
  std::vector<std::string> candidates;
  if (!configured.empty()) candidates.push_back(configured);
  if (auto r = RunProcess({"pg_config", "--bindir"}, {.timeout = std::chrono::seconds(10)}); r && r->exit_code == 0) {
    std::string d = r->output;
    while (!d.empty() && (d.back() == '\n' || d.back() == ' ')) d.pop_back();
    candidates.push_back(d);
  }
  candidates.push_back("/usr/lib/postgresql/15/bin");
  for (const auto& d : candidates) {
    if (fs::exists(fs::path(d) / "initdb") && fs::exists(fs::path(d) / "pg_ctl")) return d;
  }
  return std::unexpected(Precondition(
      "PostgreSQL server binaries (initdb, pg_ctl) not found; install postgresql-15 (scripts/bootstrap.sh does)"));
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  close(fd);
  return port;
}

bool PortFree(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

// Can `u` reach `dir` (search permission on every ancestor)?
bool Traversable(const fs::path& dir, const UserIds& u) {
  fs::path p;
  for (const auto& part : dir) {
    p /= part;
    struct stat st;
    if (stat(p.c_str(), &st) != 0) return false;
    mode_t need = st.st_uid == u.uid ? S_IXUSR : st.st_gid == u.gid ? S_IXGRP : S_IXOTH;
    if ((st.st_mode & need) == 0) return false;
  }
  return true;
}

Status Chown(const fs::path& p, const UserIds& u) {
  if (lchown(p.c_str(), u.uid, u.gid) != 0) {
    return std::unexpected(Precondition("chown " + p.string() + ": " + std::strerror(errno)));
  }
  return Ok();
}

// postmaster.pid: pid, data dir, start time, port, socket dir, listen addr, ...
struct PidFile {
  pid_t pid = 0;
  int port = 0;
  std::string socket_dir;
};

std::optional<PidFile> ReadPidFile(const fs::path& cluster_dir) {
  std::ifstream in(cluster_dir / "postmaster.pid");
  if (!in) return std::nullopt;
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  if (lines.size() < 5) return std::nullopt;
  PidFile pf;
  pf.pid = static_cast<pid_t>(std::atol(lines[0].c_str()));
  pf.port = std::atoi(lines[3].c_str());
  pf.socket_dir = lines[4];
  return pf;
}

bool IsPostgres(pid_t pid) {
  if (!ProcessAlive(pid)) return false;
  std::string cmd = ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
  return cmd.find("postgres") != std::string::npos;
}

// A relocated cluster (as root, a data directory the PostgreSQL user cannot
// reach) is recorded by `<cluster>.owner` beside it, naming its data directory.
// Removes each recorded cluster whose data directory no longer links to it (the
// data directory was deleted or re-created) and whose postmaster is not
// running, so deleted data directories do not leave clusters behind.
void SweepOrphanedClusters(const fs::path& root) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    const fs::path& owner_file = entry.path();
    if (owner_file.extension() != ".owner") continue;
    fs::path cluster = fs::path(owner_file).replace_extension();
    std::string data_dir;
    std::getline(std::ifstream(owner_file), data_dir);
    std::error_code link_ec;
    fs::path target = fs::read_symlink(fs::path(data_dir) / "pg", link_ec);
    if (!data_dir.empty() && !link_ec && target == cluster) continue;
    std::string first;
    std::getline(std::ifstream(cluster / "postmaster.pid"), first);
    if (pid_t pid = static_cast<pid_t>(std::atol(first.c_str())); pid > 0 && IsPostgres(pid)) continue;
    std::error_code rm_ec;
    fs::remove_all(cluster, rm_ec);
    if (!rm_ec) fs::remove(owner_file, rm_ec);
    if (!rm_ec)
      spdlog::info("pg: removed {}, left behind by the deleted data directory {}", cluster.string(), data_dir);
  }
}

Result<std::pair<std::string, std::string>> ReadCredentials(const fs::path& data_dir) {
  std::string s = ReadFile(data_dir / kCredentialsFile);
  auto colon = s.find(':');
  if (colon == std::string::npos) {
    return std::unexpected(Precondition("missing or unreadable " + (data_dir / kCredentialsFile).string()));
  }
  std::string pw = s.substr(colon + 1);
  while (!pw.empty() && (pw.back() == '\n' || pw.back() == '\r')) pw.pop_back();
  return std::pair{s.substr(0, colon), pw};
}

}  // namespace

namespace {

// Percent-encodes all but unreserved characters (and '/' when `keep_slash`)
// for a URI component libpq decodes.
std::string UriEncode(std::string_view s, bool keep_slash) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

}  // namespace

std::string ClusterInfo::Url(const std::string& dbname) const {
  return "postgresql://" + user + ":" + password + "@127.0.0.1:" + std::to_string(port) + "/" +
         UriEncode(dbname, false);
}

std::string ClusterInfo::SocketUrl(const std::string& dbname) const {
  if (socket_dir.empty()) return Url(dbname);
  // Only a directory that no one but the server's OS user (the owner of the
  // cluster directory) can write to: a socket found elsewhere (a predictable
  // /tmp/cnx-sock-* made by another local user) may not be our server's.
  struct stat dir, cluster;
  if (lstat(socket_dir.c_str(), &dir) != 0 || !S_ISDIR(dir.st_mode) || (dir.st_mode & (S_IWGRP | S_IWOTH)) != 0 ||
      stat(cluster_dir.c_str(), &cluster) != 0 || dir.st_uid != cluster.st_uid) {
    return Url(dbname);
  }
  return "postgresql://" + user + ":" + password + "@/" + UriEncode(dbname, false) +
         "?host=" + UriEncode(socket_dir, true) + "&port=" + std::to_string(port);
}

struct EmbeddedCluster::RunAs {
  std::optional<UserIds> user;  // set when we are root
};

namespace {

Result<RunResult> RunTool(const std::string& bindir, const std::optional<UserIds>& user, std::vector<std::string> argv,
                          std::chrono::seconds timeout) {
  argv[0] = bindir + "/" + argv[0];
  RunOptions o;
  o.as_user = user;
  o.timeout = timeout;
  o.working_dir = "/";
  o.new_session = true;  // the server must not get our terminal's Ctrl-C
  o.extra_env = {"LC_ALL=C.UTF-8", "LANG=C.UTF-8"};
  return RunProcess(argv, o);
}

Result<UserIds> EnsureOsUser(const std::string& name) {
  if (auto u = LookupUser(name)) return u;
  auto r = RunProcess({"useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
                       "--shell", "/usr/sbin/nologin", name});
  if (!r || r->exit_code != 0) {
    return std::unexpected(
        Precondition("cannot create OS user '" + name + "' for PostgreSQL: " + (r ? r->output : r.error().message())));
  }
  return LookupUser(name);
}

}  // namespace

Result<std::unique_ptr<EmbeddedCluster>> EmbeddedCluster::Start(const ClusterOptions& options) {
  std::unique_ptr<EmbeddedCluster> c(new EmbeddedCluster());
  c->options_ = options;
  std::error_code ec;
  fs::path data_dir = fs::absolute(options.data_dir).lexically_normal();
  fs::create_directories(data_dir, ec);
  if (ec) return std::unexpected(Precondition("cannot create data dir " + data_dir.string() + ": " + ec.message()));
  data_dir = fs::canonical(data_dir);
  c->options_.data_dir = data_dir;

  // One supervisor per data directory.
  fs::path lock_path = data_dir / kLockFile;
  c->lock_fd_ = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (c->lock_fd_ < 0) return std::unexpected(Precondition("cannot open " + lock_path.string()));
  if (flock(c->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    std::string holder = ReadFile(lock_path);
    while (!holder.empty() && holder.back() == '\n') holder.pop_back();
    return std::unexpected(Precondition("data dir " + data_dir.string() + " is in use by another cnx" +
                                        (holder.empty() ? "" : " (pid " + holder + ")") +
                                        "; stop it first or use another --data-dir"));
  }
  std::string me = std::to_string(getpid()) + "\n";
  if (ftruncate(c->lock_fd_, 0) != 0 || pwrite(c->lock_fd_, me.data(), me.size(), 0) < 0) {
    return std::unexpected(Precondition("cannot write " + lock_path.string()));
  }

  c->bindir_ = CNX_TRY(FindBindir(options.bindir));
  c->run_as_ = std::make_shared<RunAs>();
  if (geteuid() == 0) c->run_as_->user = CNX_TRY(EnsureOsUser(options.os_user));
  const auto& user = c->run_as_->user;

  // Where the cluster lives.
  fs::path link = data_dir / "pg";
  fs::path cluster_dir;
  if (fs::is_symlink(link) || fs::is_directory(link)) {
    cluster_dir = fs::is_symlink(link) ? fs::read_symlink(link) : link;
    fs::create_directories(cluster_dir, ec);
  } else if (user && !Traversable(data_dir, *user)) {
    SweepOrphanedClusters(kRelocatedRoot);
    cluster_dir = fs::path(kRelocatedRoot) / ("pg-" + std::to_string(Fnv1a(data_dir.string()) % 1000000007));
    fs::create_directories(cluster_dir, ec);
    if (ec) return std::unexpected(Precondition("cannot create " + cluster_dir.string() + ": " + ec.message()));
    chmod(cluster_dir.parent_path().c_str(), 0755);
    chmod(fs::path(kRelocatedRoot).parent_path().c_str(), 0755);
    fs::create_directory_symlink(cluster_dir, link, ec);
    if (ec) return std::unexpected(Precondition("cannot link " + link.string() + ": " + ec.message()));
    // Written after the link, so a concurrent sweep never sees it unlinked.
    std::ofstream(fs::path(cluster_dir).concat(".owner")) << data_dir.string() << "\n";
  } else {
    cluster_dir = link;
    fs::create_directories(cluster_dir, ec);
  }
  if (user) CNX_TRY(Chown(cluster_dir, *user));
  chmod(cluster_dir.c_str(), 0700);
  c->info_.cluster_dir = cluster_dir;

  // initdb on first start.
  if (!fs::exists(cluster_dir / "PG_VERSION")) {
    std::string password = RandomHex(24);
    fs::path pwfile = cluster_dir.parent_path() / (".pwfile-" + RandomHex(8));
    { std::ofstream(pwfile) << password << "\n"; }
    chmod(pwfile.c_str(), 0600);
    if (user) CNX_TRY(Chown(pwfile, *user));
    auto r = RunTool(c->bindir_, user,
                     {"initdb", "-D", cluster_dir.string(), "-U", kSuperuser, "--pwfile=" + pwfile.string(),
                      "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"},
                     std::chrono::seconds(180));
    fs::remove(pwfile, ec);
    if (!r) return std::unexpected(r.error());
    if (r->exit_code != 0) return std::unexpected(Unavailable("initdb failed:\n" + Tail(r->output, 2000)));
    {
      std::ofstream conf(cluster_dir / "postgresql.conf", std::ios::app);
      conf << "\n# ContextNexus: settings written by cnx at initialisation\n"
           << "wal_level = logical\n"
           << "max_wal_senders = 10\n"
           << "max_replication_slots = 10\n"
           << "wal_sender_timeout = 60s\n"
           << "timezone = 'UTC'\n"
           << "log_timezone = 'UTC'\n"
           << "password_encryption = 'scram-sha-256'\n"
           << "include_if_exists = 'cnx.conf'\n";
    }
    std::string creds = std::string(kSuperuser) + ":" + password + "\n";
    fs::path cred_path = data_dir / kCredentialsFile;
    int fd = open(cred_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, creds.data(), creds.size()) != static_cast<ssize_t>(creds.size()) || fsync(fd) != 0) {
      if (fd >= 0) close(fd);
      return std::unexpected(Precondition("cannot write " + cred_path.string()));
    }
    close(fd);
  }
  auto [su, pw] = CNX_TRY(ReadCredentials(data_dir));
  c->info_.user = su;
  c->info_.password = pw;

  // Adopt a postmaster left by a killed cnx; otherwise start one.
  auto pf = ReadPidFile(cluster_dir);
  if (pf && IsPostgres(pf->pid) && pf->port > 0) {
    c->adopted_ = true;
    c->info_.port = pf->port;
    c->info_.socket_dir = pf->socket_dir;
    c->info_.postmaster_pid = pf->pid;
  } else {
    fs::path socket_dir = cluster_dir;
    if (socket_dir.string().size() > 90) {
      socket_dir = fs::path("/tmp") / ("cnx-sock-" + std::to_string(Fnv1a(cluster_dir.string()) % 1000000007));
      fs::create_directories(socket_dir, ec);
      if (user) CNX_TRY(Chown(socket_dir, *user));
      chmod(socket_dir.c_str(), 0700);
    }
    int port = options.port;
    if (port == 0) {
      std::string prev = ReadFile(cluster_dir / "cnx.conf");
      auto at = prev.find("port = ");
      if (at != std::string::npos) port = std::atoi(prev.c_str() + at + 7);
      if (port <= 0 || !PortFree(port)) port = FreePort();
    }
    {
      fs::path conf = cluster_dir / "cnx.conf";
      std::ofstream out(conf, std::ios::trunc);
      out << "# Rewritten by cnx at every start.\n"
          << "listen_addresses = '127.0.0.1'\n"
          << "port = " << port << "\n"
          << "unix_socket_directories = '" << socket_dir.string() << "'\n";
      for (const auto& s : options.extra_settings) out << s << "\n";
      out.close();
      if (user) CNX_TRY(Chown(conf, *user));
    }
    fs::path log = cluster_dir / "server.log";
    auto r = RunTool(c->bindir_, user,
                     {"pg_ctl", "-D", cluster_dir.string(), "-l", log.string(), "-w", "-t",
                      std::to_string(options.start_timeout.count()), "start"},
                     options.start_timeout + std::chrono::seconds(10));
    if (!r) return std::unexpected(r.error());
    if (r->exit_code != 0) {
      return std::unexpected(Unavailable("PostgreSQL did not start (" + Tail(r->output, 500) + "); server log:\n" +
                                         Tail(ReadFile(log), 2000)));
    }
    c->info_.port = port;
    c->info_.socket_dir = socket_dir.string();
    if (auto p = ReadPidFile(cluster_dir)) c->info_.postmaster_pid = p->pid;
  }
  c->info_.running = true;

  // The application database.
  auto admin = CNX_TRY(Connection::Open(c->info_.Url("postgres")));
  auto exists = CNX_TRY(admin.Exec("SELECT 1 FROM pg_database WHERE datname = 'cnx'"));
  if (exists.empty()) CNX_TRY(admin.ExecScript("CREATE DATABASE cnx"));
  return c;
}

Status EmbeddedCluster::Stop() {
  if (stopped_) return Ok();
  stopped_ = true;
  auto r = RunTool(bindir_, run_as_ ? run_as_->user : std::nullopt,
                   {"pg_ctl", "-D", info_.cluster_dir.string(), "-m", "fast", "-w", "-t", "60", "stop"},
                   std::chrono::seconds(70));
  if (!r) return std::unexpected(r.error());
  if (r->exit_code != 0) return std::unexpected(Unavailable("pg_ctl stop failed: " + Tail(r->output, 500)));
  info_.running = false;
  return Ok();
}

EmbeddedCluster::~EmbeddedCluster() {
  if (options_.stop_on_close && info_.running) (void)Stop();
  if (lock_fd_ >= 0) close(lock_fd_);  // releases the flock
}

Result<ClusterInfo> EmbeddedCluster::Inspect(const fs::path& data_dir_in) {
  std::error_code ec;
  fs::path data_dir = fs::canonical(data_dir_in, ec);
  if (ec) return Err(Module::kPg, ErrorCode::kNotFound, "no data dir at " + data_dir_in.string());
  ClusterInfo info;
  fs::path link = data_dir / "pg";
  if (!fs::exists(link / "PG_VERSION")) {
    return Err(Module::kPg, ErrorCode::kNotFound, "no embedded cluster in " + data_dir.string());
  }
  info.cluster_dir = fs::canonical(link);
  auto [su, pw] = CNX_TRY(ReadCredentials(data_dir));
  info.user = su;
  info.password = pw;
  if (auto pf = ReadPidFile(info.cluster_dir); pf && IsPostgres(pf->pid)) {
    info.port = pf->port;
    info.socket_dir = pf->socket_dir;
    info.postmaster_pid = pf->pid;
    info.running = true;
  }
  return info;
}

Status EmbeddedCluster::StopUnsupervised(const ClusterOptions& options) {
  fs::path data_dir = fs::absolute(options.data_dir);
  int fd = open((data_dir / kLockFile).c_str(), O_RDWR | O_CLOEXEC);
  if (fd >= 0) {
    bool locked = flock(fd, LOCK_EX | LOCK_NB) != 0;
    close(fd);
    if (locked)
      return std::unexpected(Precondition("a running cnx supervises " + data_dir.string() + "; stop it instead"));
  }
  auto info = CNX_TRY(Inspect(data_dir));
  if (!info.running) return Ok();
  auto bindir = CNX_TRY(FindBindir(options.bindir));
  std::optional<UserIds> user;
  if (geteuid() == 0) user = CNX_TRY(LookupUser(options.os_user));
  auto r = RunTool(bindir, user, {"pg_ctl", "-D", info.cluster_dir.string(), "-m", "fast", "-w", "-t", "60", "stop"},
                   std::chrono::seconds(70));
  if (!r) return std::unexpected(r.error());
  if (r->exit_code != 0) return std::unexpected(Unavailable("pg_ctl stop failed: " + Tail(r->output, 500)));
  return Ok();
}

}  // namespace cnx::pg
