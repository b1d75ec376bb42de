// cache and forward directive parsers (as CoreDNS plugin/cache, plugin/forward setup.go).
#include <algorithm>
#include <cctype>
#include <limits>

#include "common/go_text.h"
#include "config/directives.h"
#include "config/netutil.h"
#include "config/structure.h"

namespace nld::config::detail {

namespace {

constexpr std::string_view kCache = "cache";
constexpr std::string_view kForward = "forward";
constexpr size_t kMaxUpstreams = 15;

int64_t intArg(const Token& t, std::string_view plugin) {
  auto v = parseSigned(t.text);
  if (!v) pluginError(t, plugin, "invalid integer '" + t.text + "'");
  return *v;
}

uint32_t ttlArg(const Token& t) {
  const int64_t v = intArg(t, kCache);
  if (v <= 0) pluginError(t, kCache, "cache TTL can not be zero or negative: " + t.text);
  if (v > std::numeric_limits<uint32_t>::max()) pluginError(t, kCache, "cache TTL too large");
  return static_cast<uint32_t>(v);
}

uint32_t minTtlArg(const Token& t) {
  const int64_t v = intArg(t, kCache);
  if (v < 0) pluginError(t, kCache, "cache min TTL can not be negative: " + t.text);
  if (v > std::numeric_limits<uint32_t>::max()) pluginError(t, kCache, "cache min TTL too large");
  return static_cast<uint32_t>(v);
}

size_t capacityArg(const Token& t) {
  const int64_t v = intArg(t, kCache);
  if (v < 0) pluginError(t, kCache, "cache capacity can not be negative: " + t.text);
  return static_cast<size_t>(v);
}

// success|denial CAPACITY [TTL [MINTTL]]
void capTtl(const Line& sub, size_t& cap, uint32_t& max_ttl, uint32_t& min_ttl) {
  expectArgs(sub, kCache, 1, 3);
  cap = capacityArg(sub.args[0]);
  if (sub.args.size() > 1) max_ttl = ttlArg(sub.args[1]);
  if (sub.args.size() > 2) min_ttl = minTtlArg(sub.args[2]);
}

std::chrono::seconds toSeconds(std::chrono::nanoseconds d) {
  return std::chrono::duration_cast<std::chrono::seconds>(d);
}

void appendZones(std::vector<std::string>& out, const std::vector<Token>& args, size_t from,
                 std::string_view plugin) {
  for (size_t i = from; i < args.size(); ++i) {
    for (auto& z : zonesArg(args[i], plugin)) {
      if (std::find(out.begin(), out.end(), z) == out.end()) out.push_back(std::move(z));
    }
  }
}

}  // namespace

CacheConfig parseCache(const Line& line, const std::vector<std::string>& zones) {
  CacheConfig c;
  size_t first = 0;
  if (!line.args.empty()) {
    // The first argument is the TTL if it is an integer, otherwise a zone.
    if (parseSigned(line.args[0].text)) {
      c.success_max_ttl = c.denial_max_ttl = ttlArg(line.args[0]);
      first = 1;
    }
  }
  appendZones(c.zones, line.args, first, kCache);
  if (c.zones.empty()) c.zones = zones;
  for (const Line& sub : line.block) {
    expectNoBlock(sub, kCache);
    const std::string& name = sub.head.text;
    if (name == "success") {
      capTtl(sub, c.success_capacity, c.success_max_ttl, c.success_min_ttl);
    } else if (name == "denial") {
      capTtl(sub, c.denial_capacity, c.denial_max_ttl, c.denial_min_ttl);
    } else if (name == "prefetch") {
      expectArgs(sub, kCache, 1, 3);
      const int64_t amount = intArg(sub.args[0], kCache);
      if (amount < 0) {
        pluginError(sub.args[0], kCache, "prefetch amount should be positive: " + sub.args[0].text);
      }
      if (amount > std::numeric_limits<uint32_t>::max()) {
        pluginError(sub.args[0], kCache, "prefetch amount too large");
      }
      c.prefetch_amount = static_cast<uint32_t>(amount);
      if (sub.args.size() > 1) {
        const auto d = durationArg(sub.args[1], kCache, "prefetch");
        if (d <= std::chrono::nanoseconds(0)) {
          pluginError(sub.args[1], kCache, "prefetch duration must be positive");
        }
        c.prefetch_duration = toSeconds(d);
      }
      if (sub.args.size() > 2) {
        std::string pct = sub.args[2].text;
        if (pct.empty() || pct.back() != '%') {
          pluginError(sub.args[2], kCache,
                      "last character of percentage should be `%`, but is: '" +
                          (pct.empty() ? std::string() : pct.substr(pct.size() - 1)) + "'");
        }
        pct.pop_back();
        auto num = parseSigned(pct);
        if (!num) pluginError(sub.args[2], kCache, "invalid percentage '" + sub.args[2].text + "'");
        if (*num < 10 || *num > 90) {
          pluginError(sub.args[2], kCache,
                      "percentage should fall in range [10, 90]: " + std::to_string(*num));
        }
        c.prefetch_percentage = static_cast<uint32_t>(*num);
      }
    } else if (name == "serve_stale") {
      expectArgs(sub, kCache, 0, 2);
      c.serve_stale = std::chrono::hours(1);
      c.serve_stale_verify = false;
      if (!sub.args.empty()) {
        const auto d = durationArg(sub.args[0], kCache, "serve_stale");
        if (d < std::chrono::nanoseconds(0)) {
          pluginError(sub.args[0], kCache, "invalid negative duration for serve_stale");
        }
        c.serve_stale = toSeconds(d);
      }
      if (sub.args.size() > 1) {
        std::string mode = sub.args[1].text;
        std::transform(mode.begin(), mode.end(), mode.begin(),
                       [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
        if (mode != "immediate" && mode != "verify") {
          pluginError(sub.args[1], kCache, "invalid value for serve_stale refresh mode: " + mode);
        }
        c.serve_stale_verify = mode == "verify";
      }
    } else if (name == "servfail") {
      expectArgs(sub, kCache, 1, 1);
      const auto d = durationArg(sub.args[0], kCache, "servfail");
      if (d < std::chrono::nanoseconds(0)) {
        pluginError(sub.args[0], kCache, "invalid negative ttl for servfail");
      }
      if (d > std::chrono::minutes(5)) {
        pluginError(sub.args[0], kCache,
                    "caching SERVFAIL responses over 5 minutes is not permitted");
      }
      c.servfail_ttl = toSeconds(d);
    } else if (name == "disable") {
      expectArgs(sub, kCache, 1, 1000);
      const std::string& type = sub.args[0].text;
      if (type != "success" && type != "denial") {
        pluginError(sub.args[0], kCache,
                    "cache type for disable must be \"success\" or \"denial\"");
      }
      auto& target = type == "success" ? c.disable_success : c.disable_denial;
      if (sub.args.size() == 1) {
        if (std::find(target.begin(), target.end(), ".") == target.end()) target.push_back(".");
      } else {
        appendZones(target, sub.args, 1, kCache);
      }
    } else if (name == "keepttl") {
      expectArgs(sub, kCache, 0, 0);
      c.keepttl = true;
    } else {
      pluginError(sub.head, kCache, "unknown property '" + name + "'");
    }
  }
  return c;
}

namespace {

// resolv.conf: `nameserver IP` lines (zone ids stripped), port 53.
std::vector<UpstreamAddress> upstreamsFromResolvConf(const Token& t) {
  auto text = readWholeFile(t.text);
  if (!text) {
    pluginError(t, kForward,
                "not an IP address or file: \"" + t.text + "\" (" + text.error().message() + ")");
  }
  std::vector<UpstreamAddress> out;
  size_t pos = 0;
  int line_no = 0;
  while (pos < text->size()) {
    size_t end = text->find('\n', pos);
    if (end == std::string::npos) end = text->size();
    const std::string line = text->substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    std::vector<std::string> f;
    size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
      const size_t s = i;
      while (i < line.size() && !std::isspace(static_cast<unsigned char>(line[i]))) ++i;
      if (i > s) f.push_back(line.substr(s, i - s));
    }
    if (f.empty() || f[0][0] == '#' || f[0][0] == ';' || f[0] != "nameserver") continue;
    if (f.size() < 2) continue;
    std::string ip = f[1];
    if (const size_t pct = ip.find('%'); pct != std::string::npos) ip.resize(pct);
    auto c = canonicalIp(ip, false);
    if (!c) {
      pluginError(
          t, kForward,
          t.text + ":" + std::to_string(line_no) + ": invalid nameserver address '" + f[1] + "'");
    }
    out.push_back(UpstreamAddress{*c, 53});
  }
  if (out.empty()) {
    pluginError(t, kForward, "no nameservers found in \"" + t.text + "\"");
  }
  return out;
}

std::vector<UpstreamAddress> parseTo(const Token& t) {
  std::string s = t.text;
  if (const size_t scheme = s.find("://"); scheme != std::string::npos) {
    const std::string proto = s.substr(0, scheme);
    if (proto == "dns") {
      s = s.substr(scheme + 3);
    } else if (proto == "tls") {
      pluginError(t, kForward, "TLS upstreams (tls://) are not supported by node-cache");
    } else {
      pluginError(t, kForward,
                  "transport '" + proto + "://' is not supported by node-cache (only dns://)");
    }
  }
  if (s.empty()) pluginError(t, kForward, "invalid address: \"" + t.text + "\"");
  if (auto hp = splitHostPort(s)) {
    auto ip = canonicalIp(hp->host);
    if (ip) {
      auto p = parsePort(hp->port);
      if (!p || *p == 0) {
        pluginError(t, kForward, "invalid port '" + hp->port + "' in " + t.text);
      }
      return {UpstreamAddress{*ip, *p}};
    }
  } else if (auto ip = canonicalIp(s)) {
    return {UpstreamAddress{*ip, 53}};
  } else if (s.size() > 2 && s.front() == '[' && s.back() == ']') {
    if (auto ip6 = canonicalIp(s.substr(1, s.size() - 2))) return {UpstreamAddress{*ip6, 53}};
  }
  return upstreamsFromResolvConf(t);
}

uint32_t uintArg(const Line& sub, std::string_view what) {
  expectArgs(sub, kForward, 1, 1);
  const Token& t = sub.args[0];
  const auto v = parseSigned(t.text);
  if (!v) pluginError(t, kForward, std::string(what) + ": invalid integer '" + t.text + "'");
  if (*v < 0) pluginError(t, kForward, std::string(what) + " can't be negative: " + t.text);
  if (*v > std::numeric_limits<uint32_t>::max()) {
    pluginError(t, kForward, std::string(what) + " too large: " + t.text);
  }
  return static_cast<uint32_t>(*v);
}

std::optional<uint8_t> rcodeFromString(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::toupper(ch)); });
  static const std::pair<std::string_view, uint8_t> kRcodes[] = {
      {"NOERROR", 0},   {"FORMERR", 1},    {"SERVFAIL", 2}, {"NXDOMAIN", 3}, {"NOTIMP", 4},
      {"REFUSED", 5},   {"YXDOMAIN", 6},   {"YXRRSET", 7},  {"NXRRSET", 8},  {"NOTAUTH", 9},
      {"NOTZONE", 10},  {"DSOTYPENI", 11}, {"BADSIG", 16},  {"BADVERS", 16}, {"BADKEY", 17},
      {"BADTIME", 18},  {"BADMODE", 19},   {"BADNAME", 20}, {"BADALG", 21},  {"BADTRUNC", 22},
      {"BADCOOKIE", 23}};
  for (const auto& [name, code] : kRcodes) {
    if (s == name) return code;
  }
  return std::nullopt;
}

void rcodeList(const Line& sub, std::vector<uint8_t>& out) {
  expectArgs(sub, kForward, 1, 64);
  for (const Token& t : sub.args) {
    auto rc = rcodeFromString(t.text);
    if (!rc) pluginError(t, kForward, t.text + " is not a valid rcode");
    out.push_back(*rc);
  }
}

void flag(const Line& sub, bool& target) {
  expectArgs(sub, kForward, 0, 0);
  target = true;
}

}  // namespace

ForwardConfig parseForward(const Line& line) {
  ForwardConfig f;
  if (line.args.size() < 2) argError(line.args.empty() ? line.head : line.args.back(), kForward);
  auto from = zonesArg(line.args[0], kForward);
  f.from = from.front();  // a CIDR that expands to several zones keeps only the first (CoreDNS)
  for (size_t i = 1; i < line.args.size(); ++i) {
    for (auto& u : parseTo(line.args[i])) f.to.push_back(std::move(u));
  }
  if (f.to.size() > kMaxUpstreams) {
    pluginError(line.args[1], kForward,
                "more than " + std::to_string(kMaxUpstreams) +
                    " TOs configured: " + std::to_string(f.to.size()));
  }
  for (const Line& sub : line.block) {
    expectNoBlock(sub, kForward);
    const std::string& name = sub.head.text;
    if (name == "except") {
      expectArgs(sub, kForward, 1, 100000);
      appendZones(f.except, sub.args, 0, kForward);
    } else if (name == "force_tcp") {
      flag(sub, f.force_tcp);
    } else if (name == "prefer_udp") {
      flag(sub, f.prefer_udp);
    } else if (name == "failfast_all_unhealthy_upstreams") {
      flag(sub, f.failfast_all_unhealthy);
    } else if (name == "expire") {
      expectArgs(sub, kForward, 1, 1);
      const auto d = durationArg(sub.args[0], kForward, "expire");
      if (d < std::chrono::nanoseconds(0)) {
        pluginError(sub.args[0], kForward, "expire can't be negative: " + sub.args[0].text);
      }
      f.expire = toSeconds(d);
    } else if (name == "max_fails") {
      f.max_fails = uintArg(sub, "max_fails");
    } else if (name == "max_connect_attempts") {
      f.max_connect_attempts = uintArg(sub, "max_connect_attempts");
    } else if (name == "max_concurrent") {
      f.max_concurrent = uintArg(sub, "max_concurrent");
    } else if (name == "policy") {
      expectArgs(sub, kForward, 1, 1);
      const std::string& p = sub.args[0].text;
      if (p == "random") {
        f.policy = Policy::kRandom;
      } else if (p == "round_robin") {
        f.policy = Policy::kRoundRobin;
      } else if (p == "sequential") {
        f.policy = Policy::kSequential;
      } else {
        pluginError(sub.args[0], kForward, "unknown policy '" + p + "'");
      }
    } else if (name == "health_check") {
      expectArgs(sub, kForward, 1, 4);
      const auto d = durationArg(sub.args[0], kForward, "health_check");
      if (d < std::chrono::nanoseconds(0)) {
        pluginError(sub.args[0], kForward, "health_check can't be negative: " + sub.args[0].text);
      }
      f.health_check = std::chrono::duration_cast<std::chrono::milliseconds>(d);
      f.health_check_domain = ".";
      for (size_t i = 1; i < sub.args.size(); ++i) {
        const std::string& o = sub.args[i].text;
        if (o == "no_rec") {
          f.health_check_recursion_desired = false;
        } else if (o == "domain") {
          if (i + 1 >= sub.args.size()) argError(sub.args[i], kForward);
          const Token& dom = sub.args[++i];
          auto n = normalizeName(dom.text);
          if (!n) pluginError(dom, kForward, "health_check: invalid domain name " + dom.text);
          f.health_check_domain = *n;
        } else {
          pluginError(sub.args[i], kForward, "health_check: unknown option " + o);
        }
      }
    } else if (name == "next") {
      rcodeList(sub, f.next_rcodes);
    } else if (name == "failover") {
      rcodeList(sub, f.failover_rcodes);
    } else if (name == "tls" || name == "tls_servername") {
      pluginError(sub.head, kForward,
                  "'" + name + "' is not supported by node-cache (no TLS upstreams)");
    } else {
      pluginError(sub.head, kForward, "unknown property '" + name + "'");
    }
  }
  return f;
}

}  // namespace nld::config::detail
