#include "base/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <variant>

#include "base/assert.h"

namespace cnx {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i < bounds_.size(); ++i) {
    CNX_ASSERT(!std::isnan(bounds_[i]) && !std::isinf(bounds_[i]), "histogram bounds must be finite");
    CNX_ASSERT(i == 0 || bounds_[i - 1] < bounds_[i], "histogram bounds must increase strictly");
  }
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double v) {
  // Prometheus buckets are upper-inclusive: v lands in the first bound >= v.
  size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

std::vector<double> LatencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

namespace internal {
namespace {
template <typename A, typename B>
bool LexLess(const A& a, const B& b) {
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(),
                                      [](std::string_view x, std::string_view y) { return x < y; });
}
}  // namespace
bool LabelLess::operator()(const std::vector<std::string>& a, std::span<const std::string_view> b) const {
  return LexLess(a, b);
}
bool LabelLess::operator()(std::span<const std::string_view> a, const std::vector<std::string>& b) const {
  return LexLess(a, b);
}
}  // namespace internal

template <typename M>
M& Family<M>::WithLabels(std::span<const std::string_view> values) {
  CNX_ASSERT(values.size() == label_names_.size(), "wrong number of label values");
  {
    std::shared_lock lock(mu_);
    auto it = children_.find(values);
    if (it != children_.end()) return *it->second;
  }
  std::unique_lock lock(mu_);
  auto it = children_.find(values);
  if (it != children_.end()) return *it->second;
  std::vector<std::string> key(values.begin(), values.end());
  std::unique_ptr<M> m;
  if constexpr (std::is_same_v<M, Histogram>) {
    m = std::make_unique<Histogram>(bounds_);
  } else {
    m = std::make_unique<M>();
  }
  M& ref = *m;
  children_.emplace(std::move(key), std::move(m));
  return ref;
}

template <typename M>
void Family<M>::ForEach(const std::function<void(const std::vector<std::string>&, const M&)>& fn) const {
  std::shared_lock lock(mu_);
  for (const auto& [labels, m] : children_) fn(labels, *m);
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

// ---- text format helpers ----

bool IsValidMetricName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool IsValidLabelName(std::string_view name) {
  if (name.empty() || name.starts_with("__")) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

void AppendEscapedHelp(std::string& out, std::string_view help) {
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
}

void AppendEscapedLabelValue(std::string& out, std::string_view value) {
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
}

void AppendMetricValue(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    fmt::format_to(std::back_inserter(out), "{}", v);  // shortest round-trip form
  }
}

// ---- registry ----

namespace {
enum Kind : int { kCounter, kGauge, kHistogram, kCounterFamily, kGaugeFamily, kHistogramFamily, kCallback };

const char* TypeName(int kind) {
  switch (kind) {
    case kCounter:
    case kCounterFamily:
      return "counter";
    case kGauge:
    case kGaugeFamily:
    case kCallback:
      return "gauge";
    default:
      return "histogram";
  }
}
}  // namespace

struct MetricsRegistry::Entry {
  std::string name;
  std::string help;
  int kind;
  std::vector<std::string> labels;
  std::vector<double> bounds;
  std::unique_ptr<Counter> counter;
  std::unique_ptr<Gauge> gauge;
  std::unique_ptr<Histogram> histogram;
  std::unique_ptr<CounterFamily> counter_family;
  std::unique_ptr<GaugeFamily> gauge_family;
  std::unique_ptr<HistogramFamily> histogram_family;
  std::unique_ptr<std::function<double()>> callback;
};

MetricsRegistry::MetricsRegistry() = default;
MetricsRegistry::~MetricsRegistry() = default;

MetricsRegistry::Entry& MetricsRegistry::Register(std::string_view name, std::string_view help, int kind,
                                                  std::vector<std::string> labels, std::vector<double> bounds) {
  CNX_ASSERT(IsValidMetricName(name), "invalid metric name");
  for (const auto& l : labels) {
    CNX_ASSERT(IsValidLabelName(l), "invalid label name");
    CNX_ASSERT(!(l == "le" && (kind == kHistogram || kind == kHistogramFamily)), "'le' is reserved in histograms");
  }
  auto it = entries_.find(name);
  if (it != entries_.end()) {
    Entry& e = *it->second;
    CNX_ASSERT(e.kind == kind && e.help == help && e.labels == labels && e.bounds == bounds,
               "metric registered twice with a different definition");
    return e;
  }
  auto e = std::make_shared<Entry>();
  e->name = std::string(name);
  e->help = std::string(help);
  e->kind = kind;
  e->labels = std::move(labels);
  e->bounds = std::move(bounds);
  switch (kind) {
    case kCounter:
      e->counter = std::make_unique<Counter>();
      break;
    case kGauge:
      e->gauge = std::make_unique<Gauge>();
      break;
    case kHistogram:
      e->histogram = std::make_unique<Histogram>(e->bounds);
      break;
    case kCounterFamily:
      e->counter_family.reset(new CounterFamily(e->labels, {}));
      break;
    case kGaugeFamily:
      e->gauge_family.reset(new GaugeFamily(e->labels, {}));
      break;
    case kHistogramFamily:
      e->histogram_family.reset(new HistogramFamily(e->labels, e->bounds));
      break;
    default:
      break;
  }
  Entry& ref = *e;
  entries_.emplace(ref.name, std::move(e));
  return ref;
}

Counter& MetricsRegistry::AddCounter(std::string_view name, std::string_view help) {
  std::lock_guard lock(mu_);
  return *Register(name, help, kCounter, {}, {}).counter;
}

Gauge& MetricsRegistry::AddGauge(std::string_view name, std::string_view help) {
  std::lock_guard lock(mu_);
  return *Register(name, help, kGauge, {}, {}).gauge;
}

Histogram& MetricsRegistry::AddHistogram(std::string_view name, std::string_view help, std::vector<double> bounds) {
  std::lock_guard lock(mu_);
  return *Register(name, help, kHistogram, {}, std::move(bounds)).histogram;
}

CounterFamily& MetricsRegistry::AddCounterFamily(std::string_view name, std::string_view help,
                                                 std::vector<std::string> labels) {
  CNX_ASSERT(!labels.empty(), "a family needs at least one label");
  std::lock_guard lock(mu_);
  return *Register(name, help, kCounterFamily, std::move(labels), {}).counter_family;
}

GaugeFamily& MetricsRegistry::AddGaugeFamily(std::string_view name, std::string_view help,
                                             std::vector<std::string> labels) {
  CNX_ASSERT(!labels.empty(), "a family needs at least one label");
  std::lock_guard lock(mu_);
  return *Register(name, help, kGaugeFamily, std::move(labels), {}).gauge_family;
}

HistogramFamily& MetricsRegistry::AddHistogramFamily(std::string_view name, std::string_view help,
                                                     std::vector<std::string> labels, std::vector<double> bounds) {
  CNX_ASSERT(!labels.empty(), "a family needs at least one label");
  std::lock_guard lock(mu_);
  return *Register(name, help, kHistogramFamily, std::move(labels), std::move(bounds)).histogram_family;
}

void MetricsRegistry::AddGaugeCallback(std::string_view name, std::string_view help, std::function<double()> fn) {
  std::lock_guard lock(mu_);
  CNX_ASSERT(entries_.find(name) == entries_.end(), "callback gauge registered twice");
  Entry& e = Register(name, help, kCallback, {}, {});
  e.callback = std::make_unique<std::function<double()>>(std::move(fn));
}

void MetricsRegistry::RemoveCallback(std::string_view name) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(name);
  if (it != entries_.end() && it->second->kind == kCallback) entries_.erase(it);
}

namespace {

// `name{a="x",b="y"[,le="bound"]} ` (up to the value)
void AppendSeries(std::string& out, std::string_view name, std::string_view suffix,
                  const std::vector<std::string>& label_names, const std::vector<std::string>& label_values,
                  const std::string* le) {
  out += name;
  out += suffix;
  if (!label_names.empty() || le != nullptr) {
    out.push_back('{');
    for (size_t i = 0; i < label_names.size(); ++i) {
      if (i > 0) out.push_back(',');
      out += label_names[i];
      out += "=\"";
      AppendEscapedLabelValue(out, label_values[i]);
      out.push_back('"');
    }
    if (le != nullptr) {
      if (!label_names.empty()) out.push_back(',');
      out += "le=\"";
      out += *le;
      out.push_back('"');
    }
    out.push_back('}');
  }
  out.push_back(' ');
}

void AppendSample(std::string& out, std::string_view name, std::string_view suffix,
                  const std::vector<std::string>& label_names, const std::vector<std::string>& label_values,
                  const std::string* le, double value) {
  AppendSeries(out, name, suffix, label_names, label_values, le);
  AppendMetricValue(out, value);
  out.push_back('\n');
}

// Integers print exactly, even beyond 2^53.
void AppendCount(std::string& out, std::string_view name, std::string_view suffix,
                 const std::vector<std::string>& label_names, const std::vector<std::string>& label_values,
                 const std::string* le, uint64_t value) {
  AppendSeries(out, name, suffix, label_names, label_values, le);
  fmt::format_to(std::back_inserter(out), "{}\n", value);
}

void AppendHistogram(std::string& out, std::string_view name, const std::vector<std::string>& label_names,
                     const std::vector<std::string>& label_values, const Histogram& h,
                     const std::vector<std::string>& le_text) {
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= h.bounds().size(); ++i) {
    cumulative += h.BucketCount(i);
    AppendCount(out, name, "_bucket", label_names, label_values, &le_text[i], cumulative);
  }
  AppendSample(out, name, "_sum", label_names, label_values, nullptr, h.Sum());
  // _count equals the +Inf bucket so a scrape is self-consistent even while
  // observations race with rendering.
  AppendCount(out, name, "_count", label_names, label_values, nullptr, cumulative);
}

std::vector<std::string> LeText(const std::vector<double>& bounds) {
  std::vector<std::string> out;
  for (double b : bounds) {
    std::string s;
    AppendMetricValue(s, b);
    out.push_back(std::move(s));
  }
  out.push_back("+Inf");
  return out;
}

}  // namespace

std::string MetricsRegistry::Render() const {
  // Copy the entry list under the lock; metric objects are stable and atomic.
  std::vector<std::shared_ptr<const Entry>> entries;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, e] : entries_) entries.push_back(e);
  }
  std::string out;
  out.reserve(4096);
  static const std::vector<std::string> kNoLabels;
  for (size_t idx = 0; idx < entries.size(); ++idx) {
    const Entry& e = *entries[idx];
    out += "# HELP ";
    out += e.name;
    out.push_back(' ');
    AppendEscapedHelp(out, e.help);
    out += "\n# TYPE ";
    out += e.name;
    out.push_back(' ');
    out += TypeName(e.kind);
    out.push_back('\n');
    switch (e.kind) {
      case kCounter:
        AppendCount(out, e.name, "", kNoLabels, kNoLabels, nullptr, e.counter->Value());
        break;
      case kGauge:
        AppendSample(out, e.name, "", kNoLabels, kNoLabels, nullptr, e.gauge->Value());
        break;
      case kCallback:
        AppendSample(out, e.name, "", kNoLabels, kNoLabels, nullptr, (*e.callback)());
        break;
      case kHistogram:
        AppendHistogram(out, e.name, kNoLabels, kNoLabels, *e.histogram, LeText(e.bounds));
        break;
      case kCounterFamily:
        e.counter_family->ForEach([&](const std::vector<std::string>& values, const Counter& c) {
          AppendCount(out, e.name, "", e.labels, values, nullptr, c.Value());
        });
        break;
      case kGaugeFamily:
        e.gauge_family->ForEach([&](const std::vector<std::string>& values, const Gauge& g) {
          AppendSample(out, e.name, "", e.labels, values, nullptr, g.Value());
        });
        break;
      case kHistogramFamily: {
        auto le = LeText(e.bounds);
        e.histogram_family->ForEach([&](const std::vector<std::string>& values, const Histogram& h) {
          AppendHistogram(out, e.name, e.labels, values, h, le);
        });
        break;
      }
      default:
        break;
    }
  }
  return out;
}

}  // namespace cnx
