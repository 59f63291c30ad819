// Metrics: counters, gauges and histograms rendered in the Prometheus text
// exposition format 0.0.4.
//
// A MetricsRegistry is created by the process owner (e.g. `cnx serve`) and
// passed to every module that reports metrics; there is no global registry.
// Registration takes a lock and allocates; updating a metric (Counter::Inc,
// Gauge::Set, Histogram::Observe) is lock-free and never allocates, so hot
// paths should keep the reference returned at registration. Metric objects live
// as long as the registry and never move, so references stay valid.
//
// Thread safety: every method of every class here may be called from any thread.
// Render() sees each value atomically but not the whole registry as one snapshot
// (a histogram's buckets, _sum and _count may be a few observations apart).
//
// Misuse (invalid names, the same name registered twice with a different type,
// help, label names or buckets, a wrong number of label values) is a programming
// error and fails a CNX_ASSERT.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace cnx {

// A monotonically increasing integer count.
class Counter {
 public:
  void Inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A value that goes up and down.
class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double d) { value_.fetch_add(d, std::memory_order_relaxed); }
  void Inc() { Add(1); }
  void Dec() { Add(-1); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Observations counted into fixed buckets (upper bounds, strictly increasing;
// the +Inf bucket is implicit), plus their sum and count.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);

  void Observe(double v);

  const std::vector<double>& bounds() const { return bounds_; }
  // Non-cumulative count of bucket i (i == bounds().size() is the +Inf bucket).
  uint64_t BucketCount(size_t i) const { return counts_[i].load(std::memory_order_relaxed); }
  uint64_t Count() const { return count_.load(std::memory_order_relaxed); }
  double Sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<uint64_t> count_{0};
  std::atomic<double> sum_{0};
};

// Default buckets for request latencies in seconds (0.5 ms .. 10 s).
std::vector<double> LatencyBuckets();

namespace internal {
struct LabelLess {
  using is_transparent = void;
  bool operator()(const std::vector<std::string>& a, const std::vector<std::string>& b) const { return a < b; }
  bool operator()(const std::vector<std::string>& a, std::span<const std::string_view> b) const;
  bool operator()(std::span<const std::string_view> a, const std::vector<std::string>& b) const;
};
}  // namespace internal

// One metric name with a fixed list of label names; each distinct list of label
// values is a child metric created on first use. WithLabels() on an existing
// child takes a shared lock and does not allocate.
template <typename M>
class Family {
 public:
  M& WithLabels(std::span<const std::string_view> values);
  M& WithLabels(std::initializer_list<std::string_view> values) {
    return WithLabels(std::span<const std::string_view>(values.begin(), values.size()));
  }
  const std::vector<std::string>& label_names() const { return label_names_; }

  // Calls fn(label_values, metric) for every child in label order, under a shared lock.
  void ForEach(const std::function<void(const std::vector<std::string>&, const M&)>& fn) const;

 private:
  friend class MetricsRegistry;
  Family(std::vector<std::string> label_names, std::vector<double> bounds)
      : label_names_(std::move(label_names)), bounds_(std::move(bounds)) {}

  std::vector<std::string> label_names_;
  std::vector<double> bounds_;  // histograms only
  mutable std::shared_mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<M>, internal::LabelLess> children_;
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

class MetricsRegistry {
 public:
  MetricsRegistry();
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Registering an existing name with the same type, help and labels returns the
  // existing metric, so independent components may share one.
  Counter& AddCounter(std::string_view name, std::string_view help);
  Gauge& AddGauge(std::string_view name, std::string_view help);
  Histogram& AddHistogram(std::string_view name, std::string_view help, std::vector<double> bounds);
  CounterFamily& AddCounterFamily(std::string_view name, std::string_view help, std::vector<std::string> labels);
  GaugeFamily& AddGaugeFamily(std::string_view name, std::string_view help, std::vector<std::string> labels);
  HistogramFamily& AddHistogramFamily(std::string_view name, std::string_view help, std::vector<std::string> labels,
                                      std::vector<double> bounds);
  // A gauge computed at render time (pool sizes, queue lengths). `fn` is called
  // from the rendering thread, without registry locks held; it must be thread-safe
  // and outlive the registry or be removed with RemoveCallback.
  void AddGaugeCallback(std::string_view name, std::string_view help, std::function<double()> fn);
  void RemoveCallback(std::string_view name);

  // The whole registry in the text format, metrics sorted by name.
  std::string Render() const;

  static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

 private:
  struct Entry;
  Entry& Register(std::string_view name, std::string_view help, int kind, std::vector<std::string> labels,
                  std::vector<double> bounds);

  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Entry>, std::less<>> entries_;  // shared: Render outlives removal
};

// Text-format helpers, exposed for tests and other exporters.
bool IsValidMetricName(std::string_view name);
bool IsValidLabelName(std::string_view name);
void AppendEscapedHelp(std::string& out, std::string_view help);         // \\ and \n
void AppendEscapedLabelValue(std::string& out, std::string_view value);  // \\, \" and \n
void AppendMetricValue(std::string& out, double v);                      // Go-style: +Inf, -Inf, NaN

}  // namespace cnx
