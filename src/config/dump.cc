// dump(): a deterministic, human-readable rendering of a parsed Corefile. It is also the input
// of the fingerprint, so every configured value must appear in it (but no file names or lines:
// moving a block or editing comments must not change the fingerprint).
#include <iomanip>
#include <sstream>

#include "common/go_text.h"
#include "config/corefile.h"

namespace nld::config {

namespace {

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += ' ';
    out += s;
  }
  return out;
}

std::string dur(std::chrono::nanoseconds d) { return formatGoDuration(d); }

std::string rcodes(const std::vector<uint8_t>& v) {
  std::string out;
  for (uint8_t r : v) {
    if (!out.empty()) out += ' ';
    out += std::to_string(r);
  }
  return out;
}

const char* policyName(Policy p) {
  switch (p) {
    case Policy::kRandom:
      return "random";
    case Policy::kRoundRobin:
      return "round_robin";
    case Policy::kSequential:
      return "sequential";
  }
  return "?";
}

}  // namespace

std::string dump(const Corefile& cf) {
  std::ostringstream o;
  for (size_t i = 0; i < cf.blocks.size(); ++i) {
    const ServerBlock& b = cf.blocks[i];
    o << "block " << i << ":";
    for (const auto& k : b.keys) o << " " << k.zone << ":" << k.port;
    o << "\n";
    if (!b.bind.empty()) o << "  bind " << join(b.bind) << "\n";
    if (b.errors) {
      o << "  errors" << (b.errors_config.stacktrace ? " stacktrace" : "") << "\n";
      for (const auto& c : b.errors_config.consolidate) {
        o << "    consolidate " << dur(c.period) << " \"" << c.pattern << "\" " << c.level << "\n";
      }
    }
    for (const auto& l : b.logs) {
      o << "  log names=[" << join(l.names) << "] classes=[" << join(l.classes) << "] format=\""
        << l.format << "\"\n";
    }
    if (b.cache) {
      const CacheConfig& c = *b.cache;
      o << "  cache zones=[" << join(c.zones) << "]\n"
        << "    success " << c.success_capacity << " " << c.success_max_ttl << " "
        << c.success_min_ttl << "\n"
        << "    denial " << c.denial_capacity << " " << c.denial_max_ttl << " " << c.denial_min_ttl
        << "\n"
        << "    prefetch " << c.prefetch_amount << " " << dur(c.prefetch_duration) << " "
        << c.prefetch_percentage << "%\n";
      if (c.serve_stale) {
        o << "    serve_stale " << dur(*c.serve_stale) << " "
          << (c.serve_stale_verify ? "verify" : "immediate") << "\n";
      }
      o << "    servfail " << dur(c.servfail_ttl) << "\n";
      if (!c.disable_success.empty())
        o << "    disable success " << join(c.disable_success) << "\n";
      if (!c.disable_denial.empty()) o << "    disable denial " << join(c.disable_denial) << "\n";
      if (c.keepttl) o << "    keepttl\n";
    }
    for (const auto& f : b.forwards) {
      o << "  forward " << f.from;
      for (const auto& t : f.to) o << " " << t.label();
      o << "\n";
      if (!f.except.empty()) o << "    except " << join(f.except) << "\n";
      if (f.force_tcp) o << "    force_tcp\n";
      if (f.prefer_udp) o << "    prefer_udp\n";
      o << "    expire " << dur(f.expire) << " max_fails " << f.max_fails
        << " max_connect_attempts " << f.max_connect_attempts << " policy " << policyName(f.policy)
        << " max_concurrent " << f.max_concurrent << "\n";
      o << "    health_check " << dur(f.health_check)
        << (f.health_check_recursion_desired ? "" : " no_rec") << " domain "
        << f.health_check_domain << "\n";
      if (f.failfast_all_unhealthy) o << "    failfast_all_unhealthy_upstreams\n";
      if (!f.next_rcodes.empty()) o << "    next " << rcodes(f.next_rcodes) << "\n";
      if (!f.failover_rcodes.empty()) o << "    failover " << rcodes(f.failover_rcodes) << "\n";
    }
    if (b.reload) {
      o << "  reload " << dur(b.reload->interval) << " " << dur(b.reload->jitter) << "\n";
    }
    if (b.loop) o << "  loop\n";
    if (b.health) {
      o << "  health " << b.health->address << " lameduck " << dur(b.health->lameduck) << "\n";
    }
    if (b.prometheus) o << "  prometheus " << *b.prometheus << "\n";
    if (b.bufsize) o << "  bufsize " << *b.bufsize << "\n";
    if (b.loadbalance) o << "  loadbalance round_robin\n";
    for (const TemplateConfig& t : b.templates) {
      o << "  template " << t.qclass << " " << t.qtype;
      for (const auto& z : t.zones) o << " " << z;
      o << " rcode " << int{t.rcode} << "\n";
      for (const auto& m : t.match) o << "    match \"" << m << "\"\n";
      for (const auto& a : t.answer) o << "    answer \"" << a << "\"\n";
      for (const auto& a : t.additional) o << "    additional \"" << a << "\"\n";
      for (const auto& a : t.authority) o << "    authority \"" << a << "\"\n";
      if (t.fallthrough) {
        o << "    fallthrough";
        for (const auto& z : t.fallthrough_zones) o << " " << z;
        o << "\n";
      }
    }
    if (b.hosts) {
      const HostsConfig& h = *b.hosts;
      o << "  hosts " << h.file;
      for (const auto& z : h.zones) o << " " << z;
      o << " ttl " << h.ttl << (h.reverse ? "" : " no_reverse") << " reload "
        << formatGoDuration(h.reload) << "\n";
      for (const auto& l : h.inline_lines) o << "    " << l << "\n";
      if (h.fallthrough) {
        o << "    fallthrough";
        for (const auto& z : h.fallthrough_zones) o << " " << z;
        o << "\n";
      }
    }
    if (b.timeouts) {
      o << "  timeouts";
      if (b.timeouts->read) o << " read " << b.timeouts->read->count() << "ms";
      if (b.timeouts->write) o << " write " << b.timeouts->write->count() << "ms";
      if (b.timeouts->idle) o << " idle " << b.timeouts->idle->count() << "ms";
      o << "\n";
    }
    for (const auto& r : b.rewrites) {
      o << "  rewrite";
      for (const auto& a : r) o << " " << std::quoted(a);
      o << "\n";
    }
  }
  for (const auto& l : cf.listeners) {
    o << "listener " << (l.address.empty() ? "*" : l.address) << ":" << l.port << ":";
    for (const auto& [zone, bi] : l.zones) o << " " << zone << "->" << bi;
    o << "\n";
  }
  return o.str();
}

}  // namespace nld::config
