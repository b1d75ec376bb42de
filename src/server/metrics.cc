#include "server/metrics.h"

#include <array>
#include <mutex>

#include "fmt/format.h"
#include "observability/coredns_metrics.h"

namespace nld::server {
namespace {

const char* pluginName(AnswerPlugin p) {
  switch (p) {
    case AnswerPlugin::kCache:
      return "cache";
    case AnswerPlugin::kForward:
      return "forward";
    case AnswerPlugin::kHosts:
      return "hosts";
    case AnswerPlugin::kTemplate:
      return "template";
    default:
      return "";
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
      requests_(m.dns_requests),
      do_requests_(m.dns_do_requests),
      responses_(m.dns_responses),
      duration_(m.dns_request_duration),
      req_size_(m.dns_request_size),
      resp_size_(m.dns_response_size),
      panics_(m.panics),
      plugin_enabled_(m.plugin_enabled),
      cache_requests_(m.cache_requests),
      cache_hits_(m.cache_hits),
      cache_misses_(m.cache_misses),
      cache_prefetch_(m.cache_prefetch),
      cache_stale_(m.cache_served_stale),
      cache_drops_(m.cache_drops),
      cache_evictions_(m.cache_evictions),
      cache_entries_(m.cache_entries),
      malformed_(m.registry.counter(
          "nodelocaldns_malformed_queries_total",
          "Queries dropped or answered FORMERR because they could not be parsed.")),
      log_suppressed_(m.registry.counter(
          "nodelocaldns_log_lines_suppressed_total",
          "errors plugin lines not printed because of the per-worker rate limit.")) {
  malformed_.with();
  // Project-own counters (not in CoreDNS): the nodelocaldns_ prefix, like the one above.
  tcp_accept_paused_ =
      registry_
          .counter("nodelocaldns_tcp_accept_paused_total",
                   "Times a DNS TCP listener stopped accepting for a short while because "
                   "accept() failed for lack of file descriptors or kernel memory (EMFILE, "
                   "ENFILE, ENOBUFS, ENOMEM).")
          .with();
  tcp_evicted_ = registry_
                     .counter("nodelocaldns_tcp_connections_evicted_total",
                              "Idle DNS TCP client connections closed to make room for a new "
                              "one (connection table full, or out of file descriptors).")
                     .with();
  tcp_refused_ = registry_
                     .counter("nodelocaldns_tcp_connections_refused_total",
                              "DNS TCP client connections closed at accept because the "
                              "connection table was full of busy connections.")
                     .with();
  log_suppressed_.with();
}

template <typename Map, typename Family, typename MakeLabels>
typename Map::mapped_type& ServerMetrics::cached(Map& m, Family& fam, const Key& key,
                                                 MakeLabels&& make) {
  auto it = m.find(key);
  if (it == m.end()) it = m.emplace(key, fam.with(make())).first;
  return it->second;
}

size_t ServerMetrics::typeIndex(uint16_t qtype) {
  switch (qtype) {
    case 1:
      return 0;
    case 28:
      return 1;
    case 5:
      return 2;
    case 48:
      return 3;
    case 43:
      return 4;
    case 15:
      return 5;
    case 50:
      return 6;
    case 47:
      return 7;
    case 2:
      return 8;
    case 12:
      return 9;
    case 46:
      return 10;
    case 6:
      return 11;
    case 33:
      return 12;
    case 16:
      return 13;
    case 65:
      return 14;
    case 251:
      return 15;
    case 252:
      return 16;
    case 255:
      return 17;
    default:
      return 18;
  }
}

void ServerMetrics::onQuery(size_t worker, const std::string& server, const std::string& zone,
                            bool udp, int family, uint16_t qtype, bool dnssec_ok, size_t req_size,
                            uint8_t rcode, AnswerPlugin plugin, size_t resp_size, double seconds) {
  PerWorker& w = workers_[worker];
  if (w.last_zone_server != &server || w.last_zone != &zone) {
    auto& slot = w.zones[Key{&requests_, &server, &zone, 0}];
    if (!slot) slot = std::make_unique<ZoneCounters>();
    w.last_zone_server = &server;
    w.last_zone = &zone;
    w.last_zone_counters = slot.get();
  }
  ZoneCounters& z = *w.last_zone_counters;
  const char* proto = udp ? "udp" : "tcp";
  const size_t fam = family == 2 ? 2 : 1;
  const size_t ti = typeIndex(qtype);
  const size_t ri = (udp ? 1 : 0) * 3 * kTypes + fam * kTypes + ti;
  if (!z.requests_set[ri]) {
    z.requests[ri] = requests_.with(
        {server, zone, "", proto, std::to_string(fam), std::string(typeLabel(qtype))});
    z.requests_set[ri] = true;
  }
  z.requests[ri].inc();
  if (dnssec_ok) {
    if (!z.do_set) {
      z.do_requests = do_requests_.with({server, zone, ""});
      z.do_set = true;
    }
    z.do_requests.inc();
  }
  if (rcode < 16) {
    const size_t xi = size_t(rcode) * kAnswerPlugins + size_t(plugin);
    if (!z.responses_set[xi]) {
      z.responses[xi] = responses_.with({server, zone, "", rcodeLabel(rcode), pluginName(plugin)});
      z.responses_set[xi] = true;
    }
    z.responses[xi].inc();
  } else {
    cached(
        workers_[worker].counters, responses_,
        Key{&responses_, &server, &zone, uint64_t(rcode) | (uint64_t(plugin) << 8)},
        [&] {
          return std::vector<std::string>{server, zone, "", rcodeLabel(rcode), pluginName(plugin)};
        })
        .inc();
  }
  if (!z.hist_set) {
    z.duration = duration_.with({server, zone, ""});
    z.req_size[0] = req_size_.with({server, zone, "", "tcp"});
    z.req_size[1] = req_size_.with({server, zone, "", "udp"});
    z.resp_size[0] = resp_size_.with({server, zone, "", "tcp"});
    z.resp_size[1] = resp_size_.with({server, zone, "", "udp"});
    z.hist_set = true;
  }
  z.duration.observe(seconds);
  z.req_size[udp ? 1 : 0].observe(static_cast<double>(req_size));
  z.resp_size[udp ? 1 : 0].observe(static_cast<double>(resp_size));
}

void ServerMetrics::onCacheLookup(size_t worker, const std::string& server,
                                  const std::string& zones, const CacheEvent& e) {
  PerWorker& w = workers_[worker];
  if (w.last_cache_server != &server || w.last_cache_zones != &zones) {
    auto& slot = w.caches[Key{&cache_requests_, &server, &zones, 0}];
    if (!slot) {
      slot = std::make_unique<CacheCounters>();
      slot->requests = cache_requests_.with({server, zones, ""});
      slot->hits_success = cache_hits_.with({server, zones, "", "success"});
      slot->hits_denial = cache_hits_.with({server, zones, "", "denial"});
      slot->misses = cache_misses_.with({server, zones, ""});
      slot->stale = cache_stale_.with({server, zones, ""});
      slot->prefetch = cache_prefetch_.with({server, zones, ""});
    }
    w.last_cache_server = &server;
    w.last_cache_zones = &zones;
    w.last_cache_counters = slot.get();
  }
  CacheCounters& c = *w.last_cache_counters;
  c.requests.inc();
  if (e.hit) {
    (e.denial ? c.hits_denial : c.hits_success).inc();
  } else {
    c.misses.inc();
  }
  if (e.stale) c.stale.inc();
  if (e.prefetch) c.prefetch.inc();
}

void ServerMetrics::onCacheEntries(size_t worker, const std::string& server,
                                   const std::string& zones, bool denial, double delta) {
  // The gauge's cell is a shared atomic; the handle is this worker's (found by the label
  // strings' addresses), so a miss's insert builds no label vector.
  const Key key{&cache_entries_, &server, &zones, denial ? 1u : 0u};
  cached(workers_[worker].gauges, cache_entries_, key, [&] {
    return std::vector<std::string>{server, zones, "", denial ? "denial" : "success"};
  }).add(delta);
}

void ServerMetrics::forgetHandles(size_t worker) { workers_[worker] = PerWorker{}; }

void ServerMetrics::onCacheEvictions(size_t worker, const std::string& server,
                                     const std::string& zones, bool denial, uint64_t n) {
  const Key key{&cache_evictions_, &server, &zones, denial ? 1u : 0u};
  cached(workers_[worker].counters, cache_evictions_, key, [&] {
    return std::vector<std::string>{server, zones, "", denial ? "denial" : "success"};
  }).add(n);
}

void ServerMetrics::onCacheDrop(size_t worker, const std::string& server,
                                const std::string& zones) {
  cached(workers_[worker].counters, cache_drops_, Key{&cache_drops_, &server, &zones, 0}, [&] {
    return std::vector<std::string>{server, zones, ""};
  }).inc();
}

void ServerMetrics::onPanic() { panics_.with().inc(); }
void ServerMetrics::onMalformed() { malformed_.with().inc(); }

void ServerMetrics::onLogSuppressed(uint64_t n) { log_suppressed_.with().add(n); }

void ServerMetrics::enablePlugin(const std::string& server, const std::string& zone,
                                 const std::string& name) {
  plugin_enabled_.with({server, zone, "", name}).set(1);
}

namespace {

class ForwardMetrics final : public upstream::ForwardObserver {
 public:
  ForwardMetrics(observability::CorednsMetrics& m, std::vector<std::string> to)
      : to_(std::move(to)),
        duration_(m.proxy_request_duration),
        hc_failures_(m.proxy_healthcheck_failures),
        conn_hits_(m.proxy_conn_cache_hits),
        conn_misses_(m.proxy_conn_cache_misses),
        broken_(m.forward_healthcheck_broken),
        rejects_(m.forward_max_concurrent_rejects),
        coalesce_rejects_(m.registry.counter(
            "nodelocaldns_forward_coalesce_rejects_total",
            "Queries refused because the identical in-flight upstream query they would have "
            "joined already had the maximum number of waiters.")) {
    broken_.with();
    rejects_.with();
    coalesce_rejects_.with();
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
    if (upstream >= 16 || (proto != "udp" && proto != "tcp")) {
      (hit ? conn_hits_ : conn_misses_)
          .with({"forward", to_[size_t(upstream)], std::string(proto)})
          .inc();
      return;
    }
    // Called once per upstream exchange: the handle is looked up (locks, builds labels) once.
    auto& slot = conn_cache_[size_t(upstream)][(proto == "tcp" ? 2 : 0) + (hit ? 1 : 0)];
    std::call_once(slot.once, [&] {
      slot.c = (hit ? conn_hits_ : conn_misses_)
                   .with({"forward", to_[size_t(upstream)], std::string(proto)});
    });
    slot.c.inc();
  }
  void onAllUpstreamsDown() override { broken_.with().inc(); }
  void onMaxConcurrentReject() override { rejects_.with().inc(); }
  void onCoalesceReject() override { coalesce_rejects_.with().inc(); }

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
  observability::CounterFamily& coalesce_rejects_;
  std::array<std::array<Slot, 16>, 16> cache_;
  struct CounterSlot {
    std::once_flag once;
    observability::Counter c;
  };
  std::array<std::array<CounterSlot, 4>, 16> conn_cache_;  // [upstream][tcp*2 + hit]
};

}  // namespace

std::unique_ptr<upstream::ForwardObserver> ServerMetrics::forwardObserver(
    std::vector<std::string> to_labels) {
  return std::make_unique<ForwardMetrics>(catalogue_, std::move(to_labels));
}

}  // namespace nld::server
