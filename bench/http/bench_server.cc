// `cnx::api::Server` with only its built-in endpoints, for wrk.
// Usage: http_bench_server IO_THREADS ACCESS_LOG(0|1). Prints "port N", serves
// until SIGINT/SIGTERM, then shuts down gracefully.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "api/server.h"
#include "base/log.h"

int main(int argc, char** argv) {
  int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  bool access_log = argc > 2 && std::string(argv[2]) == "1";
  if (!cnx::InitLogging({})) return 1;
  // Block the signals before any thread starts so only sigwait() sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  cnx::MetricsRegistry metrics;
  cnx::api::ServerConfig config;
  config.listen = "127.0.0.1:0";
  config.io_threads = threads;
  config.access_log = access_log;
  cnx::api::Server server(config, cnx::api::Router(), metrics);
  auto ep = server.Start();
  if (!ep) {
    std::fprintf(stderr, "%s\n", ep.error().ToString().c_str());
    return 1;
  }
  std::printf("port %u\n", ep->port());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&signals, &sig);
  server.Shutdown();
  return 0;
}
