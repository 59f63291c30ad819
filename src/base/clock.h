// Clock: the one way code asks for the time, so tests can control it.
//
// SystemClock reads the real clocks and is thread-safe. FakeClock starts at a
// given instant and moves only when told; it is thread-safe too.
#pragma once

#include <atomic>
#include <chrono>

namespace cnx {

class Clock {
 public:
  using WallTime = std::chrono::system_clock::time_point;
  using MonoTime = std::chrono::steady_clock::time_point;

  virtual ~Clock() = default;
  virtual WallTime Now() const = 0;        // wall clock: timestamps people read
  virtual MonoTime Monotonic() const = 0;  // steady clock: timeouts and durations
};

class SystemClock final : public Clock {
 public:
  WallTime Now() const override { return std::chrono::system_clock::now(); }
  MonoTime Monotonic() const override { return std::chrono::steady_clock::now(); }
  static SystemClock& Instance();  // stateless, so sharing it is safe
};

class FakeClock final : public Clock {
 public:
  explicit FakeClock(WallTime start = WallTime(std::chrono::seconds(1'700'000'000)))
      : wall_ns_(start.time_since_epoch().count()) {}
  WallTime Now() const override { return WallTime(WallTime::duration(wall_ns_.load())); }
  MonoTime Monotonic() const override { return MonoTime(MonoTime::duration(mono_ns_.load())); }
  void Advance(std::chrono::nanoseconds d) {
    wall_ns_ += std::chrono::duration_cast<WallTime::duration>(d).count();
    mono_ns_ += std::chrono::duration_cast<MonoTime::duration>(d).count();
  }

 private:
  std::atomic<int64_t> wall_ns_;
  std::atomic<int64_t> mono_ns_{0};
};

}  // namespace cnx
