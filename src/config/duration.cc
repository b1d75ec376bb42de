#include "config/duration.h"

#include <cstdint>
#include <string>

namespace nld::config::detail {

std::optional<std::chrono::nanoseconds> parseGoDuration(std::string_view s) {
  if (s.empty()) return std::nullopt;
  bool neg = false;
  if (s.front() == '-' || s.front() == '+') {
    neg = s.front() == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return std::chrono::nanoseconds(0);
  if (s.empty()) return std::nullopt;
  // Accumulate in long double nanoseconds with an explicit bound; precision is ample for
  // configuration values.
  long double total = 0;
  while (!s.empty()) {
    size_t i = 0;
    long double value = 0;
    bool digits = false;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      value = value * 10 + (s[i] - '0');
      digits = true;
      ++i;
      if (value > 1e20L) return std::nullopt;
    }
    if (i < s.size() && s[i] == '.') {
      ++i;
      long double scale = 0.1L;
      while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
        value += (s[i] - '0') * scale;
        scale /= 10;
        digits = true;
        ++i;
      }
    }
    if (!digits) return std::nullopt;
    size_t u = i;
    while (u < s.size() && !(s[u] == '.' || (s[u] >= '0' && s[u] <= '9'))) ++u;
    const std::string_view unit = s.substr(i, u - i);
    long double mult = 0;
    if (unit == "ns") {
      mult = 1;
    } else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs") {
      mult = 1e3L;
    } else if (unit == "ms") {
      mult = 1e6L;
    } else if (unit == "s") {
      mult = 1e9L;
    } else if (unit == "m") {
      mult = 60e9L;
    } else if (unit == "h") {
      mult = 3600e9L;
    } else {
      return std::nullopt;  // missing or unknown unit
    }
    total += value * mult;
    if (total > 9.2e18L) return std::nullopt;
    s.remove_prefix(u);
  }
  const auto ns = static_cast<int64_t>(total);
  return std::chrono::nanoseconds(neg ? -ns : ns);
}

std::string formatDuration(std::chrono::nanoseconds d) {
  int64_t ns = d.count();
  std::string sign;
  if (ns < 0) {
    sign = "-";
    ns = -ns;
  }
  if (ns == 0) return "0s";
  if (ns < 1000000000) {
    if (ns % 1000000 == 0) return sign + std::to_string(ns / 1000000) + "ms";
    if (ns % 1000 == 0) return sign + std::to_string(ns / 1000) + "us";
    return sign + std::to_string(ns) + "ns";
  }
  const int64_t h = ns / 3600000000000;
  const int64_t m = ns / 60000000000 % 60;
  const int64_t sec = ns / 1000000000 % 60;
  const int64_t frac = ns % 1000000000;
  std::string out = sign;
  if (h) out += std::to_string(h) + "h";
  if (h || m) out += std::to_string(m) + "m";
  out += std::to_string(sec);
  if (frac) {
    std::string f = std::to_string(frac);
    f = std::string(9 - f.size(), '0') + f;
    while (!f.empty() && f.back() == '0') f.pop_back();
    out += "." + f;
  }
  return out + "s";
}

}  // namespace nld::config::detail
