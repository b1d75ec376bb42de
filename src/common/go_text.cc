// Go's time.ParseDuration / Duration.String and strconv.Quote (ASCII subset), hand-written so that
// node-cache accepts and prints durations byte-for-byte like the Go binaries it replaces.
#include "common/go_text.h"

#include <cctype>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>

namespace nld {
namespace {

constexpr uint64_t kMaxDuration = uint64_t{1} << 63;

// time package's quote(): "..." with \" \\ and \xNN for bytes outside printable ASCII.
std::string timeQuote(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
  return out;
}

uint64_t unitFor(std::string_view u) {
  if (u == "ns") return 1;
  if (u == "us" || u == "\xc2\xb5s" || u == "\xce\xbcs")
    return 1000;  // us, µs (U+00B5), μs (U+03BC)
  if (u == "ms") return 1000000;
  if (u == "s") return 1000000000;
  if (u == "m") return 60ULL * 1000000000;
  if (u == "h") return 3600ULL * 1000000000;
  return 0;
}

bool isDigit(char c) { return c >= '0' && c <= '9'; }

// Fraction digits of v (already scaled to `prec` digits) without trailing zeros, Go's fmtFrac.
std::string fmtFrac(uint64_t& v, int prec) {
  std::string digits;
  bool print = false;
  for (int i = 0; i < prec; ++i) {
    uint64_t digit = v % 10;
    print = print || digit != 0;
    if (print) digits.insert(digits.begin(), static_cast<char>('0' + digit));
    v /= 10;
  }
  if (print) digits.insert(digits.begin(), '.');
  return digits;
}

}  // namespace

Result<std::chrono::nanoseconds> parseGoDuration(std::string_view text) {
  const std::string_view orig = text;
  auto invalid = [&] { return fail("time: invalid duration " + timeQuote(orig)); };
  std::string_view s = text;
  bool neg = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return std::chrono::nanoseconds{0};
  if (s.empty()) return invalid();
  uint64_t total = 0;
  while (!s.empty()) {
    if (!(s[0] == '.' || isDigit(s[0]))) return invalid();
    // Integer part (leadingInt: overflow is an error).
    uint64_t v = 0;
    size_t i = 0;
    for (; i < s.size() && isDigit(s[i]); ++i) {
      if (v > (kMaxDuration - 1) / 10) return invalid();
      v = v * 10 + static_cast<uint64_t>(s[i] - '0');
      if (v > kMaxDuration) return invalid();
    }
    const bool pre = i != 0;
    s.remove_prefix(i);
    // Fraction part (leadingFraction: digits past the precision are skipped).
    uint64_t f = 0;
    double scale = 1.0;
    bool post = false;
    if (!s.empty() && s[0] == '.') {
      s.remove_prefix(1);
      size_t j = 0;
      bool overflow = false;
      for (; j < s.size() && isDigit(s[j]); ++j) {
        if (overflow) continue;
        if (f > (std::numeric_limits<int64_t>::max() - 1) / 10) {
          overflow = true;
          continue;
        }
        uint64_t y = f * 10 + static_cast<uint64_t>(s[j] - '0');
        if (y > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
          overflow = true;
          continue;
        }
        f = y;
        scale *= 10;
      }
      post = j != 0;
      s.remove_prefix(j);
    }
    if (!pre && !post) return invalid();
    size_t k = 0;
    while (k < s.size() && s[k] != '.' && !isDigit(s[k])) ++k;
    if (k == 0) return fail("time: missing unit in duration " + timeQuote(orig));
    const std::string_view unit_text = s.substr(0, k);
    s.remove_prefix(k);
    const uint64_t unit = unitFor(unit_text);
    if (unit == 0) {
      return fail("time: unknown unit " + timeQuote(unit_text) + " in duration " + timeQuote(orig));
    }
    if (v > kMaxDuration / unit) return invalid();
    v *= unit;
    if (f > 0) {
      v += static_cast<uint64_t>(static_cast<double>(f) * (static_cast<double>(unit) / scale));
      if (v > kMaxDuration) return invalid();
    }
    total += v;
    if (total > kMaxDuration) return invalid();
  }
  if (neg) {
    // -(1<<63) is representable; negate via unsigned arithmetic to avoid overflow.
    return std::chrono::nanoseconds{static_cast<int64_t>(~total + 1)};
  }
  if (total > kMaxDuration - 1) return invalid();
  return std::chrono::nanoseconds{static_cast<int64_t>(total)};
}

std::string formatGoDuration(std::chrono::nanoseconds d) {
  const int64_t n = d.count();
  if (n == 0) return "0s";
  const bool neg = n < 0;
  uint64_t u = neg ? ~static_cast<uint64_t>(n) + 1 : static_cast<uint64_t>(n);
  std::string out;
  if (u < 1000000000ULL) {
    if (u < 1000) {
      out = std::to_string(u) + "ns";
    } else if (u < 1000000) {
      std::string frac = fmtFrac(u, 3);
      out = std::to_string(u) + frac + "\xc2\xb5s";
    } else {
      std::string frac = fmtFrac(u, 6);
      out = std::to_string(u) + frac + "ms";
    }
  } else {
    std::string frac = fmtFrac(u, 9);
    out = std::to_string(u % 60) + frac + "s";
    u /= 60;
    if (u > 0) {
      out = std::to_string(u % 60) + "m" + out;
      u /= 60;
      if (u > 0) out = std::to_string(u) + "h" + out;
    }
  }
  return neg ? "-" + out : out;
}

std::string goQuote(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\a':
        out += "\\a";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\v':
        out += "\\v";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += "\\x";
          out += kHex[c >> 4];
          out += kHex[c & 0xf];
        } else {
          out += static_cast<char>(c);  // printable ASCII and UTF-8 bytes pass through
        }
    }
  }
  out += '"';
  return out;
}

}  // namespace nld

namespace nld {
namespace {

bool isGoSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view trimSpace(std::string_view s) {
  while (!s.empty() && isGoSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && isGoSpace(s.back())) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> splitFields(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && isGoSpace(s[i])) ++i;
    const size_t start = i;
    while (i < s.size() && !isGoSpace(s[i])) ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

bool isIdent(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  }
  return !std::isdigit(static_cast<unsigned char>(s.front()));
}

}  // namespace

Result<GoTemplate> GoTemplate::compile(std::string_view text) {
  GoTemplate t;
  bool trim_next = false;
  while (!text.empty()) {
    const size_t open = text.find("{{");
    std::string_view lit = text.substr(0, open);
    if (trim_next) {
      while (!lit.empty() && isGoSpace(lit.front())) lit.remove_prefix(1);
    }
    trim_next = false;
    if (open == std::string_view::npos) {
      if (!lit.empty()) t.parts_.push_back({Part::Kind::kText, std::string(lit), 0});
      break;
    }
    const size_t close = text.find("}}", open + 2);
    if (close == std::string_view::npos) return fail("unclosed action");
    std::string_view action = text.substr(open + 2, close - open - 2);
    // Go's trim markers: "{{- " and " -}}" (the space is part of the marker).
    if (action.size() >= 2 && action[0] == '-' && isGoSpace(action[1])) {
      while (!lit.empty() && isGoSpace(lit.back())) lit.remove_suffix(1);
      action.remove_prefix(1);
    }
    if (action.size() >= 2 && action.back() == '-' && isGoSpace(action[action.size() - 2])) {
      action.remove_suffix(1);
      trim_next = true;
    }
    if (!lit.empty()) t.parts_.push_back({Part::Kind::kText, std::string(lit), 0});
    const std::string_view a = trimSpace(action);
    const std::vector<std::string_view> f = splitFields(a);
    Part p{Part::Kind::kText, {}, 0};
    if (f.size() == 1 && f[0] == ".Name") {
      p.kind = Part::Kind::kName;
    } else if (f.size() == 1 && f[0] == ".Zone") {
      p.kind = Part::Kind::kZone;
    } else if (f.size() == 1 && f[0] == ".Class") {
      p.kind = Part::Kind::kClass;
    } else if (f.size() == 1 && f[0] == ".Type") {
      p.kind = Part::Kind::kType;
    } else if (f.size() == 1 && f[0] == ".Remote") {
      p.kind = Part::Kind::kRemote;
    } else if (f.size() == 1 && f[0].substr(0, 7) == ".Group." && isIdent(f[0].substr(7))) {
      p.kind = Part::Kind::kGroup;
      p.text = std::string(f[0].substr(7));
    } else if (f.size() == 3 && f[0] == "index" && f[1] == ".Match" && !f[2].empty() &&
               f[2].size() <= 4 && f[2].find_first_not_of("0123456789") == std::string_view::npos) {
      p.kind = Part::Kind::kMatch;
      p.index = std::stoul(std::string(f[2]));
    } else if (f.size() == 3 && f[0] == "index" && f[1] == ".Group" && f[2].size() >= 2 &&
               f[2].front() == '"' && f[2].back() == '"' &&
               f[2].find_first_of("\\\"", 1) == f[2].size() - 1) {
      p.kind = Part::Kind::kGroup;
      p.text = std::string(f[2].substr(1, f[2].size() - 2));
      p.index = 1;  // `index` of a missing key is the empty string, not "<no value>"
    } else {
      return fail("template action '{{" + std::string(action) +
                  "}}' is not supported by "
                  "node-cache (only .Name, .Zone, .Class, .Type, .Remote, index .Match N, "
                  ".Group.NAME)");
    }
    t.parts_.push_back(std::move(p));
    text = text.substr(close + 2);
  }
  return t;
}

Result<std::string> GoTemplate::execute(const Data& d) const {
  std::string out;
  for (const Part& p : parts_) {
    switch (p.kind) {
      case Part::Kind::kText:
        out += p.text;
        break;
      case Part::Kind::kName:
        out += d.name;
        break;
      case Part::Kind::kZone:
        out += d.zone;
        break;
      case Part::Kind::kClass:
        out += d.cls;
        break;
      case Part::Kind::kType:
        out += d.type;
        break;
      case Part::Kind::kRemote:
        out += d.remote;
        break;
      case Part::Kind::kMatch:
        if (p.index >= d.match.size()) {
          return fail("error calling index: index out of range: " + std::to_string(p.index));
        }
        out += d.match[p.index];
        break;
      case Part::Kind::kGroup: {
        bool found = false;
        for (const auto& [k, v] : d.group) {
          if (k == p.text) {
            out += v;
            found = true;
            break;
          }
        }
        if (!found && p.index == 0) out += "<no value>";  // Go's rendering of a missing map key
        break;
      }
    }
  }
  return out;
}

}  // namespace nld
