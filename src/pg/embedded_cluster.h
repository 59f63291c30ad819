// EmbeddedCluster: a private PostgreSQL 15 cluster that `cnx` creates and
// supervises in its data directory when no external database is configured.
//
// Start() initialises the cluster on first use (initdb: UTF-8, scram-sha-256,
// a random superuser password kept in <data-dir>/pg.credentials, mode 0600),
// writes the settings change capture needs (wal_level=logical, replication
// slots and senders), listens on 127.0.0.1 on a free port plus a Unix socket,
// starts it with pg_ctl and waits until it accepts connections. A second
// start reuses the cluster. A postmaster left running by a killed `cnx` is
// adopted. Two `cnx` processes on one data directory are refused: the data
// directory is locked (flock on <data-dir>/cnx.lock) for the object's life.
//
// PostgreSQL refuses to run as root. When the caller is root the server runs
// as an unprivileged OS user (default "postgres", created when absent) that
// owns the cluster directory. If that user cannot traverse every parent of
// the data directory (a checkout under /root), the cluster directory is placed
// under /var/lib/cnx/clusters/ and <data-dir>/pg is a symlink to it.
//
// Not thread-safe; one owner. Errors: kFailedPrecondition (locked, missing
// binaries, wrong permissions), kUnavailable (server did not start; the
// message carries the end of the server log).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

namespace cnx::pg {

struct ClusterOptions {
  std::filesystem::path data_dir = "cnx-data";
  std::string os_user = "postgres";         // used only when running as root
  int port = 0;                             // 0: previous port if free, else any free port
  std::vector<std::string> extra_settings;  // "fsync = off" lines for postgresql.conf
  std::string bindir;                       // empty: pg_config --bindir, then the Debian path
  bool stop_on_close = true;                // false: leave the server running (test fixtures)
  std::chrono::seconds start_timeout{60};
};

// What `cnx pg url` needs to reach a running cluster, read from disk.
struct ClusterInfo {
  std::filesystem::path cluster_dir;
  std::string user;
  std::string password;
  int port = 0;
  std::string socket_dir;
  pid_t postmaster_pid = 0;
  bool running = false;

  // postgresql://user:password@127.0.0.1:port/dbname
  std::string Url(const std::string& dbname = "cnx") const;
  // The same through the Unix-domain socket in `socket_dir` (cheaper per round
  // trip than TCP over loopback); Url() when there is no socket directory or
  // it is not a directory only the cluster directory's owner can write to.
  std::string SocketUrl(const std::string& dbname = "cnx") const;
};

class EmbeddedCluster {
 public:
  static Result<std::unique_ptr<EmbeddedCluster>> Start(const ClusterOptions& options);
  ~EmbeddedCluster();
  EmbeddedCluster(const EmbeddedCluster&) = delete;
  EmbeddedCluster& operator=(const EmbeddedCluster&) = delete;

  const ClusterInfo& info() const { return info_; }
  std::string Url(const std::string& dbname = "cnx") const { return info_.Url(dbname); }
  bool adopted() const { return adopted_; }  // true when a running postmaster was taken over

  // Fast shutdown (pg_ctl stop -m fast), waiting until it is down.
  Status Stop();

  // Reads the state of the cluster in `data_dir` without locking it.
  static Result<ClusterInfo> Inspect(const std::filesystem::path& data_dir);
  // Stops a cluster no `cnx` is supervising (refuses while one holds the lock).
  static Status StopUnsupervised(const ClusterOptions& options);

 private:
  EmbeddedCluster() = default;
  ClusterOptions options_;
  ClusterInfo info_;
  std::string bindir_;
  int lock_fd_ = -1;
  bool adopted_ = false;
  bool stopped_ = false;
  struct RunAs;
  std::shared_ptr<RunAs> run_as_;
};

}  // namespace cnx::pg
