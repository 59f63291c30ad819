// The relay as a process of its own for the crash campaign (crash_test.cc):
//
//   cdc_crash_harness CONNINFO SLOT OUT_FILE CRASH_PERMILLE
//
// Runs Relay -> InProcessBus -> a consumer group "dedup" on the topic
// outbox.event.tenants. The consumer appends "<aggregate id> <version> <op>\n"
// for every delivery to OUT_FILE (write(2) with O_APPEND: the line survives a
// SIGKILL of this process) and only then returns, which commits the event.
// With CRASH_PERMILLE > 0 the consumer kills its own process with that
// probability per event after recording it and before committing: a consumer
// that crashes before its commit. Runs until killed.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <random>
#include <string>
#include <thread>

#include "bus/in_process_bus.h"
#include "cdc/envelope.h"
#include "cdc/relay.h"

int main(int argc, char** argv) {
  using namespace cnx;
  using namespace std::chrono_literals;
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s CONNINFO SLOT OUT_FILE CRASH_PERMILLE\n", argv[0]);
    return 2;
  }
  const std::string conninfo = argv[1], slot = argv[2];
  const int fd = ::open(argv[3], O_WRONLY | O_APPEND | O_CREAT, 0644);
  const int crash_permille = std::atoi(argv[4]);
  if (fd < 0) {
    std::perror(argv[3]);
    return 2;
  }
  std::mutex mu;
  std::mt19937 rng(static_cast<unsigned>(getpid()) * 2654435761u);

  bus::InProcessBus bus;
  auto sub = bus.Subscribe(
      {.group = "dedup", .topics = {"outbox.event.tenants"}, .workers = 2, .max_attempts = 1'000'000},
      [&](const bus::Delivery& d) {
        auto v = cdc::ParseOutboxValue(d.event.value);
        std::string line = v ? v->id + " " + std::to_string(v->version) + " " + v->op + "\n" : "malformed\n";
        std::lock_guard lock(mu);
        if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) std::abort();
        if (crash_permille > 0 && static_cast<int>(rng() % 1000) < crash_permille) ::_exit(9);
        return bus::HandlerResult::Ok();
      });
  if (!sub) {
    std::fprintf(stderr, "subscribe: %s\n", sub.error().ToString().c_str());
    return 1;
  }
  cdc::Relay relay({.conninfo = conninfo, .slot = slot, .feedback = {.interval = 200ms, .coalesce = 20ms}}, bus);
  if (auto st = relay.Setup(); !st) {
    std::fprintf(stderr, "setup: %s\n", st.error().ToString().c_str());
    return 1;
  }
  std::fprintf(stderr, "harness %d streaming\n", getpid());
  for (;;) {  // as cnx serve does: run again after an error
    auto st = relay.Run();
    if (!st) std::fprintf(stderr, "relay: %s\n", st.error().ToString().c_str());
    std::this_thread::sleep_for(100ms);
  }
}
