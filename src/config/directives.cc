// errors, log, bind, reload, loop, health, prometheus (as the CoreDNS plugins' setup.go).
#include "config/directives.h"

#include <re2/re2.h>

#include <algorithm>
#include <cctype>

#include "common/go_text.h"
#include "config/netutil.h"
#include "dns/rewrite.h"

namespace nld::config::detail {

void pluginError(const Token& at, std::string_view plugin, std::string_view msg) {
  std::string m = "plugin/";
  m += plugin;
  m += ": ";
  m += msg;
  failAt(at, m);
}

void argError(const Token& at, std::string_view plugin) {
  pluginError(at, plugin, "Wrong argument count or unexpected line ending after '" + at.text + "'");
}

void expectArgs(const Line& line, std::string_view plugin, size_t min, size_t max) {
  if (line.args.size() < min) argError(line.args.empty() ? line.head : line.args.back(), plugin);
  if (line.args.size() > max) argError(line.args[max], plugin);
}

void expectNoBlock(const Line& line, std::string_view plugin) {
  if (line.has_block) {
    pluginError(line.open_brace, plugin, "'" + line.head.text + "' does not take a block");
  }
}

std::chrono::nanoseconds durationArg(const Token& t, std::string_view plugin,
                                     std::string_view what) {
  auto d = parseGoDuration(t.text);
  if (!d) {
    pluginError(
        t, plugin,
        std::string(what) + ": invalid duration '" + t.text + "' (use e.g. 30s, 1m, 1h30m)");
  }
  return *d;
}

std::vector<std::string> zonesArg(const Token& t, std::string_view plugin) {
  auto zones = normalizeZones(t.text);
  if (!zones) pluginError(t, plugin, zones.error().message());
  return std::move(*zones);
}

void parseErrors(const Line& line, ServerBlock& block) {
  constexpr std::string_view kPlugin = "errors";
  expectArgs(line, kPlugin, 0, 0);
  for (const Line& sub : line.block) {
    const std::string& name = sub.head.text;
    expectNoBlock(sub, kPlugin);
    if (name == "stacktrace") {
      expectArgs(sub, kPlugin, 0, 0);
      block.errors_config.stacktrace = true;
    } else if (name == "consolidate") {
      expectArgs(sub, kPlugin, 2, 3);
      ErrorsConsolidate c;
      const auto d = durationArg(sub.args[0], kPlugin, "consolidate");
      if (d <= std::chrono::nanoseconds(0)) {
        pluginError(sub.args[0], kPlugin, "consolidate duration must be positive");
      }
      c.period = std::chrono::duration_cast<std::chrono::milliseconds>(d);
      c.period_text = formatGoDuration(d);
      c.pattern = sub.args[1].text;
      if (c.pattern.empty()) pluginError(sub.args[1], kPlugin, "consolidate needs a regexp");
      {
        // Compiled here only to report a bad pattern with its file:line; the server compiles
        // its own copy (RE2 speaks Go's regexp syntax).
        const re2::RE2 re(c.pattern, re2::RE2::Quiet);
        if (!re.ok()) {
          pluginError(sub.args[1], kPlugin,
                      "consolidate: invalid regexp '" + c.pattern + "': " + re.error());
        }
      }
      if (sub.args.size() == 3) {
        const std::string& lvl = sub.args[2].text;
        if (lvl != "warning" && lvl != "error" && lvl != "info" && lvl != "debug") {
          pluginError(sub.args[2], kPlugin, "unknown log level argument in consolidate: " + lvl);
        }
        c.level = lvl;
      }
      block.errors_config.consolidate.push_back(std::move(c));
    } else {
      pluginError(sub.head, kPlugin, "unknown property '" + name + "'");
    }
  }
  block.errors = true;
}

void parseLog(const Line& line, ServerBlock& block) {
  constexpr std::string_view kPlugin = "log";
  LogConfig cfg;
  const auto& a = line.args;
  if (!a.empty()) {
    // CoreDNS: one arg = a name; more = names... then the format.
    const size_t name_count = a.size() == 1 ? 1 : a.size() - 1;
    cfg.names.clear();
    for (size_t i = 0; i < name_count; ++i) {
      for (auto& z : zonesArg(a[i], kPlugin)) cfg.names.push_back(std::move(z));
    }
    if (a.size() > 1) {
      const std::string& f = a.back().text;
      if (f == "{common}") {
        cfg.format = std::string(kCommonLogFormat);
      } else if (f == "{combined}") {
        cfg.format = std::string(kCombinedLogFormat);
      } else {
        cfg.format = f;
      }
    }
  }
  if (cfg.format.empty()) cfg.format = std::string(kCommonLogFormat);
  for (const Line& sub : line.block) {
    expectNoBlock(sub, kPlugin);
    if (sub.head.text != "class") {
      pluginError(sub.head, kPlugin, "unknown property '" + sub.head.text + "'");
    }
    expectArgs(sub, kPlugin, 1, 16);
    cfg.classes.clear();
    for (const Token& t : sub.args) {
      std::string c = t.text;
      std::transform(c.begin(), c.end(), c.begin(),
                     [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
      if (c != "success" && c != "denial" && c != "error" && c != "all") {
        pluginError(t, kPlugin, "invalid class '" + t.text + "' (success, denial, error, all)");
      }
      cfg.classes.push_back(c);
    }
  }
  block.logs.push_back(std::move(cfg));
  block.log = true;
}

namespace {

std::vector<std::string> resolveBindArgs(const std::vector<Token>& args,
                                         const ParseOptions& options) {
  std::vector<std::string> out;
  for (const Token& t : args) {
    // Interface names take priority over IP literals (CoreDNS listIP).
    std::optional<std::vector<std::string>> iface_addrs = options.interface_addresses
                                                              ? options.interface_addresses(t.text)
                                                              : systemInterfaceAddresses(t.text);
    if (iface_addrs) {
      for (const auto& a : *iface_addrs) {
        auto c = canonicalIp(a);
        if (!c) pluginError(t, "bind", "interface " + t.text + " has a bad address '" + a + "'");
        out.push_back(*c);
      }
      continue;
    }
    auto ip = canonicalIp(t.text);
    if (!ip) pluginError(t, "bind", "not a valid IP address or interface name: \"" + t.text + "\"");
    out.push_back(*ip);
  }
  return out;
}

}  // namespace

void parseBind(const Line& line, ServerBlock& block, const ParseOptions& options) {
  constexpr std::string_view kPlugin = "bind";
  if (line.args.empty()) {
    pluginError(line.head, kPlugin, "at least one address or interface name is expected");
  }
  std::vector<std::string> addrs = resolveBindArgs(line.args, options);
  std::vector<std::string> except;
  for (const Line& sub : line.block) {
    expectNoBlock(sub, kPlugin);
    if (sub.head.text != "except") {
      pluginError(sub.head, kPlugin, "invalid option \"" + sub.head.text + "\"");
    }
    if (sub.args.empty()) {
      pluginError(sub.head, kPlugin,
                  "at least one address or interface must be given to except subdirective");
    }
    for (auto& e : resolveBindArgs(sub.args, options)) except.push_back(std::move(e));
  }
  size_t kept = 0;
  for (const auto& a : addrs) {
    if (std::find(except.begin(), except.end(), a) != except.end()) continue;
    ++kept;
    if (std::find(block.bind.begin(), block.bind.end(), a) == block.bind.end()) {
      block.bind.push_back(a);
    }
  }
  if (kept == 0) {
    pluginError(line.head, kPlugin,
                "no address left to listen on (interface without addresses, or all excepted)");
  }
}

void parseReload(const Line& line, ServerBlock& block) {
  constexpr std::string_view kPlugin = "reload";
  expectArgs(line, kPlugin, 0, 2);
  expectNoBlock(line, kPlugin);
  using std::chrono::seconds;
  std::chrono::nanoseconds interval = seconds(30);
  std::chrono::nanoseconds jitter = seconds(15);
  if (!line.args.empty()) interval = durationArg(line.args[0], kPlugin, "interval");
  if (interval < seconds(2)) {
    pluginError(line.args[0], kPlugin, "interval value must be greater or equal to 2s");
  }
  if (line.args.size() > 1) jitter = durationArg(line.args[1], kPlugin, "jitter");
  if (jitter < seconds(1)) {
    pluginError(line.args[1], kPlugin, "jitter value must be greater or equal to 1s");
  }
  if (jitter > interval / 2) jitter = interval / 2;
  ReloadConfig r;
  r.interval = std::chrono::duration_cast<seconds>(interval);
  r.jitter = std::chrono::duration_cast<seconds>(jitter);
  block.reload = r;
}

void parseLoop(const Line& line, ServerBlock& block) {
  expectArgs(line, "loop", 0, 0);
  expectNoBlock(line, "loop");
  block.loop = true;
}

namespace {

// Listen address of health/prometheus: Go net.SplitHostPort plus a numeric port.
void checkListenAddress(const Token& t, std::string_view plugin) {
  auto hp = splitHostPort(t.text);
  if (!hp) pluginError(t, plugin, hp.error().message());
  const auto& [host, port] = *hp;
  if (!parsePort(port)) pluginError(t, plugin, "invalid port '" + port + "' in " + t.text);
  if (host.empty() || canonicalIp(host)) return;
  if (!normalizeName(host) || host.find('*') != std::string::npos) {
    pluginError(t, plugin, "invalid host '" + host + "' in " + t.text);
  }
}

}  // namespace

void parseHealth(const Line& line, ServerBlock& block) {
  constexpr std::string_view kPlugin = "health";
  expectArgs(line, kPlugin, 0, 1);
  HealthConfig h;
  if (!line.args.empty()) {
    checkListenAddress(line.args[0], kPlugin);
    h.address = line.args[0].text;
  }
  for (const Line& sub : line.block) {
    expectNoBlock(sub, kPlugin);
    if (sub.head.text != "lameduck") {
      pluginError(sub.head, kPlugin, "unknown property '" + sub.head.text + "'");
    }
    expectArgs(sub, kPlugin, 1, 1);
    auto d = parseGoDuration(sub.args[0].text);
    if (!d) {
      pluginError(sub.args[0], kPlugin,
                  "unable to parse lameduck duration value: '" + sub.args[0].text + "'");
    }
    if (*d < std::chrono::nanoseconds(0)) {
      pluginError(sub.args[0], kPlugin, "lameduck duration must not be negative");
    }
    h.lameduck = std::chrono::duration_cast<std::chrono::milliseconds>(*d);
  }
  block.health = h;  // several `health` lines: the last one wins (CoreDNS)
}

void parsePrometheus(const Line& line, ServerBlock& block) {
  constexpr std::string_view kPlugin = "prometheus";
  expectArgs(line, kPlugin, 0, 1);
  expectNoBlock(line, kPlugin);
  std::string addr = "localhost:9153";
  if (!line.args.empty()) {
    checkListenAddress(line.args[0], kPlugin);
    addr = line.args[0].text;
  }
  block.prometheus = addr;
}

void parseBufsize(const Line& line, ServerBlock& block) {
  constexpr std::string_view kPlugin = "bufsize";
  expectArgs(line, kPlugin, 0, 1);
  expectNoBlock(line, kPlugin);
  uint16_t size = 1232;  // CoreDNS's default: the DNS flag day 2020 value
  if (!line.args.empty()) {
    const auto v = parseUnsigned(line.args[0].text);
    if (!v || *v < 512 || *v > 4096) {  // RFC 6891's range, as CoreDNS checks it
      pluginError(line.args[0], kPlugin,
                  "buffer size must be a number from 512 to 4096: '" + line.args[0].text + "'");
    }
    size = static_cast<uint16_t>(*v);
  }
  block.bufsize = size;  // several lines: the last one wins
}

void parseLoadbalance(const Line& line, ServerBlock& block) {
  constexpr std::string_view kPlugin = "loadbalance";
  expectArgs(line, kPlugin, 0, 1);
  expectNoBlock(line, kPlugin);
  if (!line.args.empty() && line.args[0].text != "round_robin") {
    // CoreDNS 1.10 (the upstream image) knows only round_robin; `weighted` came later.
    pluginError(line.args[0], kPlugin, "unknown policy: " + line.args[0].text);
  }
  block.loadbalance = true;
}

namespace {

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return s;
}

// miekg/dns StringToType for the types a template is written for; TYPEnnn for the rest.
std::optional<uint16_t> typeFromString(const std::string& s) {
  static const std::pair<const char*, uint16_t> kTypes[] = {
      {"A", 1},      {"NS", 2},     {"CNAME", 5}, {"SOA", 6},     {"PTR", 12},   {"HINFO", 13},
      {"MX", 15},    {"TXT", 16},   {"AAAA", 28}, {"SRV", 33},    {"NAPTR", 35}, {"DS", 43},
      {"SSHFP", 44}, {"RRSIG", 46}, {"NSEC", 47}, {"DNSKEY", 48}, {"NSEC3", 50}, {"TLSA", 52},
      {"SVCB", 64},  {"HTTPS", 65}, {"CAA", 257}, {"ANY", 255}};
  for (const auto& [n, v] : kTypes) {
    if (s == n) return v;
  }
  if (s.size() > 4 && s.compare(0, 4, "TYPE") == 0) {
    const auto v = parseUnsigned(s.substr(4));
    if (v && *v <= 65535) return static_cast<uint16_t>(*v);
  }
  return std::nullopt;
}

}  // namespace

TemplateConfig parseTemplate(const Line& line, const std::vector<std::string>& zones) {
  // CoreDNS 1.10 plugin/template setup.go, without the record sections (see TemplateConfig).
  constexpr std::string_view kPlugin = "template";
  TemplateConfig t;
  if (line.args.size() < 2) argError(line.args.empty() ? line.head : line.args.back(), kPlugin);
  const std::string cls = upper(line.args[0].text);
  if (cls == "IN") {
    t.qclass = 1;
  } else if (cls == "CH" || cls == "CHAOS") {
    t.qclass = 3;
  } else if (cls == "HS") {
    t.qclass = 4;
  } else if (cls == "NONE") {
    t.qclass = 254;
  } else if (cls == "ANY") {
    t.qclass = 255;
  } else {
    pluginError(line.args[0], kPlugin, "invalid query class " + line.args[0].text);
  }
  const auto type = typeFromString(upper(line.args[1].text));
  if (!type) pluginError(line.args[1], kPlugin, "invalid RR class " + line.args[1].text);
  t.qtype = *type;
  t.zones = zones;
  if (line.args.size() > 2) {
    t.zones.clear();
    for (size_t i = 2; i < line.args.size(); ++i) {
      for (auto& z : zonesArg(line.args[i], kPlugin)) t.zones.push_back(std::move(z));
    }
  }
  for (const Line& sub : line.block) {
    expectNoBlock(sub, kPlugin);
    const std::string& name = sub.head.text;
    if (name == "match") {
      if (sub.args.empty()) argError(sub.head, kPlugin);
      for (const Token& r : sub.args) {
        const re2::RE2 re(r.text, re2::RE2::Quiet);  // RE2 speaks Go's regexp syntax
        if (!re.ok()) {
          pluginError(r, kPlugin, "could not parse regex: " + r.text + ", " + re.error());
        }
        t.match.push_back(r.text);
      }
    } else if (name == "rcode") {
      expectArgs(sub, kPlugin, 1, 1);
      static const std::pair<const char*, uint8_t> kRcodes[] = {
          {"NOERROR", 0}, {"FORMERR", 1}, {"SERVFAIL", 2}, {"NXDOMAIN", 3},
          {"NOTIMP", 4},  {"REFUSED", 5}, {"YXDOMAIN", 6}, {"YXRRSET", 7},
          {"NXRRSET", 8}, {"NOTAUTH", 9}, {"NOTZONE", 10}};
      const std::string rc = upper(sub.args[0].text);
      bool found = false;
      for (const auto& [n, v] : kRcodes) {
        if (rc == n) {
          t.rcode = v;
          found = true;
        }
      }
      if (!found) pluginError(sub.args[0], kPlugin, "unknown rcode " + sub.args[0].text);
    } else if (name == "fallthrough") {
      t.fallthrough = true;
      t.fallthrough_zones.clear();
      for (const Token& z : sub.args) {
        for (auto& n : zonesArg(z, kPlugin)) t.fallthrough_zones.push_back(std::move(n));
      }
    } else if (name == "upstream") {
      // Deprecated and ignored by CoreDNS 1.10 as well.
    } else if (name == "answer" || name == "additional" || name == "authority") {
      if (sub.args.empty()) argError(sub.head, kPlugin);
      for (const Token& a : sub.args) {
        if (auto compiled = GoTemplate::compile(a.text); !compiled) {
          pluginError(a, kPlugin,
                      "could not compile template: " + a.text + ", " + compiled.error().message());
        }
        (name == "answer"       ? t.answer
         : name == "additional" ? t.additional
                                : t.authority)
            .push_back(a.text);
      }
    } else {
      argError(sub.head, kPlugin);
    }
  }
  return t;
}

HostsConfig parseHosts(const Line& line, const std::vector<std::string>& zones) {
  // CoreDNS 1.10 plugin/hosts setup.go: `hosts [FILE [ZONES...]]`, then a block whose unknown
  // lines are inline hosts-file entries (only before a `fallthrough` line).
  constexpr std::string_view kPlugin = "hosts";
  HostsConfig h;
  h.line = line.head.line;
  h.zones = zones;
  if (!line.args.empty()) {
    h.file = line.args[0].text;
    if (h.file.empty()) pluginError(line.args[0], kPlugin, "empty hosts file name");
    if (line.args.size() > 1) {
      h.zones.clear();
      for (size_t i = 1; i < line.args.size(); ++i) {
        for (auto& z : zonesArg(line.args[i], kPlugin)) h.zones.push_back(std::move(z));
      }
    }
  }
  for (const Line& sub : line.block) {
    expectNoBlock(sub, kPlugin);
    const std::string& name = sub.head.text;
    if (name == "fallthrough") {
      h.fallthrough = true;
      h.fallthrough_zones.clear();
      for (const Token& t : sub.args) {
        for (auto& z : zonesArg(t, kPlugin)) h.fallthrough_zones.push_back(std::move(z));
      }
    } else if (name == "no_reverse") {
      h.reverse = false;
    } else if (name == "ttl") {
      if (sub.args.empty()) pluginError(sub.head, kPlugin, "ttl needs a time in second");
      const auto v = parseUnsigned(sub.args[0].text);
      if (!v) pluginError(sub.args[0], kPlugin, "ttl needs a number of second");
      if (*v == 0 || *v > 65535) pluginError(sub.args[0], kPlugin, "ttl provided is invalid");
      h.ttl = static_cast<uint32_t>(*v);
    } else if (name == "reload") {
      if (sub.args.size() != 1) {
        pluginError(sub.head, kPlugin, "reload needs a duration (zero seconds to disable)");
      }
      auto d = parseGoDuration(sub.args[0].text);
      if (!d) {
        pluginError(sub.args[0], kPlugin, "invalid duration for reload '" + sub.args[0].text + "'");
      }
      if (*d < std::chrono::nanoseconds(0)) {
        pluginError(sub.args[0], kPlugin,
                    "invalid negative duration for reload '" + sub.args[0].text + "'");
      }
      h.reload = *d;
    } else if (!h.fallthrough) {
      std::string entry = name;
      for (const Token& t : sub.args) entry += " " + t.text;
      h.inline_lines.push_back(std::move(entry));
    } else {
      pluginError(sub.head, kPlugin, "unknown property '" + name + "'");
    }
  }
  return h;
}

void parseRewrite(const Line& line, ServerBlock& block) {
  constexpr std::string_view kPlugin = "rewrite";
  std::vector<std::string> args;
  for (const Token& t : line.args) args.push_back(t.text);
  if (line.has_block) {
    // CoreDNS reads a block only after fewer than two arguments (`rewrite [stop|continue] {`)
    // and then takes all of its tokens as the rule's arguments.
    if (args.size() >= 2) {
      pluginError(line.open_brace, kPlugin,
                  "a block follows only `rewrite`, `rewrite stop` or "
                  "`rewrite continue`");
    }
    for (const Line& sub : line.block) {
      if (sub.has_block) pluginError(sub.open_brace, kPlugin, "nested blocks are not allowed");
      args.push_back(sub.head.text);
      for (const Token& t : sub.args) args.push_back(t.text);
    }
  }
  try {
    // Compiled here only to report a bad rule with its file:line; the server compiles its own.
    dns::rewrite::Rewriter check;
    check.addRule(args);
  } catch (const std::invalid_argument& e) {
    pluginError(line.head, kPlugin, e.what());
  }
  block.rewrites.push_back(std::move(args));
}

void parseTimeouts(const Line& line, ServerBlock& block) {
  constexpr std::string_view kPlugin = "timeouts";
  expectArgs(line, kPlugin, 0, 0);
  TimeoutsConfig t = block.timeouts.value_or(TimeoutsConfig{});
  for (const Line& sub : line.block) {
    expectNoBlock(sub, kPlugin);
    expectArgs(sub, kPlugin, 1, 1);
    // CoreDNS's durations.NewDurationFromArg: a Go duration, or a plain number of seconds.
    const std::string& text = sub.args[0].text;
    std::optional<std::chrono::nanoseconds> d;
    if (const auto secs = parseUnsigned(text)) {
      d = std::chrono::seconds(*secs);
    } else if (const auto go = parseGoDuration(text)) {
      d = *go;
    }
    if (!d) pluginError(sub.args[0], kPlugin, "invalid duration '" + text + "'");
    if (*d < std::chrono::seconds(1) || *d > std::chrono::hours(24)) {
      pluginError(sub.args[0], kPlugin,
                  "timeout provided '" + formatGoDuration(*d) +
                      "' needs to be between 1 second and 24 hours");
    }
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*d);
    const std::string& name = sub.head.text;
    if (name == "read") {
      t.read = ms;
    } else if (name == "write") {
      t.write = ms;
    } else if (name == "idle") {
      t.idle = ms;
    } else {
      pluginError(sub.head, kPlugin, "unknown option: '" + name + "'");
    }
  }
  if (line.block.empty())
    pluginError(line.head, kPlugin, "timeouts block with no timeouts specified");
  block.timeouts = t;
}

}  // namespace nld::config::detail
