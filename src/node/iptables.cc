#include "node/iptables.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <map>

#include "common/log.h"
#include "net/address.h"
#include "node/process.h"

namespace nld::node {
namespace {

// Canonical bytes of "IP" or "IP/32" / "IP/128" (host prefix only); false otherwise.
bool hostAddress(std::string_view text, std::array<uint8_t, 17>* out) {
  std::string s(text);
  std::string prefix;
  const size_t slash = s.find('/');
  if (slash != std::string::npos) {
    prefix = s.substr(slash + 1);
    s.resize(slash);
  }
  out->fill(0);
  const auto ip = net::parseIp(s);
  if (!ip) return false;
  std::array<uint8_t, 16> bytes{};
  const bool v4 = ip->addressBytes(bytes) == 4;
  std::copy(bytes.begin(), bytes.end(), out->begin() + 1);
  (*out)[0] = v4 ? 4 : 6;
  return prefix.empty() || prefix == (v4 ? "32" : "128");
}

bool sameIp(const std::string& a, const std::string& b) {
  if (a.empty() || b.empty()) return a.empty() && b.empty();
  std::array<uint8_t, 17> x{}, y{};
  return hostAddress(a, &x) && hostAddress(b, &y) && x == y;
}

bool parsePort(std::string_view s, uint16_t* out) {
  unsigned v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v == 0 || v > 65535) return false;
  *out = static_cast<uint16_t>(v);
  return true;
}

bool mentionsLock(std::string_view msg) {
  return msg.find("holding the xtables lock") != std::string_view::npos ||
         msg.find("xtables lock") != std::string_view::npos;
}

std::string oneLine(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s;
}

}  // namespace

std::vector<std::string> IptablesRule::args() const {
  std::vector<std::string> a{"-p", protocol};
  if (!destination.empty()) {
    a.insert(a.end(), {"-d", destination});
  }
  if (destination_port != 0) a.insert(a.end(), {"--dport", std::to_string(destination_port)});
  if (!source.empty()) a.insert(a.end(), {"-s", source});
  if (source_port != 0) a.insert(a.end(), {"--sport", std::to_string(source_port)});
  a.insert(a.end(), {"-j", target});
  if (!comment.empty()) a.insert(a.end(), {"-m", "comment", "--comment", comment});
  return a;
}

std::string IptablesRule::toString() const {
  std::string s = "{" + table + " " + chain + " [";
  const auto a = args();
  for (size_t i = 0; i < a.size(); ++i) s += (i ? " " : "") + a[i];
  return s + "]}";
}

bool IptablesRule::sameAs(const IptablesRule& o) const {
  return table == o.table && chain == o.chain && protocol == o.protocol &&
         source_port == o.source_port && destination_port == o.destination_port &&
         target == o.target && comment == o.comment && sameIp(source, o.source) &&
         sameIp(destination, o.destination);
}

bool IptablesRule::operator==(const IptablesRule& o) const {
  return table == o.table && chain == o.chain && protocol == o.protocol && source == o.source &&
         destination == o.destination && source_port == o.source_port &&
         destination_port == o.destination_port && target == o.target && comment == o.comment;
}

std::vector<IptablesRule> nodeLocalDnsRules(const std::vector<LocalIp>& ips, uint16_t dns_port,
                                            uint16_t health_port) {
  const std::string skip(kCommentSkipConntrack);
  const std::string allow(kCommentAllowTraffic);
  std::vector<IptablesRule> rules;
  auto to = [&](const char* table, const char* chain, const char* proto, const std::string& ip,
                uint16_t port, const char* target, const std::string& comment) {
    rules.push_back({table, chain, proto, "", ip, 0, port, target, comment});
  };
  auto from = [&](const char* table, const char* chain, const char* proto, const std::string& ip,
                  uint16_t port, const char* target, const std::string& comment) {
    rules.push_back({table, chain, proto, ip, "", port, 0, target, comment});
  };
  for (const LocalIp& lip : ips) {
    const std::string& ip = lip.text;
    to("raw", "PREROUTING", "tcp", ip, dns_port, "NOTRACK", skip);   // 1
    to("raw", "PREROUTING", "udp", ip, dns_port, "NOTRACK", skip);   // 2
    to("filter", "INPUT", "tcp", ip, dns_port, "ACCEPT", allow);     // 3
    to("filter", "INPUT", "udp", ip, dns_port, "ACCEPT", allow);     // 4
    from("raw", "OUTPUT", "tcp", ip, dns_port, "NOTRACK", skip);     // 5
    from("raw", "OUTPUT", "udp", ip, dns_port, "NOTRACK", skip);     // 6
    from("filter", "OUTPUT", "tcp", ip, dns_port, "ACCEPT", allow);  // 7
    from("filter", "OUTPUT", "udp", ip, dns_port, "ACCEPT", allow);  // 8
    to("raw", "OUTPUT", "tcp", ip, dns_port, "NOTRACK", skip);       // 9
    to("raw", "OUTPUT", "udp", ip, dns_port, "NOTRACK", skip);       // 10
    to("raw", "OUTPUT", "tcp", ip, health_port, "NOTRACK", skip);    // 11
    from("raw", "OUTPUT", "tcp", ip, health_port, "NOTRACK", skip);  // 12
  }
  return rules;
}

std::vector<std::string> splitSavedLine(std::string_view line) {
  std::vector<std::string> words;
  std::string cur;
  bool in_word = false, quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (c == '\\' && i + 1 < line.size()) {
      cur += line[++i];
      in_word = true;
    } else if (c == '"') {
      quoted = !quoted;
      in_word = true;
    } else if (!quoted && (c == ' ' || c == '\t' || c == '\n' || c == '\r')) {
      if (in_word) words.push_back(std::move(cur));
      cur.clear();
      in_word = false;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (in_word) words.push_back(std::move(cur));
  return words;
}

std::string restoreQuote(std::string_view arg) {
  if (!arg.empty() && arg.find_first_of(" \t\"\\'") == std::string_view::npos)
    return std::string(arg);
  std::string out = "\"";
  for (char c : arg) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

bool parseSavedRule(std::string_view line, const std::string& table, IptablesRule* out) {
  const std::vector<std::string> w = splitSavedLine(line);
  if (w.size() < 2 || w[0] != "-A") return false;
  IptablesRule r;
  r.table = table;
  r.chain = w[1];
  for (size_t i = 2; i < w.size(); ++i) {
    const std::string& k = w[i];
    const bool has_value = i + 1 < w.size();
    if (!has_value) return false;
    const std::string& v = w[++i];
    if (k == "-s") {
      r.source = v;
    } else if (k == "-d") {
      r.destination = v;
    } else if (k == "-p") {
      r.protocol = v;
    } else if (k == "-m") {
      if (v != "tcp" && v != "udp" && v != "comment") return false;
    } else if (k == "--sport") {
      if (!parsePort(v, &r.source_port)) return false;
    } else if (k == "--dport") {
      if (!parsePort(v, &r.destination_port)) return false;
    } else if (k == "--comment") {
      r.comment = v;
    } else if (k == "-j") {
      r.target = v;
    } else {
      return false;  // negations, other matches, target options: not one of ours
    }
  }
  *out = std::move(r);
  return true;
}

Iptables::Iptables(IptablesSettings settings, std::vector<IptablesRule> rules,
                   ErrorCallback on_error)
    : settings_(std::move(settings)), rules_(std::move(rules)), on_error_(std::move(on_error)) {
  const bool v6 = settings_.family == LocalIp::kInet6;
  settings_.family = v6 ? AF_INET6 : AF_INET;
  if (settings_.iptables_binary.empty()) settings_.iptables_binary = v6 ? "ip6tables" : "iptables";
  if (settings_.runner == nullptr) settings_.runner = &systemProcesses();
  if (settings_.restore_binary.empty()) {
    settings_.restore_binary = v6 ? "ip6tables-restore" : "iptables-restore";
  }
}

bool Iptables::fail(std::string message) {
  log::error("{}", message);
  const std::string_view type = mentionsLock(message) ? "iptables_lock" : "iptables";
  last_error_ = std::move(message);
  if (on_error_) on_error_(type);
  return false;
}

std::vector<std::string> Iptables::tables() const {
  std::vector<std::string> t;
  for (const auto& r : rules_) {
    if (std::find(t.begin(), t.end(), r.table) == t.end()) t.push_back(r.table);
  }
  return t;
}

bool Iptables::listTable(const std::string& table, std::vector<IptablesRule>* out) {
  const ProcessResult res = settings_.runner->run(
      {settings_.iptables_binary, "-w", "5", "-t", table, "-S"}, {}, settings_.command_timeout);
  if (!res.ok()) {
    return fail("Error listing " + settings_.iptables_binary + " table " + table + ": " +
                oneLine(res.err.empty() ? "exit code " + std::to_string(res.exit_code) : res.err));
  }
  out->clear();
  size_t start = 0;
  while (start < res.out.size()) {
    size_t end = res.out.find('\n', start);
    if (end == std::string::npos) end = res.out.size();
    IptablesRule r;
    if (parseSavedRule(std::string_view(res.out).substr(start, end - start), table, &r)) {
      out->push_back(std::move(r));
    }
    start = end + 1;
  }
  return true;
}

bool Iptables::restore(const std::string& batch) {
  const ProcessResult res = settings_.runner->run(
      {settings_.restore_binary, "-w", "5", "--noflush"}, batch, settings_.command_timeout);
  if (!res.ok()) {
    log::debug("{} input was:\n{}", settings_.restore_binary, batch);
    return fail("Error running " + settings_.restore_binary + ": " +
                oneLine(res.err.empty() ? "exit code " + std::to_string(res.exit_code) : res.err));
  }
  return true;
}

int Iptables::countInstalled(const IptablesRule& rule) {
  std::vector<IptablesRule> installed;
  if (!listTable(rule.table, &installed)) return -1;
  return static_cast<int>(std::count_if(installed.begin(), installed.end(),
                                        [&](const IptablesRule& r) { return r.sameAs(rule); }));
}

int Iptables::ensure() {
  last_error_.clear();
  std::map<std::string, std::vector<IptablesRule>> installed;
  for (const auto& table : tables()) {
    if (!listTable(table, &installed[table])) return -1;
  }
  std::map<std::string, std::string> lines;  // table → "-I ..." lines
  std::vector<const IptablesRule*> added;
  for (const IptablesRule& rule : rules_) {
    auto& have = installed[rule.table];
    const bool present = std::any_of(have.begin(), have.end(),
                                     [&](const IptablesRule& r) { return r.sameAs(rule); });
    const bool queued = std::any_of(added.begin(), added.end(),
                                    [&](const IptablesRule* r) { return r->sameAs(rule); });
    if (present || queued) continue;
    std::string line = "-I " + rule.chain + " 1";
    for (const auto& a : rule.args()) line += " " + restoreQuote(a);
    lines[rule.table] += line + "\n";
    added.push_back(&rule);
  }
  if (added.empty()) return 0;
  std::string batch;
  for (const auto& table : tables()) {  // tables in rule-list order
    if (lines.count(table) == 0) continue;
    batch += "*" + table + "\n" + lines[table] + "COMMIT\n";
  }
  if (!restore(batch)) {
    for (const IptablesRule* r : added) {
      log::error("Error checking/adding iptables rule {}, error - {}", r->toString(), last_error_);
    }
    return -1;
  }
  for (const IptablesRule* r : added) log::info("Added back nodelocaldns rule - {}", r->toString());
  return static_cast<int>(added.size());
}

bool Iptables::teardown() {
  last_error_.clear();
  for (int round = 0; round < settings_.teardown_rounds; ++round) {
    std::map<std::string, std::vector<IptablesRule>> installed;
    for (const auto& table : tables()) {
      if (!listTable(table, &installed[table])) return false;
    }
    // One copy of each installed rule per round: deleting the same rule twice in one
    // iptables-restore transaction is not reliable across backends; re-listing handles duplicates.
    std::map<std::string, std::string> lines;
    std::vector<const IptablesRule*> queued;
    for (const IptablesRule& rule : rules_) {
      auto& have = installed[rule.table];
      const auto it = std::find_if(have.begin(), have.end(),
                                   [&](const IptablesRule& r) { return r.sameAs(rule); });
      if (it == have.end()) continue;
      if (std::any_of(queued.begin(), queued.end(),
                      [&](const IptablesRule* r) { return r->sameAs(rule); })) {
        continue;
      }
      std::string line = "-D " + rule.chain;
      for (const auto& a : rule.args()) line += " " + restoreQuote(a);
      lines[rule.table] += line + "\n";
      queued.push_back(&rule);
    }
    if (queued.empty()) return true;
    std::string batch;
    for (const auto& table : tables()) {
      if (lines.count(table) == 0) continue;
      batch += "*" + table + "\n" + lines[table] + "COMMIT\n";
    }
    if (!restore(batch)) return false;
  }
  return fail("iptables teardown: rules still present after " +
              std::to_string(settings_.teardown_rounds) + " delete rounds");
}

}  // namespace nld::node
