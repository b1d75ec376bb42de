#include "server/metrics.h"

#include <array>
#include <mutex>

#include "fmt/format.h"
#include "observability/coredns_metrics.h"

namespace nld::server {
namespace {

const char* pluginName(AnswerPlugin p) {
  switch (p) {
    case AnswerPlugin::Cache: return "cache";
    case AnswerPlugin::Forward: return "forward";
    default: return "";
  }
}

}  // namespace

std::string_view typeLabel(uint16_t qtype) {
  return observability::CorednsMetrics::typeLabel(qtype);
}
std::string rcodeLabel(uint8_t rcode) { return observability::CorednsMetrics::rcodeLabel(rcode); }

ServerMetrics::ServerMetrics(observability::CorednsMetrics& m, size_t workers)
    : registry_(m.registry),
      catalogue_(m),
      workers_(workers),
      requests_(m.dnsRequests),
      do_requests_(m.dnsDoRequests),
      responses_(m.dnsResponses),
      duration_(m.dnsRequestDuration),
      req_size_(m.dnsRequestSize),
      resp_size_(m.dnsResponseSize),
      panics_(m.panics),
      plugin_enabled_(m.pluginEnabled),
      cache_requests_(m.cacheRequests),
      cache_hits_(m.cacheHits),
      cache_misses_(m.cacheMisses),
      cache_prefetch_(m.cachePrefetch),
      cache_stale_(m.cacheServedStale),
      cache_drops_(m.cacheDrops),
      cache_evictions_(m.cacheEvictions),
      cache_entries_(m.cacheEntries),
      malformed_(m.registry.counter(
          "nodelocaldns_malformed_queries_total",
          "Queries dropped or answered FORMERR because they could not be parsed.")) {
  malformed_.with();
}

template <typename MakeLabels>
observability::Counter& ServerMetrics::counter(size_t worker, observability::CounterFamily& fam,
                                               const Key& key, MakeLabels&& make) {
  auto& m = workers_[worker].counters;
  auto it = m.find(key);
  if (it == m.end()) it = m.emplace(key, fam.with(make())).first;
  return it->second;
}

template <typename MakeLabels>
observability::Histogram& ServerMetrics::histogram(size_t worker,
                                                   observability::HistogramFamily& fam,
                                                   const Key& key, MakeLabels&& make) {
  auto& m = workers_[worker].histograms;
  auto it = m.find(key);
  if (it == m.end()) it = m.emplace(key, fam.with(make())).first;
  return it->second;
}

void ServerMetrics::onQuery(size_t worker, const std::string& server, const std::string& zone,
                            bool udp, int family, uint16_t qtype, bool dnssec_ok,
                            size_t req_size, uint8_t rcode, AnswerPlugin plugin,
                            size_t resp_size, double seconds) {
  const std::string_view tl = typeLabel(qtype);
  const char* proto = udp ? "udp" : "tcp";
  uint64_t small = (udp ? 1u : 0u) | (uint64_t(family) << 1) | (uint64_t(qtype) << 8);
  counter(worker, requests_, Key{&requests_, &server, &zone, tl == "other" ? 0xffff00 : small},
          [&] {
            return std::vector<std::string>{server, zone, "", proto, std::to_string(family),
                                            std::string(tl)};
          })
      .inc();
  if (dnssec_ok) {
    counter(worker, do_requests_, Key{&do_requests_, &server, &zone, 0},
            [&] { return std::vector<std::string>{server, zone, ""}; })
        .inc();
  }
  counter(worker, responses_,
          Key{&responses_, &server, &zone, uint64_t(rcode) | (uint64_t(plugin) << 8)}, [&] {
            return std::vector<std::string>{server, zone, "", rcodeLabel(rcode),
                                            pluginName(plugin)};
          })
      .inc();
  histogram(worker, duration_, Key{&duration_, &server, &zone, 0},
            [&] { return std::vector<std::string>{server, zone, ""}; })
      .observe(seconds);
  histogram(worker, req_size_, Key{&req_size_, &server, &zone, udp ? 1u : 0u},
            [&] { return std::vector<std::string>{server, zone, "", proto}; })
      .observe(static_cast<double>(req_size));
  histogram(worker, resp_size_, Key{&resp_size_, &server, &zone, udp ? 1u : 0u},
            [&] { return std::vector<std::string>{server, zone, "", proto}; })
      .observe(static_cast<double>(resp_size));
}

void ServerMetrics::onCacheLookup(size_t worker, const std::string& server,
                                  const std::string& zones, const CacheEvent& e) {
  auto three = [&] { return std::vector<std::string>{server, zones, ""}; };
  counter(worker, cache_requests_, Key{&cache_requests_, &server, &zones, 0}, three).inc();
  if (e.hit) {
    counter(worker, cache_hits_, Key{&cache_hits_, &server, &zones, e.denial ? 1u : 0u}, [&] {
      return std::vector<std::string>{server, zones, "", e.denial ? "denial" : "success"};
    }).inc();
  } else {
    counter(worker, cache_misses_, Key{&cache_misses_, &server, &zones, 0}, three).inc();
  }
  if (e.stale) counter(worker, cache_stale_, Key{&cache_stale_, &server, &zones, 0}, three).inc();
  if (e.prefetch) {
    counter(worker, cache_prefetch_, Key{&cache_prefetch_, &server, &zones, 0}, three).inc();
  }
}

void ServerMetrics::onCacheEntries(const std::string& server, const std::string& zones,
                                   bool denial, double delta) {
  // Gauges are shared atomics; entries change only on inserts/evictions (cache misses).
  cache_entries_.with({server, zones, "", denial ? "denial" : "success"}).add(delta);
}

void ServerMetrics::onCacheEvictions(size_t worker, const std::string& server,
                                     const std::string& zones, bool denial, uint64_t n) {
  counter(worker, cache_evictions_, Key{&cache_evictions_, &server, &zones, denial ? 1u : 0u},
          [&] {
            return std::vector<std::string>{server, zones, "", denial ? "denial" : "success"};
          })
      .add(n);
}

void ServerMetrics::onCacheDrop(size_t worker, const std::string& server,
                                const std::string& zones) {
  counter(worker, cache_drops_, Key{&cache_drops_, &server, &zones, 0},
          [&] { return std::vector<std::string>{server, zones, ""}; })
      .inc();
}

void ServerMetrics::onPanic() { panics_.with().inc(); }
void ServerMetrics::onMalformed() { malformed_.with().inc(); }

void ServerMetrics::enablePlugin(const std::string& server, const std::string& zone,
                                 const std::string& name) {
  plugin_enabled_.with({server, zone, "", name}).set(1);
}

namespace {

class ForwardMetrics final : public upstream::ForwardObserver {
 public:
  ForwardMetrics(observability::CorednsMetrics& m, std::vector<std::string> to)
      : to_(std::move(to)),
        duration_(m.proxyRequestDuration),
        hc_failures_(m.proxyHealthcheckFailures),
        conn_hits_(m.proxyConnCacheHits),
        conn_misses_(m.proxyConnCacheMisses),
        broken_(m.forwardHealthcheckBroken),
        rejects_(m.forwardMaxConcurrentRejects) {
    broken_.with();
    rejects_.with();
    for (const auto& t : to_) hc_failures_.with({"forward", t});
  }

  // upstream::ForwardObserver (called from worker loops and the health-check thread)
  void onExchange(int upstream, uint8_t rcode, double seconds) override {
    if (upstream < 0 || size_t(upstream) >= to_.size() || upstream >= 16) return;
    // Handle creation locks; exchanges are misses, so a per-call with() is acceptable but we
    // still cache the common rcodes.
    auto& slot = cache_[size_t(upstream)][rcode < 16 ? rcode : 15];
    std::call_once(slot.once, [&] {
      slot.h = duration_.with({"forward", to_[size_t(upstream)], rcodeLabel(rcode)});
    });
    if (rcode < 15) {
      slot.h.observe(seconds);
    } else {
      duration_.with({"forward", to_[size_t(upstream)], rcodeLabel(rcode)}).observe(seconds);
    }
  }
  void onHealthcheckFailure(int upstream) override {
    if (upstream < 0 || size_t(upstream) >= to_.size()) return;
    hc_failures_.with({"forward", to_[size_t(upstream)]}).inc();
  }
  void onConnCache(int upstream, std::string_view proto, bool hit) override {
    if (upstream < 0 || size_t(upstream) >= to_.size()) return;
    (hit ? conn_hits_ : conn_misses_)
        .with({"forward", to_[size_t(upstream)], std::string(proto)})
        .inc();
  }
  void onAllUpstreamsDown() override { broken_.with().inc(); }
  void onMaxConcurrentReject() override { rejects_.with().inc(); }

 private:
  struct Slot {
    std::once_flag once;
    observability::Histogram h;
  };
  std::vector<std::string> to_;
  observability::HistogramFamily& duration_;
  observability::CounterFamily& hc_failures_;
  observability::CounterFamily& conn_hits_;
  observability::CounterFamily& conn_misses_;
  observability::CounterFamily& broken_;
  observability::CounterFamily& rejects_;
  std::array<std::array<Slot, 16>, 16> cache_;
};

}  // namespace

std::unique_ptr<upstream::ForwardObserver> ServerMetrics::forwardObserver(
    std::vector<std::string> to_labels) {
  return std::make_unique<ForwardMetrics>(catalogue_, std::move(to_labels));
}

}  // namespace nld::server
