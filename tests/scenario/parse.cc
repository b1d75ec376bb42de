// The scenario file parser (grammar: tests/scenario/README.md). Every problem is a
// ScenarioError "file:line: ..." so a broken case points at its line.
#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "dns/message.h"
#include "dns/name.h"
#include "scenario/scenario.h"

namespace nld::test::scenario {
namespace {

struct Ctx {
  const std::string& file;
  int line;
  [[noreturn]] void fail(const std::string& what) const {
    throw ScenarioError(file + ":" + std::to_string(line) + ": " + what);
  }
};

std::vector<std::string> words(std::string_view s) {
  std::vector<std::string> out;
  std::istringstream in{std::string(s)};
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
  return s;
}

uint64_t number(const Ctx& c, std::string_view s, std::string_view what, uint64_t max) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v > max) {
    c.fail("bad " + std::string(what) + " '" + std::string(s) + "'");
  }
  return v;
}

bool flagValue(const Ctx& c, std::string_view s, std::string_view key) {
  if (s == "1") return true;
  if (s == "0") return false;
  c.fail(std::string(key) + "= takes 0 or 1, not '" + std::string(s) + "'");
}

uint16_t qtypeOf(const Ctx& c, const std::string& word) {
  static const std::pair<const char*, uint16_t> kTypes[] = {
      {"A", dns::type::A},        {"AAAA", dns::type::AAAA}, {"CNAME", dns::type::CNAME},
      {"TXT", dns::type::TXT},    {"SOA", dns::type::SOA},   {"NS", dns::type::NS},
      {"MX", dns::type::MX},      {"PTR", dns::type::PTR},   {"SRV", dns::type::SRV},
      {"HTTPS", dns::type::HTTPS}};
  const std::string u = upper(word);
  for (const auto& [n, t] : kTypes) {
    if (u == n) return t;
  }
  c.fail("unknown type '" + word + "'");
}

uint16_t rcodeOf(const Ctx& c, const std::string& word) {
  static const std::pair<const char*, uint16_t> kRcodes[] = {
      {"NOERROR", dns::rcode::NoError},   {"FORMERR", dns::rcode::FormErr},
      {"SERVFAIL", dns::rcode::ServFail}, {"NXDOMAIN", dns::rcode::NxDomain},
      {"NOTIMP", dns::rcode::NotImp},     {"REFUSED", dns::rcode::Refused}};
  for (const auto& [n, r] : kRcodes) {
    if (word == n) return r;
  }
  c.fail("unknown rcode '" + word + "' (NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED)");
}

std::string checkedName(const Ctx& c, const std::string& s) {
  if (!dns::Name::fromString(s)) c.fail("bad name '" + s + "'");
  return s;
}

std::chrono::milliseconds duration(const Ctx& c, const std::string& s) {
  if (s.size() < 3 || s[0] != '+') c.fail("time takes +N(ms|s|m|h), not '" + s + "'");
  size_t unit = s.find_first_not_of("0123456789", 1);
  if (unit == std::string::npos || unit == 1) c.fail("time takes +N(ms|s|m|h), not '" + s + "'");
  const uint64_t n = number(c, std::string_view(s).substr(1, unit - 1), "time", 1u << 30);
  const std::string u = s.substr(unit);
  if (u == "ms") return std::chrono::milliseconds(n);
  if (u == "s") return std::chrono::seconds(n);
  if (u == "m") return std::chrono::minutes(n);
  if (u == "h") return std::chrono::hours(n);
  c.fail("time unit '" + u + "' is not ms, s, m or h");
}

/// Reads one record starting at words[i] (its type); advances i past it. `ttl` and `section`
/// come from the preceding ttl= / authority words.
Record record(const Ctx& c, const std::vector<std::string>& w, size_t& i, uint32_t ttl,
              uint8_t section, bool for_answer) {
  Record r;
  r.section = section;
  r.ttl = ttl;
  r.type = qtypeOf(c, w[i]);
  if (i + 1 >= w.size()) c.fail(w[i] + " needs a value");
  r.value = w[i + 1];
  i += 2;
  switch (r.type) {
    case dns::type::A: {
      in_addr a{};
      if (inet_pton(AF_INET, r.value.c_str(), &a) != 1) c.fail("bad IPv4 address " + r.value);
      break;
    }
    case dns::type::AAAA: {
      in6_addr a{};
      if (inet_pton(AF_INET6, r.value.c_str(), &a) != 1) c.fail("bad IPv6 address " + r.value);
      break;
    }
    case dns::type::TXT:
      if (r.value.size() > 255) c.fail("TXT string longer than 255");
      break;
    case dns::type::CNAME:
      if (!for_answer) c.fail("CNAME values are not compared in client expect");
      checkedName(c, r.value);
      break;
    case dns::type::SOA:
      if (!for_answer) c.fail("SOA values are not compared in client expect; use ns=/ttl=");
      checkedName(c, r.value);
      if (i >= w.size()) c.fail("SOA needs ZONE MINIMUM");
      r.soa_minimum = static_cast<uint32_t>(number(c, w[i], "SOA minimum", UINT32_MAX));
      ++i;
      break;
    default:
      c.fail("records of type " + w[i - 2] + " are not supported here");
  }
  return r;
}

QueryStep queryStep(const Ctx& c, const std::vector<std::string>& w) {
  if (w.size() < 4) c.fail("query needs NAME TYPE");
  QueryStep q;
  q.name = checkedName(c, w[2]);
  q.qtype = qtypeOf(c, w[3]);
  for (size_t i = 4; i < w.size(); ++i) {
    if (w[i] == "+do") {
      q.dnssec_ok = q.edns = true;
    } else if (w[i] == "+cd") {
      q.cd = true;
    } else if (w[i] == "+edns") {
      q.edns = true;
    } else if (w[i] == "tcp") {
      q.tcp = true;
    } else if (w[i].starts_with("id=")) {
      q.id = static_cast<uint16_t>(number(c, std::string_view(w[i]).substr(3), "id", 65535));
    } else {
      c.fail("unknown query option '" + w[i] + "' (+do +cd +edns tcp id=N)");
    }
  }
  return q;
}

UpstreamExpectStep upstreamExpect(const Ctx& c, const std::vector<std::string>& w) {
  UpstreamExpectStep e;
  if (w.size() == 4 && w[3] == "nothing") {
    e.nothing = true;
    return e;
  }
  if (w.size() < 5) c.fail("upstream expect needs NAME TYPE (or 'nothing')");
  e.name = checkedName(c, w[3]);
  e.qtype = qtypeOf(c, w[4]);
  for (size_t i = 5; i < w.size(); ++i) {
    if (w[i] == "tcp") {
      e.tcp = true;
    } else if (w[i] == "udp") {
      e.tcp = false;
    } else if (w[i].starts_with("do=")) {
      e.dnssec_ok = flagValue(c, std::string_view(w[i]).substr(3), "do");
    } else if (w[i].starts_with("cd=")) {
      e.cd = flagValue(c, std::string_view(w[i]).substr(3), "cd");
    } else {
      c.fail("unknown upstream expect option '" + w[i] + "' (tcp udp do= cd=)");
    }
  }
  return e;
}

UpstreamAnswerStep upstreamAnswer(const Ctx& c, const std::vector<std::string>& w) {
  if (w.size() < 4) c.fail("upstream answer needs an RCODE");
  UpstreamAnswerStep a;
  a.rcode = rcodeOf(c, w[3]);
  uint32_t ttl = 300;
  uint8_t section = 0;
  for (size_t i = 4; i < w.size();) {
    if (w[i].starts_with("ttl=")) {
      ttl = static_cast<uint32_t>(number(c, std::string_view(w[i]).substr(4), "ttl", UINT32_MAX));
      ++i;
    } else if (w[i] == "aa") {
      a.aa = true;
      ++i;
    } else if (w[i] == "tc") {
      a.tc = true;
      ++i;
    } else if (w[i] == "ad") {
      a.ad = true;
      ++i;
    } else if (w[i] == "authority") {
      section = 1;
      ++i;
    } else {
      a.records.push_back(record(c, w, i, ttl, section, true));
    }
  }
  return a;
}

ClientExpectStep clientExpect(const Ctx& c, const std::vector<std::string>& w) {
  ClientExpectStep e;
  size_t i = 3;
  if (i < w.size() && w[i].starts_with("#")) {
    e.query = number(c, std::string_view(w[i]).substr(1), "query number", 1u << 20);
    if (*e.query == 0) c.fail("queries are numbered from #1");
    ++i;
  }
  if (i < w.size() && w[i] == "nothing") {
    if (e.query) c.fail("'expect nothing' is about every query; drop the #N");
    if (i + 1 != w.size()) c.fail("nothing after 'nothing'");
    e.nothing = true;
    return e;
  }
  if (i >= w.size()) c.fail("client expect needs an RCODE (or 'nothing')");
  e.rcode = rcodeOf(c, w[i++]);
  for (; i < w.size();) {
    const std::string& x = w[i];
    const size_t eq = x.find('=');
    if (eq != std::string::npos) {
      const std::string key = x.substr(0, eq);
      const std::string_view v = std::string_view(x).substr(eq + 1);
      if (key == "ttl") {
        e.ttl = static_cast<uint32_t>(number(c, v, "ttl", UINT32_MAX));
      } else if (key == "aa") {
        e.aa = flagValue(c, v, key);
      } else if (key == "tc") {
        e.tc = flagValue(c, v, key);
      } else if (key == "ad") {
        e.ad = flagValue(c, v, key);
      } else if (key == "cd") {
        e.cd = flagValue(c, v, key);
      } else if (key == "an") {
        e.an = number(c, v, "an", 65535);
      } else if (key == "ns") {
        e.ns = number(c, v, "ns", 65535);
      } else if (key == "qname") {
        std::string n = checkedName(c, std::string(v));
        if (!n.ends_with('.')) n += '.';
        e.qname = n;
      } else {
        c.fail("unknown client expect key '" + key + "' (ttl aa tc ad cd an ns qname)");
      }
      ++i;
    } else {
      e.check_records = true;
      e.records.push_back(record(c, w, i, 0, 0, false));
    }
  }
  return e;
}

/// Strips the common indentation of the Corefile lines.
std::string dedent(const std::vector<std::string>& lines) {
  size_t indent = std::string::npos;
  for (const auto& l : lines) {
    const size_t p = l.find_first_not_of(" \t");
    if (p != std::string::npos) indent = std::min(indent, p);
  }
  std::string out;
  for (const auto& l : lines) {
    out += l.size() > indent ? l.substr(indent) : std::string();
    out += '\n';
  }
  return out;
}

}  // namespace

Scenario parseScenario(std::string_view text, const std::string& file) {
  Scenario s;
  s.file = file;
  std::vector<std::string> lines;
  for (size_t start = 0; start <= text.size();) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    lines.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  bool have_corefile = false;
  for (size_t n = 0; n < lines.size(); ++n) {
    const Ctx c{file, static_cast<int>(n + 1)};
    const std::string& line = lines[n];
    const size_t first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#') continue;
    if (line.rfind("corefile:", 0) == 0) {
      if (have_corefile) c.fail("a second corefile:");
      if (!s.steps.empty()) c.fail("corefile: must come before the steps");
      if (line.find_first_not_of(" \t\r", 9) != std::string::npos) {
        c.fail("the Corefile goes on the indented lines after 'corefile:'");
      }
      have_corefile = true;
      s.corefile_line = c.line + 1;
      std::vector<std::string> block;
      while (n + 1 < lines.size() &&
             (lines[n + 1].empty() || lines[n + 1][0] == ' ' || lines[n + 1][0] == '\t')) {
        block.push_back(lines[++n]);
      }
      s.corefile = dedent(block);
      if (s.corefile.find_first_not_of(" \t\r\n") == std::string::npos) c.fail("empty corefile:");
      continue;
    }
    if (first != 0) c.fail("unexpected indentation (only the Corefile is indented)");
    const auto w = words(line);
    if (w[0] != "step") c.fail("expected 'corefile:' or 'step', not '" + w[0] + "'");
    if (!have_corefile) c.fail("a step before corefile:");
    if (w.size() < 2) c.fail("step needs a kind (query, upstream, time, client)");
    Step st;
    st.line = c.line;
    std::string kind = w[1];
    if (kind.starts_with("upstream") && kind.size() > 8) {
      // upstream2, upstream3: the second and third upstream (UPSTREAM2, UPSTREAM3).
      st.upstream = number(c, std::string_view(kind).substr(8), "upstream number", kUpstreams);
      if (st.upstream == 0) c.fail("upstreams are numbered from 1");
      kind = "upstream";
    }
    if (kind == "query") {
      st.kind = Step::Kind::kQuery;
      st.query = queryStep(c, w);
    } else if (kind == "upstream" && w.size() >= 3 && w[2] == "expect") {
      st.kind = Step::Kind::kUpstreamExpect;
      st.upstream_expect = upstreamExpect(c, w);
    } else if (kind == "upstream" && w.size() >= 3 && w[2] == "answer") {
      st.kind = Step::Kind::kUpstreamAnswer;
      st.upstream_answer = upstreamAnswer(c, w);
    } else if (kind == "upstream" && w.size() == 3 && w[2] == "drop") {
      st.kind = Step::Kind::kUpstreamDrop;
    } else if (kind == "upstream") {
      c.fail("upstream takes expect, answer or drop");
    } else if (kind == "time") {
      if (w.size() != 3) c.fail("time takes one +DURATION");
      st.kind = Step::Kind::kTime;
      st.time = duration(c, w[2]);
    } else if (kind == "client" && w.size() >= 3 && w[2] == "expect") {
      st.kind = Step::Kind::kClientExpect;
      st.client_expect = clientExpect(c, w);
    } else {
      c.fail("unknown step '" + kind +
             "' (query, upstream expect/answer/drop, time, client "
             "expect)");
    }
    s.steps.push_back(std::move(st));
  }
  if (!have_corefile) throw ScenarioError(file + ":1: no corefile:");
  return s;
}

Scenario loadScenario(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ScenarioError(path + ": cannot read");
  std::stringstream ss;
  ss << in.rdbuf();
  return parseScenario(ss.str(), std::filesystem::path(path).filename().string());
}

std::vector<std::string> listScenarios(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().extension() == ".scn") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace nld::test::scenario
