#include "dns/rewrite.h"

#include <re2/re2.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace nld::dns::rewrite {

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(asciiLower(c)); });
  return s;
}

// plugin.Name(s).Normalize(): lower case, fully qualified.
std::string normalizeName(const std::string& s) {
  std::string n = lower(s);
  if (n.empty() || n.back() != '.') n += '.';
  return n;
}

[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument(msg); }

// RE2 speaks Go's regexp syntax; CoreDNS compiles with regexp.Compile (unanchored).
std::shared_ptr<const re2::RE2> compile(const std::string& pattern, const std::string& to) {
  auto re = std::make_shared<const re2::RE2>(pattern, re2::RE2::Quiet);
  if (!re->ok()) fail("invalid regex pattern '" + pattern + "': " + re->error());
  // Every {n} of the replacement must name a group the pattern has (CoreDNS isValidRegexPattern).
  for (size_t i = to.find('{'); i != std::string::npos; i = to.find('{', i + 1)) {
    const size_t close = to.find('}', i);
    if (close == std::string::npos) break;
    const std::string digits = to.substr(i + 1, close - i - 1);
    if (digits.empty() || digits.size() > 3 ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    if (std::stoi(digits) > re->NumberOfCapturingGroups()) {
      fail("the rewrite regex pattern (" + pattern + ") does not have " + digits +
           " capture groups, but the replacement (" + to + ") uses {" + digits + "}");
    }
  }
  return re;
}

// Go's loop of strings.Replace over "{0}", "{1}"...: sequential, as CoreDNS does it.
std::string substituteGroups(const re2::RE2& re, const std::string& src,
                             const std::string& replacement, bool* matched) {
  const int n = re.NumberOfCapturingGroups() + 1;
  std::vector<re2::StringPiece> groups(static_cast<size_t>(n));
  *matched = re.Match(src, 0, src.size(), re2::RE2::UNANCHORED, groups.data(), n);
  if (!*matched) return src;
  std::string s = replacement;
  for (int g = 0; g < n; ++g) {
    const std::string key = "{" + std::to_string(g) + "}";
    const std::string value(groups[static_cast<size_t>(g)].data() ? groups[static_cast<size_t>(g)]
                                                                  : re2::StringPiece());
    for (size_t at = s.find(key); at != std::string::npos; at = s.find(key, at + value.size())) {
      s.replace(at, key.size(), value);
    }
  }
  return s;
}

std::vector<ResponseRule> parseAnswers(const std::vector<std::string>& args, size_t start,
                                       bool* answer_auto) {
  std::vector<ResponseRule> rules;
  bool names_set = false;
  size_t i = start;
  if (args.size() - start < 2) fail("invalid arguments for a name rule's answer rule");
  while (i < args.size()) {
    if (lower(args[i]) != "answer") {
      fail("exceeded the number of arguments for a name rule (expected 'answer', got '" + args[i] +
           "')");
    }
    if (++i == args.size()) fail("type missing for answer rule for name rule");
    const std::string kind = lower(args[i++]);
    if (kind == "auto") {
      *answer_auto = true;
      continue;
    }
    if (kind != "name" && kind != "value") {
      fail("invalid type \"" + kind + "\" for answer rule for name rule");
    }
    if (args.size() - i < 2) fail(kind + " answer rule for name rule: 2 arguments required");
    ResponseRule r;
    r.kind = kind == "name" ? ResponseRule::Kind::kName : ResponseRule::Kind::kValue;
    r.replacement = normalizeName(args[i + 1]);
    r.pattern = compile(args[i], r.replacement);
    rules.push_back(std::move(r));
    if (kind == "name") names_set = true;
    i += 2;
  }
  if (*answer_auto && names_set) {
    fail("auto name answer rule cannot be combined with explicit name answer rules");
  }
  return rules;
}

Rule parseName(const std::vector<std::string>& a) {
  Rule r;
  if (a.size() == 2) {
    r.match = Rule::Match::kExact;
    r.from = normalizeName(a[0]);
    r.to = normalizeName(a[1]);
  } else {
    const std::string m = lower(a[0]);
    if (m == "exact") {
      r.match = Rule::Match::kExact;
    } else if (m == "prefix") {
      r.match = Rule::Match::kPrefix;
    } else if (m == "suffix") {
      r.match = Rule::Match::kSuffix;
    } else if (m == "substring") {
      r.match = Rule::Match::kSubstring;
    } else if (m == "regex") {
      r.match = Rule::Match::kRegex;
    } else {
      fail(
          "name rule supports only exact, prefix, suffix, substring, and regex name matching, "
          "received: " +
          a[0]);
    }
    if (r.match == Rule::Match::kRegex) {
      r.to = normalizeName(a[2]);
      r.re = compile(a[1], r.to);
      r.from = a[1];
    } else {
      r.from = lower(a[1]);
      r.to = lower(a[2]);
      if (r.match == Rule::Match::kExact || r.match == Rule::Match::kSuffix) {
        if (r.from.empty() || r.from.back() != '.') r.from += '.';
        if (r.to.empty() || r.to.back() != '.') r.to += '.';
      }
    }
  }
  if (a.size() > 3) r.answers = parseAnswers(a, 3, &r.answer_auto);
  if (r.match == Rule::Match::kExact) {
    // CoreDNS 1.10 reverts an exact rule's answers by itself: owners matching TO (compiled as
    // an unanchored pattern, dots and all) become FROM.
    ResponseRule back;
    back.replacement = r.from;
    back.pattern = compile(r.to, back.replacement);
    r.answers.insert(r.answers.begin(), std::move(back));
  }
  return r;
}

bool nameMatches(const Rule& r, const std::string& name, std::string* out) {
  switch (r.match) {
    case Rule::Match::kExact:
      if (name != r.from) return false;
      *out = r.to;
      return true;
    case Rule::Match::kPrefix:
      if (!name.starts_with(r.from)) return false;
      *out = r.to + name.substr(r.from.size());
      return true;
    case Rule::Match::kSuffix:
      if (!name.ends_with(r.from)) return false;
      *out = name.substr(0, name.size() - r.from.size()) + r.to;
      return true;
    case Rule::Match::kSubstring: {
      if (r.from.empty() || name.find(r.from) == std::string::npos) return false;
      std::string s = name;
      for (size_t at = s.find(r.from); at != std::string::npos;
           at = s.find(r.from, at + r.to.size())) {
        s.replace(at, r.from.size(), r.to);
      }
      *out = std::move(s);
      return true;
    }
    case Rule::Match::kRegex: {
      bool matched = false;
      std::string s = substituteGroups(*r.re, name, r.to, &matched);
      if (!matched) return false;
      *out = std::move(s);
      return true;
    }
  }
  return false;
}

constexpr std::array<std::pair<std::string_view, uint16_t>, 30> kTypes = {{
    {"A", 1},      {"NS", 2},     {"CNAME", 5},   {"SOA", 6},    {"PTR", 12},  {"HINFO", 13},
    {"MINFO", 14}, {"MX", 15},    {"TXT", 16},    {"RP", 17},    {"AAAA", 28}, {"LOC", 29},
    {"SRV", 33},   {"NAPTR", 35}, {"CERT", 37},   {"DNAME", 39}, {"DS", 43},   {"SSHFP", 44},
    {"RRSIG", 46}, {"NSEC", 47},  {"DNSKEY", 48}, {"NSEC3", 50}, {"TLSA", 52}, {"SVCB", 64},
    {"HTTPS", 65}, {"SPF", 99},   {"IXFR", 251},  {"AXFR", 252}, {"ANY", 255}, {"CAA", 257},
}};

}  // namespace

std::optional<uint16_t> typeFromString(std::string_view s) {
  std::string u(s);
  std::transform(u.begin(), u.end(), u.begin(), [](unsigned char c) {
    return static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c);
  });
  for (const auto& [name, code] : kTypes) {
    if (name == u) return code;
  }
  return std::nullopt;
}

std::optional<uint16_t> classFromString(std::string_view s) {
  std::string u(s);
  std::transform(u.begin(), u.end(), u.begin(), [](unsigned char c) {
    return static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c);
  });
  if (u == "IN") return cls::IN;
  if (u == "CS") return 2;
  if (u == "CH") return cls::CH;
  if (u == "HS") return cls::HS;
  if (u == "NONE") return 254;
  if (u == "ANY") return cls::ANY;
  return std::nullopt;
}

void Rewriter::addRule(const std::vector<std::string>& args) {
  if (args.empty()) fail("no rule type specified for rewrite");
  const std::string arg0 = lower(args[0]);
  bool stop = true;
  size_t start = 1;
  std::string type = arg0;
  if (arg0 == "continue" || arg0 == "stop") {
    stop = arg0 == "stop";
    if (args.size() < 2) fail(arg0 + " rule must begin with a rule type");
    type = lower(args[1]);
    start = 2;
  }
  const std::vector<std::string> rest(args.begin() + static_cast<std::ptrdiff_t>(start),
                                      args.end());
  if (type == "answer") fail("response rewrites must begin with a name rule");
  if (type == "edns0" || type == "ttl" || type == "cname" || type == "rcode") {
    fail("'" + type + "' rules are not supported by node-cache");
  }
  Rule r;
  if (type == "name") {
    if (rest.size() < 2) fail("name rules must have at least two arguments");
    r = parseName(rest);
    r.field = Rule::Field::kName;
  } else if (type == "type" || type == "class") {
    if (rest.size() != 2) fail(type + " rules must have exactly two arguments");
    auto parse = type == "type" ? typeFromString : classFromString;
    const auto from = parse(rest[0]);
    if (!from) fail("invalid " + type + " \"" + rest[0] + "\"");
    const auto to = parse(rest[1]);
    if (!to) fail("invalid " + type + " \"" + rest[1] + "\"");
    r.field = type == "type" ? Rule::Field::kType : Rule::Field::kClass;
    r.from_code = *from;
    r.to_code = *to;
  } else {
    fail("invalid rule type \"" + args[0] + "\"");
  }
  r.stop = stop;
  rules_.push_back(std::move(r));
}

Outcome Rewriter::apply(const Question& q) const {
  Outcome o;
  o.question = q;
  bool stopped = false;
  for (const Rule& r : rules_) {
    if (r.field == Rule::Field::kType) {
      if (o.question.qtype != r.from_code) continue;
      o.question.qtype = r.to_code;
    } else if (r.field == Rule::Field::kClass) {
      if (o.question.qclass != r.from_code) continue;
      o.question.qclass = r.to_code;
    } else {
      const std::string before = lower(o.question.name.toString());
      std::string after;
      if (!nameMatches(r, before, &after)) continue;
      auto name = Name::fromString(after);
      if (!name) {
        o.matched = true;
        o.invalid = true;  // CoreDNS: "invalid name after rewrite" → SERVFAIL
        return o;
      }
      o.question.name = *name;
      if (r.answer_auto) {
        ResponseRule back;
        back.remap_from = after;
        back.remap_to = before;
        ResponseRule value = back;
        value.kind = ResponseRule::Kind::kValue;
        o.responses.push_back(std::move(back));
        o.responses.push_back(std::move(value));
      }
      o.responses.insert(o.responses.end(), r.answers.begin(), r.answers.end());
    }
    o.matched = true;
    if (r.stop) {
      stopped = true;
      break;
    }
  }
  o.revert = o.matched && (stopped || !o.responses.empty());
  return o;
}

size_t Rewriter::buildRewrittenQuery(ByteView client_pkt, const Query& q, const Outcome& o,
                                     MutableBytes out) {
  const size_t rest = client_pkt.size() - q.question.end;
  const size_t len = kHeaderSize + o.question.name.len + 4 + rest;
  if (len > out.size() || q.question.end > client_pkt.size()) return 0;
  std::memcpy(out.data(), client_pkt.data(), kHeaderSize);
  size_t at = kHeaderSize;
  std::memcpy(out.data() + at, o.question.name.data.data(), o.question.name.len);
  at += o.question.name.len;
  store16(out.data() + at, o.question.qtype);
  store16(out.data() + at + 2, o.question.qclass);
  at += 4;
  if (rest != 0) std::memcpy(out.data() + at, client_pkt.data() + q.question.end, rest);
  return len;
}

std::string Rewriter::applyResponseRule(const ResponseRule& r, const std::string& s) {
  if (!r.pattern) return lower(s) == r.remap_from ? r.remap_to : s;
  bool matched = false;
  return substituteGroups(*r.pattern, s, r.replacement, &matched);
}

namespace {

// Appends `n` to out at *at; false if no room.
bool put(MutableBytes out, size_t* at, const uint8_t* p, size_t n) {
  if (*at + n > out.size()) return false;
  std::memcpy(out.data() + *at, p, n);
  *at += n;
  return true;
}

// Applies the response rules of kind `kind` (in reverse order, as CoreDNS) to `name`.
Name rewriteName(const Outcome& o, ResponseRule::Kind kind, const Name& name) {
  std::string s;
  bool any = false;
  for (auto it = o.responses.rbegin(); it != o.responses.rend(); ++it) {
    if (it->kind != kind) continue;
    if (!any) s = name.toString();
    any = true;
    s = Rewriter::applyResponseRule(*it, s);
  }
  if (!any) return name;
  auto n = Name::fromString(s);
  return n ? *n : name;  // an invalid result keeps the name (miekg/dns could not pack it)
}

// Reads the name at *off of msg, applies `kind` rules if asked, writes it uncompressed.
bool copyName(ByteView msg, size_t* off, MutableBytes out, size_t* at, const Outcome* o,
              ResponseRule::Kind kind) {
  Name n;
  size_t next = 0;
  if (readName(msg, *off, n, next) != Error::kNone) return false;
  *off = next;
  if (o != nullptr) n = rewriteName(*o, kind, n);
  return put(out, at, n.data.data(), n.len);
}

// The RDATA names that may be compressed (RFC 3597 §4: the RFC 1035 types) plus SRV and
// DNAME, which some servers compress too; `value_name` is the one an `answer value` rule sees
// (miekg/dns getRecordValueForRewrite), -1 for none.
struct RdataShape {
  size_t prefix = 0;  // fixed bytes before the first name
  int names = 0;
  int value_name = -1;
};

std::optional<RdataShape> rdataShape(uint16_t t) {
  switch (t) {
    case type::NS:
    case type::CNAME:
    case 39 /*DNAME*/:
      return RdataShape{0, 1, 0};
    case type::PTR:
    case 3:
    case 4:
    case 7:
    case 8:
    case 9:
      return RdataShape{0, 1, -1};
    case type::SOA:
      return RdataShape{0, 2, 0};
    case type::MX:
      return RdataShape{2, 1, 0};
    case type::SRV:
      return RdataShape{6, 1, 0};
    case 14 /*MINFO*/:
    case 17 /*RP*/:
      return RdataShape{0, 2, -1};
    case 18 /*AFSDB*/:
      return RdataShape{2, 1, -1};
    default:
      return std::nullopt;
  }
}

}  // namespace

size_t Rewriter::revertAnswer(ByteView answer, ByteView client_pkt, const Query& client_q,
                              const Outcome& o, MutableBytes out) {
  if (answer.size() < kHeaderSize || client_q.question.end > client_pkt.size()) return 0;
  const Header h = Header::read(answer);
  size_t at = 0;
  if (!put(out, &at, answer.data(), kHeaderSize)) return 0;
  store16(out.data() + 4, 1);
  if (!put(out, &at, client_pkt.data() + kHeaderSize, client_q.question.end - kHeaderSize)) {
    return 0;
  }
  size_t off = kHeaderSize;
  for (uint16_t i = 0; i < h.qdcount; ++i) {  // skip the answer's own (rewritten) question
    size_t next = 0;
    if (skipName(answer, off, next) != Error::kNone || next + 4 > answer.size()) return 0;
    off = next + 4;
  }
  const size_t counts[3] = {h.ancount, h.nscount, h.arcount};
  for (int section = 0; section < 3; ++section) {
    // Response rules touch the answer section only (CoreDNS 1.10's ResponseReverter).
    const Outcome* rules = section == 0 ? &o : nullptr;
    for (size_t i = 0; i < counts[section]; ++i) {
      if (!copyName(answer, &off, out, &at, rules, ResponseRule::Kind::kName)) return 0;
      if (off + 10 > answer.size()) return 0;
      const uint16_t t = load16(answer.data() + off);
      const size_t rdlen = load16(answer.data() + off + 8);
      const size_t rdata = off + 10;
      if (rdata + rdlen > answer.size()) return 0;
      const size_t fixed_at = at;
      if (!put(out, &at, answer.data() + off, 10)) return 0;
      const auto shape = rdataShape(t);
      if (!shape) {
        if (!put(out, &at, answer.data() + rdata, rdlen)) return 0;
      } else {
        size_t p = rdata;
        const size_t start = at;
        if (shape->prefix > rdlen) return 0;
        if (!put(out, &at, answer.data() + p, shape->prefix)) return 0;
        p += shape->prefix;
        for (int n = 0; n < shape->names; ++n) {
          const Outcome* vr = n == shape->value_name ? rules : nullptr;
          if (!copyName(answer, &p, out, &at, vr, ResponseRule::Kind::kValue)) return 0;
        }
        if (p > rdata + rdlen) return 0;
        if (!put(out, &at, answer.data() + p, rdata + rdlen - p)) return 0;  // SOA's numbers
        store16(out.data() + fixed_at + 8, static_cast<uint16_t>(at - start));
      }
      off = rdata + rdlen;
    }
  }
  return at;
}

}  // namespace nld::dns::rewrite
