// Corefile assembly: keys, directive dispatch, listener set, dump and fingerprint.
#include "config/corefile.h"

#include <cstdint>
#include <map>
#include <set>

#include "common/go_text.h"
#include "config/directives.h"
#include "config/netutil.h"
#include "config/structure.h"

namespace nld::config {

std::string UpstreamAddress::label() const {
  if (detail::isIpv6(ip)) return "[" + ip + "]:" + std::to_string(port);
  return ip + ":" + std::to_string(port);
}

namespace detail {
namespace {

// Directives CoreDNS knows but node-cache does not implement (not compiled into upstream
// node-cache, or compiled in but not supported by this replacement).
const std::set<std::string, std::less<>> kKnownUnsupported = {
    "root",        "metadata", "geoip",    "cancel",      "tls",        "quic",     "multisocket",
    "nsid",        "debug",    "trace",    "ready",       "pprof",      "dnstap",   "local",
    "dns64",       "acl",      "any",      "chaos",       "tsig",       "header",   "dnssec",
    "autopath",    "minimal",  "transfer", "route53",     "azure",      "clouddns", "k8s_external",
    "kubernetes",  "file",     "auto",     "secondary",   "etcd",       "grpc",     "erratic",
    "whoami",      "on",       "sign",     "view",        "nomad",      "proxy",    "health_check",
    "grpc_server", "https",    "https3",   "forward_tls", "federation", "dnssd"};

const std::set<std::string, std::less<>> kOncePerBlock = {"errors", "cache", "prometheus",
                                                          "reload", "loop",  "hosts"};

struct KeyWithToken {
  ZoneKey key;
  Token token;
};

std::vector<KeyWithToken> parseKey(const Token& t, const ParseOptions& options) {
  std::string s = t.text;
  if (const size_t scheme = s.find("://"); scheme != std::string::npos) {
    const std::string proto = s.substr(0, scheme);
    if (proto == "tls" || proto == "https" || proto == "https3" || proto == "grpc" ||
        proto == "quic") {
      failAt(t, "server block key '" + t.text + "': scheme " + proto +
                    ":// is not supported by node-cache (only dns://)");
    }
    if (proto != "dns") failAt(t, "server block key '" + t.text + "': unknown scheme " + proto);
    s = s.substr(scheme + 3);
  }
  // CoreDNS SplitHostPort: a trailing ":<digits>" is the port (CIDR masks come before it).
  uint16_t port = options.default_port;
  const size_t colon = s.rfind(':');
  if (colon != std::string::npos && colon + 1 == s.size()) {
    failAt(t, "server block key '" + t.text + "': expecting data after last colon");
  }
  if (colon != std::string::npos) {
    const std::string tail = s.substr(colon + 1);
    if (parseUnsigned(tail)) {
      auto p = parsePort(tail);
      if (!p || *p == 0) failAt(t, "server block key '" + t.text + "': invalid port " + tail);
      port = *p;
      s.resize(colon);
    }
  }
  auto zones = normalizeZones(s);
  if (!zones) failAt(t, "server block key '" + t.text + "': " + zones.error().message());
  std::vector<KeyWithToken> out;
  for (auto& z : *zones) out.push_back(KeyWithToken{ZoneKey{std::move(z), port}, t});
  return out;
}

std::string keyString(const std::string& zone, uint16_t port, const std::string& address) {
  std::string s = "dns://" + zone + ":" + std::to_string(port);
  if (!address.empty()) s += " on " + address;
  return s;
}

ServerBlock buildBlock(const RawBlock& raw, const ParseOptions& options,
                       std::vector<Token>& key_tokens) {
  ServerBlock b;
  b.file = raw.keys.front().file;
  b.line = raw.keys.front().line;
  for (const Token& kt : raw.keys) {
    for (auto& k : parseKey(kt, options)) {
      b.keys.push_back(std::move(k.key));
      key_tokens.push_back(std::move(k.token));
    }
  }
  std::vector<std::string> zones;
  for (const auto& k : b.keys) {
    if (std::find(zones.begin(), zones.end(), k.zone) == zones.end()) zones.push_back(k.zone);
  }
  std::map<std::string, int, std::less<>> seen;
  for (const Line& line : raw.lines) {
    const std::string& name = line.head.text;
    const bool supported = name == "errors" || name == "log" || name == "cache" ||
                           name == "forward" || name == "bind" || name == "reload" ||
                           name == "loop" || name == "health" || name == "prometheus" ||
                           name == "bufsize" || name == "loadbalance" || name == "hosts" ||
                           name == "template" || name == "rewrite" || name == "timeouts";
    if (!supported) {
      if (kKnownUnsupported.count(name)) {
        failAt(line.head, "plugin '" + name + "' is not supported by node-cache");
      }
      failAt(line.head, "Unknown directive '" + name + "'");
    }
    if (++seen[name] > 1 && kOncePerBlock.count(name)) {
      pluginError(line.head, name, "this plugin can only be used once per Server Block");
    }
    if (name == "errors") {
      parseErrors(line, b);
    } else if (name == "log") {
      parseLog(line, b);
    } else if (name == "cache") {
      b.cache = parseCache(line, zones);
    } else if (name == "forward") {
      b.forwards.push_back(parseForward(line));
    } else if (name == "bind") {
      parseBind(line, b, options);
    } else if (name == "reload") {
      parseReload(line, b);
    } else if (name == "loop") {
      parseLoop(line, b);
    } else if (name == "health") {
      parseHealth(line, b);
    } else if (name == "bufsize") {
      parseBufsize(line, b);
    } else if (name == "loadbalance") {
      parseLoadbalance(line, b);
    } else if (name == "template") {
      b.templates.push_back(parseTemplate(line, zones));
    } else if (name == "hosts") {
      b.hosts = parseHosts(line, zones);
    } else if (name == "rewrite") {
      parseRewrite(line, b);
    } else if (name == "timeouts") {
      parseTimeouts(line, b);
    } else {
      parsePrometheus(line, b);
    }
  }
  return b;
}

void buildListeners(Corefile& cf, const std::vector<std::vector<Token>>& key_tokens) {
  // (address, port) → listener index; per listener zone → key token (for overlap errors).
  std::map<std::pair<std::string, uint16_t>, size_t> index;
  std::vector<std::map<std::string, Token>> zone_tokens;
  for (size_t bi = 0; bi < cf.blocks.size(); ++bi) {
    const ServerBlock& b = cf.blocks[bi];
    const std::vector<std::string> addrs = b.bind.empty() ? std::vector<std::string>{""} : b.bind;
    for (size_t ki = 0; ki < b.keys.size(); ++ki) {
      const ZoneKey& k = b.keys[ki];
      const Token& kt = key_tokens[bi][ki];
      for (const auto& addr : addrs) {
        auto [it, inserted] = index.emplace(std::make_pair(addr, k.port), cf.listeners.size());
        if (inserted) {
          cf.listeners.push_back(Listener{addr, k.port, {}});
          zone_tokens.emplace_back();
        }
        Listener& l = cf.listeners[it->second];
        if (zone_tokens[it->second].count(k.zone)) {
          failAt(kt,
                 "cannot serve " + keyString(k.zone, k.port, addr) + " - it is already defined");
        }
        zone_tokens[it->second].emplace(k.zone, kt);
        l.zones.emplace_back(k.zone, bi);
      }
    }
  }
  // A zone on a wildcard listener must not also be served on a specific address, same port.
  for (size_t li = 0; li < cf.listeners.size(); ++li) {
    const Listener& l = cf.listeners[li];
    if (l.address.empty()) continue;
    auto w = index.find({std::string(), l.port});
    if (w == index.end()) continue;
    for (const auto& [zone, bi] : l.zones) {
      if (zone_tokens[w->second].count(zone)) {
        const Token& at = zone_tokens[li].at(zone);
        failAt(at, "cannot serve " + keyString(zone, l.port, l.address) +
                       " - zone overlap listener capacity with " + keyString(zone, l.port, ""));
      }
    }
  }
}

// 64-bit FNV-1a, hand-written: the fingerprint only needs change detection between two
// configurations of the same process (not collision resistance against an attacker), and
// nld::config must not pull in a crypto library.
std::string fnv1a64Hex(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i) {
    out[static_cast<size_t>(i)] = kHex[h & 0xf];
    h >>= 4;
  }
  return out;
}

}  // namespace
}  // namespace detail

Corefile parseCorefile(std::string_view text, const std::string& filename,
                       const ParseOptions& options) {
  using namespace detail;
  std::vector<RawBlock> raw = parseStructure(text, filename, options);
  if (raw.empty()) failAt(filename, 0, "no server blocks found (empty Corefile)");
  Corefile cf;
  std::vector<std::vector<Token>> key_tokens;
  for (const RawBlock& r : raw) {
    key_tokens.emplace_back();
    cf.blocks.push_back(buildBlock(r, options, key_tokens.back()));
  }
  buildListeners(cf, key_tokens);
  cf.fingerprint = fnv1a64Hex(dump(cf));
  return cf;
}

Corefile loadCorefile(const std::string& path, const ParseOptions& options) {
  auto text = detail::readWholeFile(path);
  if (!text) throw ConfigError(path + ": cannot read Corefile: " + text.error().message());
  return parseCorefile(*text, path, options);
}

}  // namespace nld::config
