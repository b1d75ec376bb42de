#include "plan/plan.h"

#include <algorithm>
#include <stdexcept>

#include "cache/snapshot.h"
#include "common/log.h"
#include "common/random.h"
#include "fmt/format.h"

namespace nld::plan {
namespace {

dns::Name nameOrThrow(const std::string& text) {
  auto n = dns::Name::fromString(text);
  if (!n) throw std::runtime_error(fmt::format("invalid zone name '{}'", text));
  n->toLower();
  return *n;
}

std::string serverLabel(const std::string& address, uint16_t port) {
  if (address.find(':') != std::string::npos) return fmt::format("dns://[{}]:{}", address, port);
  return fmt::format("dns://{}:{}", address, port);
}

/// Runs `fn`, prefixing what it throws with the block's "file:line" (the block's first line; a
/// Corefile error is found there, whatever directive inside the block it names).
template <typename F>
auto atBlock(const config::ServerBlock& sb, F&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("{}:{}: {}", sb.file, sb.line, e.what()));
  }
}

std::string blockCacheIdentity(const BlockPlan& b, const config::ServerBlock& sb) {
  std::string id = "zones=";
  for (const auto& k : sb.keys) id += fmt::format("{}:{},", k.zone, k.port);
  id += " bind=";
  for (const auto& a : sb.bind) id += a + ",";
  id += " cache_zones=";
  for (const auto& z : b.cache_zones) id += z.toString() + ",";
  id += " " + cache::settingsFingerprint(*b.cache);
  return id;
}

}  // namespace

void ZoneTable::add(const dns::Name& zone, std::string text, size_t block) {
  Entry e;
  e.zone = zone;
  e.zone.toLower();
  e.text = std::move(text);
  e.block = block;
  e.labels = e.zone.labelCount();
  entries_.push_back(std::move(e));
  std::stable_sort(entries_.begin(), entries_.end(),
                   [](const Entry& a, const Entry& b) { return a.labels > b.labels; });
}

const ZoneTable::Entry* ZoneTable::match(const dns::Name& qname, uint16_t qtype) const {
  if (qtype == 43 /* DS */) {
    // The parent side answers DS: prefer the shortest matching non-root zone.
    const Entry* best = nullptr;
    for (const auto& e : entries_) {
      if (e.labels == 0) continue;
      if (qname.isSubdomainOf(e.zone)) best = &e;
    }
    if (best != nullptr) return best;
  }
  for (const auto& e : entries_) {
    if (qname.isSubdomainOf(e.zone)) return &e;  // sorted longest first
  }
  return nullptr;
}

upstream::Settings toUpstreamSettings(const config::ForwardConfig& f) {
  // Parsed by the Corefile reader (CoreDNS ≥ 1.11.4 syntax) but not implemented by our forwarder:
  // refuse loudly instead of silently ignoring them.
  if (!f.next_rcodes.empty()) {
    throw std::runtime_error("plugin/forward: 'next' is not supported by nodelocaldns");
  }
  if (!f.failover_rcodes.empty()) {
    throw std::runtime_error("plugin/forward: 'failover' is not supported by nodelocaldns");
  }
  upstream::Settings s;
  for (const auto& t : f.to) s.to.push_back(upstream::Upstream{t.ip, t.port, t.label()});
  s.force_tcp = f.force_tcp;
  s.prefer_udp = f.prefer_udp;
  s.expire = f.expire;
  s.max_fails = f.max_fails;
  s.max_connect_attempts = f.max_connect_attempts;
  switch (f.policy) {
    case config::Policy::kRandom:
      s.policy = upstream::Settings::Policy::kRandom;
      break;
    case config::Policy::kRoundRobin:
      s.policy = upstream::Settings::Policy::kRoundRobin;
      break;
    case config::Policy::kSequential:
      s.policy = upstream::Settings::Policy::kSequential;
      break;
  }
  s.health_check = f.health_check;
  s.health_check_rd = f.health_check_recursion_desired;
  s.health_check_name = nameOrThrow(f.health_check_domain);
  s.max_concurrent = f.max_concurrent != 0 ? f.max_concurrent : kDefaultMaxConcurrent;
  s.failfast_all_unhealthy = f.failfast_all_unhealthy;
  return s;
}

cache::Settings toCacheSettings(const config::CacheConfig& c, size_t partitions) {
  cache::Settings s;
  s.success_capacity = c.success_capacity;
  s.denial_capacity = c.denial_capacity;
  s.success_max_ttl = c.success_max_ttl;
  s.success_min_ttl = c.success_min_ttl;
  s.denial_max_ttl = c.denial_max_ttl;
  s.denial_min_ttl = c.denial_min_ttl;
  s.servfail_ttl = static_cast<uint32_t>(c.servfail_ttl.count());
  s.prefetch_amount = c.prefetch_amount;
  s.prefetch_window_s = static_cast<uint32_t>(c.prefetch_duration.count());
  s.prefetch_percentage = c.prefetch_percentage;
  if (c.serve_stale) s.serve_stale_s = static_cast<uint32_t>(c.serve_stale->count());
  s.serve_stale_verify = c.serve_stale_verify;
  s.keepttl = c.keepttl;
  for (const auto& z : c.disable_success) s.disable_success.push_back(nameOrThrow(z));
  for (const auto& z : c.disable_denial) s.disable_denial.push_back(nameOrThrow(z));
  s.partitions = std::max<size_t>(1, partitions);
  return s;
}

std::shared_ptr<const Plan> buildPlan(config::Corefile corefile, size_t workers,
                                      ForwardObservers* observers) {
  auto plan = std::make_shared<Plan>();
  plan->corefile = std::move(corefile);
  plan->workers = std::max<size_t>(1, workers);
  const auto& cf = plan->corefile;

  plan->listeners.reserve(cf.listeners.size());
  for (const auto& l : cf.listeners) {
    ListenerPlan lp;
    lp.address = l.address;
    lp.port = l.port;
    lp.server_label = serverLabel(l.address, l.port);
    for (const auto& [zone, block] : l.zones) {
      // A copy: clang 14 (the fuzz build) cannot capture a structured binding in a lambda.
      const std::string& zone_text = zone;
      lp.zones.add(atBlock(cf.blocks[block], [&] { return nameOrThrow(zone_text); }), zone, block);
      if (const auto& t = cf.blocks[block].timeouts) {
        if (t->read) lp.tcp_read = t->read;
        if (t->idle) lp.tcp_idle = t->idle;
      }
    }
    plan->listeners.push_back(std::move(lp));
  }

  plan->blocks.resize(cf.blocks.size());
  for (size_t i = 0; i < cf.blocks.size(); ++i) {
    const config::ServerBlock& sb = cf.blocks[i];
    BlockPlan& b = plan->blocks[i];
    b.cfg = &sb;
    for (const auto& k : sb.keys) {
      b.zones.push_back(atBlock(sb, [&] { return nameOrThrow(k.zone); }));
      if (!b.zones_label.empty()) b.zones_label += ',';
      b.zones_label += k.zone;
    }
    for (const auto& lp : plan->listeners) {
      bool serves = false;
      for (const auto& e : lp.zones.entries()) serves |= e.block == i;
      if (serves) {
        b.server_label = lp.server_label;
        break;
      }
    }
    b.errors = sb.errors;
    if (sb.errors) {
      b.errors_plugin =
          atBlock(sb, [&] { return std::make_shared<plugin::ErrorsPlugin>(sb.errors_config); });
    }
    b.log = sb.log;
    for (const auto& lc : sb.logs) {
      if (lc.format != config::kCommonLogFormat ||
          !(lc.classes.size() == 1 && lc.classes[0] == "all") ||
          !(lc.names.size() == 1 && lc.names[0] == ".")) {
        log::warn(
            "{}:{}: plugin/log: custom names, formats and classes are not implemented by "
            "nodelocaldns; every query of the block is logged in the common format",
            sb.file, sb.line);
      }
    }
    b.metrics = sb.prometheus.has_value();
    b.bufsize = sb.bufsize.value_or(0);
    b.loadbalance = sb.loadbalance;
    if (!sb.templates.empty()) {
      b.templates =
          atBlock(sb, [&] { return std::make_shared<const plugin::TemplatePlugin>(sb.templates); });
    }
    if (sb.hosts) {
      // Located by the plugin itself, at the `hosts` line (its errors and warnings name it).
      b.hosts = std::make_shared<plugin::HostsPlugin>(
          *sb.hosts, fmt::format("{}:{}", sb.file, sb.hosts->line));
    }
    if (sb.timeouts && sb.timeouts->write) {
      log::warn(
          "{}:{}: plugin/timeouts: 'write' has no deadline of its own in node-cache; a TCP "
          "client that does not read its answers is closed by the idle deadline and the "
          "write-buffer bound",
          sb.file, sb.line);
    }
    if (!sb.rewrites.empty() && (sb.hosts || !sb.templates.empty())) {
      // CoreDNS runs rewrite before template and hosts; ours hands the rewritten question to
      // forward only. Refused loudly rather than answered from the client's name.
      throw std::runtime_error(fmt::format(
          "{}:{}: plugin/rewrite: rewrite together with {} in one server block is not supported "
          "by node-cache (the rewritten name would not reach it); put them in separate blocks",
          sb.file, sb.line, sb.hosts ? "hosts" : "template"));
    }
    if (!sb.rewrites.empty()) {
      auto rw = std::make_shared<dns::rewrite::Rewriter>();
      for (const auto& args : sb.rewrites) {
        try {
          rw->addRule(args);
        } catch (const std::exception& e) {  // validated by the Corefile reader already
          throw std::runtime_error(
              fmt::format("{}:{}: plugin/rewrite: {}", sb.file, sb.line, e.what()));
        }
      }
      b.rewrite = std::move(rw);
    }
    if (sb.cache) {
      b.cache = atBlock(sb, [&] { return toCacheSettings(*sb.cache, plan->workers); });
      for (const auto& z : sb.cache->zones) {
        b.cache_zones.push_back(atBlock(sb, [&] { return nameOrThrow(z); }));
      }
      b.cache_identity = blockCacheIdentity(b, sb);
    }
    for (const auto& f : sb.forwards) {
      ForwardPlan fp;
      fp.from = atBlock(sb, [&] { return nameOrThrow(f.from); });
      for (const auto& e : f.except) {
        fp.except.push_back(atBlock(sb, [&] { return nameOrThrow(e); }));
      }
      fp.settings = atBlock(sb, [&] { return toUpstreamSettings(f); });
      for (const auto& t : fp.settings.to) fp.labels.push_back(t.label);
      if (observers != nullptr) fp.observer = observers->forwardObserver(fp.labels);
      fp.shared = upstream::makeSharedState(fp.settings, fp.observer.get());
      b.forwards.push_back(std::move(fp));
    }
    if (sb.loop && !sb.keys.empty()) {
      auto ld = std::make_shared<LoopDetector>();
      const std::string zone = sb.keys.front().zone;
      ld->probe_text =
          fmt::format("{}.{}.{}", random64() % 10000000000000000000ull,
                      random64() % 10000000000000000000ull, zone == "." ? std::string() : zone);
      if (ld->probe_text.back() != '.') ld->probe_text += '.';
      ld->probe = atBlock(sb, [&] { return nameOrThrow(ld->probe_text); });
      ld->target_ip = sb.bind.empty() ? std::string("127.0.0.1") : sb.bind.front();
      ld->target_port = sb.keys.front().port;
      b.loop = std::move(ld);
    }
  }
  return plan;
}

}  // namespace nld::plan
