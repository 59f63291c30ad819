#include "base/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <sstream>
#include <thread>
#include <vector>

namespace cnx {
namespace {

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

// A line-level check of the text format 0.0.4: every metric block starts with
// HELP then TYPE, and every sample line belongs to the family last typed.
void ExpectWellFormed(const std::string& text) {
  ASSERT_FALSE(text.empty());
  ASSERT_EQ(text.back(), '\n');
  std::string family;
  std::string type;
  for (const auto& line : Lines(text)) {
    ASSERT_FALSE(line.empty());
    if (line.starts_with("# HELP ")) {
      family = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_TRUE(IsValidMetricName(family)) << line;
      type.clear();
    } else if (line.starts_with("# TYPE ")) {
      ASSERT_EQ(line.substr(7, family.size()), family) << line;
      type = line.substr(8 + family.size());
      EXPECT_TRUE(type == "counter" || type == "gauge" || type == "histogram") << line;
    } else {
      ASSERT_FALSE(type.empty()) << "sample before TYPE: " << line;
      ASSERT_TRUE(line.starts_with(family)) << line;
      std::string suffix = line.substr(family.size(), line.find_first_of("{ ", family.size()) - family.size());
      if (type == "histogram") {
        EXPECT_TRUE(suffix == "_bucket" || suffix == "_sum" || suffix == "_count") << line;
      } else {
        EXPECT_EQ(suffix, "") << line;
      }
      auto space = line.rfind(' ');
      ASSERT_NE(space, std::string::npos);
      std::string value = line.substr(space + 1);
      if (value != "+Inf" && value != "-Inf" && value != "NaN") {
        size_t used = 0;
        (void)std::stod(value, &used);
        EXPECT_EQ(used, value.size()) << line;
      }
    }
  }
}

TEST(MetricsTest, CounterAndGaugeRender) {
  MetricsRegistry reg;
  auto& c = reg.AddCounter("cnx_test_events_total", "Events seen.");
  auto& g = reg.AddGauge("cnx_test_queue_depth", "Items waiting.");
  c.Inc();
  c.Inc(4);
  g.Set(7);
  g.Dec();
  g.Add(0.5);
  std::string text = reg.Render();
  ExpectWellFormed(text);
  EXPECT_EQ(text,
            "# HELP cnx_test_events_total Events seen.\n"
            "# TYPE cnx_test_events_total counter\n"
            "cnx_test_events_total 5\n"
            "# HELP cnx_test_queue_depth Items waiting.\n"
            "# TYPE cnx_test_queue_depth gauge\n"
            "cnx_test_queue_depth 6.5\n");
}

TEST(MetricsTest, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  MetricsRegistry reg;
  auto& h = reg.AddHistogram("cnx_test_latency_seconds", "Latency.", {0.1, 0.5, 1});
  h.Observe(0.05);
  h.Observe(0.1);  // upper bound is inclusive
  h.Observe(0.3);
  h.Observe(2);
  std::string text = reg.Render();
  ExpectWellFormed(text);
  EXPECT_EQ(text,
            "# HELP cnx_test_latency_seconds Latency.\n"
            "# TYPE cnx_test_latency_seconds histogram\n"
            "cnx_test_latency_seconds_bucket{le=\"0.1\"} 2\n"
            "cnx_test_latency_seconds_bucket{le=\"0.5\"} 3\n"
            "cnx_test_latency_seconds_bucket{le=\"1\"} 3\n"
            "cnx_test_latency_seconds_bucket{le=\"+Inf\"} 4\n"
            "cnx_test_latency_seconds_sum 2.45\n"
            "cnx_test_latency_seconds_count 4\n");
}

TEST(MetricsTest, LabelledFamiliesSortAndEscapeValues) {
  MetricsRegistry reg;
  auto& fam =
      reg.AddCounterFamily("cnx_test_requests_total", "Requests\\by \"route\"\nsecond line.", {"method", "route"});
  fam.WithLabels({"GET", "/a"}).Inc(2);
  fam.WithLabels({"POST", "quote\" back\\slash\nnewline"}).Inc();
  fam.WithLabels({"GET", "/a"}).Inc();
  std::string text = reg.Render();
  ExpectWellFormed(text);
  EXPECT_EQ(text,
            "# HELP cnx_test_requests_total Requests\\\\by \"route\"\\nsecond line.\n"
            "# TYPE cnx_test_requests_total counter\n"
            "cnx_test_requests_total{method=\"GET\",route=\"/a\"} 3\n"
            "cnx_test_requests_total{method=\"POST\",route=\"quote\\\" back\\\\slash\\nnewline\"} 1\n");
}

TEST(MetricsTest, HistogramFamilyPutsLeLast) {
  MetricsRegistry reg;
  auto& fam = reg.AddHistogramFamily("cnx_test_d_seconds", "D.", {"route"}, {0.25});
  fam.WithLabels({"/x"}).Observe(1);
  std::string text = reg.Render();
  ExpectWellFormed(text);
  EXPECT_NE(text.find("cnx_test_d_seconds_bucket{route=\"/x\",le=\"0.25\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("cnx_test_d_seconds_bucket{route=\"/x\",le=\"+Inf\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("cnx_test_d_seconds_sum{route=\"/x\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("cnx_test_d_seconds_count{route=\"/x\"} 1\n"), std::string::npos) << text;
}

TEST(MetricsTest, SpecialValuesUsePrometheusSpelling) {
  std::string s;
  AppendMetricValue(s, std::numeric_limits<double>::infinity());
  s += ' ';
  AppendMetricValue(s, -std::numeric_limits<double>::infinity());
  s += ' ';
  AppendMetricValue(s, std::nan(""));
  s += ' ';
  AppendMetricValue(s, 1e-7);
  EXPECT_EQ(s, "+Inf -Inf NaN 1e-07");
}

TEST(MetricsTest, ReRegisteringReturnsTheSameMetric) {
  MetricsRegistry reg;
  auto& a = reg.AddCounter("cnx_test_x_total", "X.");
  auto& b = reg.AddCounter("cnx_test_x_total", "X.");
  EXPECT_EQ(&a, &b);
  auto& f1 = reg.AddGaugeFamily("cnx_test_g", "G.", {"k"});
  auto& f2 = reg.AddGaugeFamily("cnx_test_g", "G.", {"k"});
  EXPECT_EQ(&f1.WithLabels({"v"}), &f2.WithLabels({"v"}));
}

TEST(MetricsTest, CallbackGaugeIsEvaluatedAtRenderAndRemovable) {
  MetricsRegistry reg;
  double v = 3;
  reg.AddGaugeCallback("cnx_test_pool_size", "Pool size.", [&] { return v; });
  EXPECT_NE(reg.Render().find("cnx_test_pool_size 3\n"), std::string::npos);
  v = 4;
  EXPECT_NE(reg.Render().find("cnx_test_pool_size 4\n"), std::string::npos);
  reg.RemoveCallback("cnx_test_pool_size");
  EXPECT_EQ(reg.Render(), "");
}

TEST(MetricsTest, NameValidation) {
  EXPECT_TRUE(IsValidMetricName("cnx_http_requests_total"));
  EXPECT_TRUE(IsValidMetricName("a:b_c9"));
  EXPECT_FALSE(IsValidMetricName("9abc"));
  EXPECT_FALSE(IsValidMetricName("a-b"));
  EXPECT_FALSE(IsValidMetricName(""));
  EXPECT_TRUE(IsValidLabelName("route"));
  EXPECT_FALSE(IsValidLabelName("__reserved"));
  EXPECT_FALSE(IsValidLabelName("a:b"));
}

TEST(MetricsTest, ConcurrentUpdatesAreNotLost) {
  MetricsRegistry reg;
  auto& fam = reg.AddCounterFamily("cnx_test_c_total", "C.", {"t"});
  auto& h = reg.AddHistogram("cnx_test_h", "H.", {1, 2});
  constexpr int kThreads = 4;
  constexpr int kPerThread = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        fam.WithLabels({(t % 2) ? "odd" : "even"}).Inc();
        h.Observe(i % 3);
        if (i % 5000 == 0) (void)reg.Render();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(fam.WithLabels({"odd"}).Value() + fam.WithLabels({"even"}).Value(), uint64_t{kThreads * kPerThread});
  EXPECT_EQ(h.Count(), uint64_t{kThreads * kPerThread});
  EXPECT_EQ(h.BucketCount(0) + h.BucketCount(1) + h.BucketCount(2), h.Count());
}

}  // namespace
}  // namespace cnx
