#include "observability/metrics.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <condition_variable>
#include <ctime>
#include <limits>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace nld::observability {
namespace {

TEST(Metrics, CountersFromFourThreadsSumExactly) {
  Registry r;
  Counter c = r.counter("test_total", "help", {"k"}).with({"v"});
  constexpr int kThreads = 4;
  constexpr int kPerThread = 100000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([c]() mutable {
      for (int i = 0; i < kPerThread; ++i) {
        c.inc();
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  // All four threads have exited: their shards were folded into the retired accumulator.
  EXPECT_EQ(c.value(), static_cast<uint64_t>(kThreads) * kPerThread);
  EXPECT_NE(r.render().find("test_total{k=\"v\"} 400000\n"), std::string::npos) << r.render();
}

TEST(Metrics, ConcurrentScrapeSeesMonotonicValues) {
  Registry r;
  Counter c = r.counter("mono_total", "help").with();
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int i = 0; i < 200000; ++i) {
      c.add(2);
    }
    done = true;
  });
  uint64_t last = 0;
  int scrapes = 0;
  while (!done.load() && scrapes < 100000) {
    const uint64_t v = c.value();
    ASSERT_GE(v, last);
    ASSERT_EQ(v % 2, 0u);
    last = v;
    ++scrapes;
  }
  writer.join();
  EXPECT_EQ(c.value(), 400000u);
}

TEST(Metrics, ExitedThreadKeepsCountsAndLiveThreadIsAddedToThem) {
  Registry r;
  Counter c = r.counter("exit_total", "help").with();
  std::thread([c]() mutable { c.add(5); }).join();
  EXPECT_EQ(c.value(), 5u);
  c.add(3);  // this thread's own shard
  EXPECT_EQ(c.value(), 8u);
  std::thread([c]() mutable { c.add(10); }).join();
  EXPECT_EQ(c.value(), 18u);
}

TEST(Metrics, TwoRegistriesOnOneThreadAreIndependent) {
  Registry a;
  Registry b;
  Counter ca = a.counter("x_total", "h").with();
  Counter cb = b.counter("x_total", "h").with();
  ca.inc();
  cb.add(7);
  ca.inc();
  EXPECT_EQ(ca.value(), 2u);
  EXPECT_EQ(cb.value(), 7u);
}

TEST(Metrics, ThreadOutlivingItsRegistryIsSafe) {
  auto r = std::make_unique<Registry>();
  Counter c = r->counter("gone_total", "h").with();
  std::mutex mu;
  std::condition_variable cv;
  bool used = false;
  bool destroyed = false;
  std::thread t([&] {
    c.inc();
    std::unique_lock lock(mu);
    used = true;
    cv.notify_all();
    cv.wait(lock, [&] { return destroyed; });
  });
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return used; });
  }
  EXPECT_EQ(c.value(), 1u);
  r.reset();  // the thread still holds a shard of it; its exit must not touch freed memory
  {
    std::lock_guard lock(mu);
    destroyed = true;
  }
  cv.notify_all();
  t.join();
}

TEST(Metrics, ManySeriesSpanSeveralChunks) {
  Registry r;
  auto& fam = r.counter("many_total", "h", {"i"});
  std::vector<Counter> cs;
  for (int i = 0; i < 2000; ++i) {
    cs.push_back(fam.with({std::to_string(i)}));
  }
  std::thread([&cs] {
    for (size_t i = 0; i < cs.size(); ++i) {
      cs[i].add(i);
    }
  }).join();
  for (size_t i = 0; i < cs.size(); ++i) {
    ASSERT_EQ(cs[i].value(), i);
  }
}

TEST(Metrics, HistogramBucketsCumulativeCountAndSum) {
  Registry r;
  Histogram h = r.histogram("lat_seconds", "Latency.", {}, {0.1, 0.5, 1}).with();
  for (double v : {0.0625, 0.09375, 0.5, 0.75, 2.0, 3.0}) {  // 0.5: le is inclusive
    h.observe(v);
  }
  std::thread([h]() mutable { h.observe(0.25); }).join();
  EXPECT_EQ(h.cumulativeCounts(), (std::vector<uint64_t>{2, 4, 5, 7}));
  EXPECT_EQ(h.count(), 7u);
  EXPECT_EQ(h.sum(), 6.65625);  // exactly representable
  const std::string text = r.render();
  EXPECT_NE(text.find("lat_seconds_bucket{le=\"0.1\"} 2\n"
                      "lat_seconds_bucket{le=\"0.5\"} 4\n"
                      "lat_seconds_bucket{le=\"1\"} 5\n"
                      "lat_seconds_bucket{le=\"+Inf\"} 7\n"
                      "lat_seconds_sum 6.65625\n"
                      "lat_seconds_count 7\n"),
            std::string::npos)
      << text;
}

TEST(Metrics, HistogramNaNGoesToInf) {
  Registry r;
  Histogram h = r.histogram("n_seconds", "h", {}, {1}).with();
  h.observe(std::numeric_limits<double>::quiet_NaN());
  EXPECT_EQ(h.cumulativeCounts(), (std::vector<uint64_t>{0, 1}));
}

TEST(Metrics, RenderGolden) {
  Registry r;
  auto& req = r.counter("app_requests_total", "Requests by code.", {"code", "app"});
  req.with({"200", "web"}).add(3);
  req.with({"500", "api"});  // pre-initialised: rendered as 0
  req.with({"200", "api"}).inc();
  r.gauge("app_temperature", "Temp.\nSecond line \\ backslash").with().set(-2.5);
  r.gauge("app_build_info", "Build.", {"version"}).with({"1.0"}).set(1);
  r.counter("app_unused_total", "No series: not rendered.", {"x"});
  Histogram h = r.histogram("app_latency_seconds", "Latency.", {"z"}, {0.25, 1}).with({"a"});
  h.observe(0.5);
  r.gauge("app_callback", "Callback.").withCallback({}, [] { return 1234567.0; });

  const std::string expected =
      "# HELP app_build_info Build.\n"
      "# TYPE app_build_info gauge\n"
      "app_build_info{version=\"1.0\"} 1\n"
      "# HELP app_callback Callback.\n"
      "# TYPE app_callback gauge\n"
      "app_callback 1.234567e+06\n"
      "# HELP app_latency_seconds Latency.\n"
      "# TYPE app_latency_seconds histogram\n"
      "app_latency_seconds_bucket{z=\"a\",le=\"0.25\"} 0\n"
      "app_latency_seconds_bucket{z=\"a\",le=\"1\"} 1\n"
      "app_latency_seconds_bucket{z=\"a\",le=\"+Inf\"} 1\n"
      "app_latency_seconds_sum{z=\"a\"} 0.5\n"
      "app_latency_seconds_count{z=\"a\"} 1\n"
      "# HELP app_requests_total Requests by code.\n"
      "# TYPE app_requests_total counter\n"
      "app_requests_total{app=\"api\",code=\"200\"} 1\n"
      "app_requests_total{app=\"api\",code=\"500\"} 0\n"
      "app_requests_total{app=\"web\",code=\"200\"} 3\n"
      "# HELP app_temperature Temp.\\nSecond line \\\\ backslash\n"
      "# TYPE app_temperature gauge\n"
      "app_temperature -2.5\n";
  EXPECT_EQ(r.render(), expected);
}

TEST(Metrics, LabelValueEscaping) {
  Registry r;
  r.counter("esc_total", "h", {"v"}).with({"a\"b\\c\nd"}).inc();
  EXPECT_NE(r.render().find("esc_total{v=\"a\\\"b\\\\c\\nd\"} 1\n"), std::string::npos)
      << r.render();
  EXPECT_EQ(escapeLabelValue("plain"), "plain");
}

TEST(Metrics, FormatValueMatchesGo) {
  EXPECT_EQ(formatValue(0), "0");
  EXPECT_EQ(formatValue(1), "1");
  EXPECT_EQ(formatValue(-1), "-1");
  EXPECT_EQ(formatValue(0.00025), "0.00025");
  EXPECT_EQ(formatValue(0.0000125), "1.25e-05");
  EXPECT_EQ(formatValue(8.192), "8.192");
  EXPECT_EQ(formatValue(64000), "64000");
  EXPECT_EQ(formatValue(123456), "123456");
  EXPECT_EQ(formatValue(1000000), "1e+06");
  EXPECT_EQ(formatValue(1234567), "1.234567e+06");
  EXPECT_EQ(formatValue(0.1), "0.1");
  EXPECT_EQ(formatValue(100.5), "100.5");
  EXPECT_EQ(formatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(formatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(formatValue(std::numeric_limits<double>::quiet_NaN()), "NaN");
}

TEST(Metrics, ReRegistrationReturnsSameFamilyOrThrows) {
  Registry r;
  auto& a = r.counter("dup_total", "h", {"x"});
  auto& b = r.counter("dup_total", "other help", {"x"});
  EXPECT_EQ(&a, &b);
  EXPECT_THROW(r.counter("dup_total", "h", {"y"}), std::invalid_argument);
  EXPECT_THROW(r.gauge("dup_total", "h", {"x"}), std::invalid_argument);
  auto& h = r.histogram("dup_seconds", "h", {}, {1, 2});
  EXPECT_EQ(&h, &r.histogram("dup_seconds", "h", {}, {1, 2}));
  EXPECT_THROW(r.histogram("dup_seconds", "h", {}, {1, 3}), std::invalid_argument);
}

TEST(Metrics, InvalidInputIsRejectedClearly) {
  Registry r;
  EXPECT_THROW(r.counter("bad name", "h"), std::invalid_argument);
  EXPECT_THROW(r.counter("9lives", "h"), std::invalid_argument);
  EXPECT_THROW(r.counter("ok_total", "h", {"__reserved"}), std::invalid_argument);
  EXPECT_THROW(r.counter("ok_total", "h", {"a", "a"}), std::invalid_argument);
  EXPECT_THROW(r.histogram("h_seconds", "h", {"le"}, {1}), std::invalid_argument);
  EXPECT_THROW(r.histogram("h2_seconds", "h", {}, {2, 1}), std::invalid_argument);
  auto& fam = r.counter("ok_total", "h", {"a", "b"});
  try {
    fam.with({"only-one"});
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("expected 2 label values"), std::string::npos);
  }
}

TEST(Metrics, GaugesAndCallbacks) {
  Registry r;
  Gauge g = r.gauge("g", "h").with();
  g.set(3);
  g.add(1.5);
  g.dec();
  EXPECT_DOUBLE_EQ(g.value(), 3.5);
  int calls = 0;
  r.counter("cb_total", "h").withCallback({}, [&calls] { return static_cast<double>(++calls); });
  EXPECT_NE(r.render().find("cb_total 1\n"), std::string::npos);
  EXPECT_NE(r.render().find("cb_total 2\n"), std::string::npos);
  EXPECT_THROW(r.counter("cb_total", "h").with(), std::invalid_argument);
}

TEST(Metrics, DetachedHandlesAreHarmless) {
  Counter c;
  c.inc();
  EXPECT_EQ(c.value(), 0u);
  Histogram h;
  h.observe(1);
  EXPECT_EQ(h.count(), 0u);
  Gauge g;
  g.set(1);
  EXPECT_EQ(g.value(), 0.0);
}

TEST(Metrics, ProcessCollector) {
  Registry r;
  registerProcessCollector(r);
  registerProcessCollector(r);  // idempotent
  const std::string text = r.render();
  for (const char* name : {"process_cpu_seconds_total", "process_resident_memory_bytes",
                           "process_virtual_memory_bytes", "process_open_fds", "process_max_fds",
                           "process_start_time_seconds", "process_virtual_memory_max_bytes"}) {
    EXPECT_NE(text.find(std::string("\n") + name + " "), std::string::npos) << name << "\n" << text;
  }
  EXPECT_NE(text.find("# TYPE process_cpu_seconds_total counter\n"), std::string::npos);
  // Sanity of values: positive RSS, start time after 2020 and not in the future.
  auto value = [&text](const std::string& name) {
    const auto pos = text.find("\n" + name + " ");
    return std::stod(text.substr(pos + name.size() + 2));
  };
  EXPECT_GT(value("process_resident_memory_bytes"), 0);
  EXPECT_GT(value("process_open_fds"), 2);
  EXPECT_GT(value("process_max_fds"), 0);
  const double start = value("process_start_time_seconds");
  EXPECT_GT(start, 1577836800.0);
  EXPECT_LE(start, static_cast<double>(std::time(nullptr)) + 1);
  EXPECT_FALSE(std::isnan(value("process_cpu_seconds_total")));
}

TEST(Metrics, DefaultRegistryIsASingleton) { EXPECT_EQ(&defaultRegistry(), &defaultRegistry()); }

}  // namespace
}  // namespace nld::observability
