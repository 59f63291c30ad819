#include "collab/trace.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <string>
#include <vector>

namespace cnx::collab::trace {
namespace {

struct FrameTimes {
  Clock::duration to_io, to_write, write;
};

struct State {
  std::mutex mu;
  std::vector<OpTimes> ops;
  std::vector<FrameTimes> frames;
  Clock::time_point last{};
};

State& S() {
  static State s;
  return s;
}

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

std::string Percentiles(std::vector<double> v) {
  if (v.empty()) return "-";
  std::sort(v.begin(), v.end());
  auto at = [&](double p) {
    size_t i = static_cast<size_t>(p * static_cast<double>(v.size()));
    return v[std::min(v.size() - 1, i)];
  };
  return fmt::format("p50 {:.2f} p90 {:.2f} p99 {:.2f} max {:.2f}", at(0.5), at(0.9), at(0.99), v.back());
}

// Wall-clock text of a steady time point (for correlating with other logs).
std::string WallOf(Clock::time_point t) {
  auto wall = std::chrono::system_clock::now() -
              std::chrono::duration_cast<std::chrono::system_clock::duration>(Clock::now() - t);
  auto secs = std::chrono::system_clock::to_time_t(wall);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(wall.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%H:%M:%S", &tm);
  return fmt::format("{}.{:03d}", buf, static_cast<int>(ms));
}

}  // namespace

bool Enabled() {
  static const bool on = [] {
    const char* v = std::getenv("CNX_COLLAB_TRACE");
    return v != nullptr && std::strcmp(v, "1") == 0;
  }();
  return on;
}

void RecordOp(const OpTimes& op) {
  auto& s = S();
  std::lock_guard lock(s.mu);
  s.ops.push_back(op);
  s.last = Clock::now();
}

void RecordFrame(Clock::duration to_io, Clock::duration to_write, Clock::duration write) {
  auto& s = S();
  std::lock_guard lock(s.mu);
  s.frames.push_back({to_io, to_write, write});
  s.last = Clock::now();
}

void DumpIfQuiet(Clock::duration quiet) {
  if (!Enabled()) return;
  std::vector<OpTimes> ops;
  std::vector<FrameTimes> frames;
  {
    auto& s = S();
    std::lock_guard lock(s.mu);
    if (s.ops.empty() || Clock::now() - s.last < quiet) return;
    ops.swap(s.ops);
    frames.swap(s.frames);
  }
  std::vector<double> apply, wait, build, commit, release, total, batch;
  for (const auto& o : ops) {
    apply.push_back(Ms(o.queued - o.received));
    wait.push_back(Ms(o.taken - o.queued));
    build.push_back(Ms(o.sent - o.taken));
    commit.push_back(Ms(o.committed - o.sent));
    release.push_back(Ms(o.released - o.committed));
    total.push_back(Ms(o.released - o.received));
    batch.push_back(static_cast<double>(o.batch));
  }
  spdlog::info("collab trace: {} update(s) from {} to {}", ops.size(), WallOf(ops.front().received),
               WallOf(ops.back().released));
  spdlog::info("collab trace:   lock+apply  {}", Percentiles(apply));
  spdlog::info("collab trace:   queue wait  {}", Percentiles(wait));
  spdlog::info("collab trace:   build       {}", Percentiles(build));
  spdlog::info("collab trace:   commit      {}", Percentiles(commit));
  spdlog::info("collab trace:   release     {}", Percentiles(release));
  spdlog::info("collab trace:   total       {}", Percentiles(total));
  spdlog::info("collab trace:   batch size  {}", Percentiles(batch));
  std::vector<size_t> order(ops.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return total[a] > total[b]; });
  for (size_t k = 0; k < std::min<size_t>(12, order.size()); ++k) {
    const auto& o = ops[order[k]];
    size_t i = order[k];
    spdlog::info(
        "collab trace:   slow #{} at {}: total {:.2f} = apply {:.2f} + wait {:.2f} + build {:.2f} + commit {:.2f} "
        "+ release {:.2f} ms (batch {}, slot {})",
        k + 1, WallOf(o.received), total[i], apply[i], wait[i], build[i], commit[i], release[i], o.batch, o.slot);
  }
  std::vector<double> to_io, to_write, write;
  size_t merged = 0;
  for (const auto& f : frames) {
    to_io.push_back(Ms(f.to_io));
    if (f.write == Clock::duration::zero()) {
      ++merged;
      continue;
    }
    to_write.push_back(Ms(f.to_write));
    write.push_back(Ms(f.write));
  }
  spdlog::info("collab trace: {} broadcast frame(s) to connections ({} merged into another)", frames.size(), merged);
  spdlog::info("collab trace:   post → io thread   {}", Percentiles(to_io));
  spdlog::info("collab trace:   io → write start   {}", Percentiles(to_write));
  spdlog::info("collab trace:   write              {}", Percentiles(write));
}

}  // namespace cnx::collab::trace
