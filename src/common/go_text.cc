// Go's time.ParseDuration / Duration.String and strconv.Quote (ASCII subset), hand-written so that
// node-cache accepts and prints durations byte-for-byte like the Go binaries it replaces.
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>

#include "common/go_text.h"

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
  if (u == "us" || u == "\xc2\xb5s" || u == "\xce\xbcs") return 1000;  // us, µs (U+00B5), μs (U+03BC)
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

std::optional<std::chrono::nanoseconds> parseGoDuration(std::string_view text,
                                                        std::string* error) {
  const std::string_view orig = text;
  auto fail = [&](std::string message) -> std::optional<std::chrono::nanoseconds> {
    if (error != nullptr) *error = std::move(message);
    return std::nullopt;
  };
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
      return fail("time: unknown unit " + timeQuote(unit_text) + " in duration " +
                  timeQuote(orig));
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
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\a': out += "\\a"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\v': out += "\\v"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += "\\x";
          out += kHex[c >> 4];
          out += kHex[c & 0xf];
        } else {
          out += static_cast<char>(c);   // printable ASCII and UTF-8 bytes pass through
        }
    }
  }
  out += '"';
  return out;
}

}  // namespace nld
