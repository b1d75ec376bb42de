// DNS name decoding, comparison and presentation (see name.h).
#include "dns/name.h"

#include <algorithm>
#include <cstring>

namespace nld::dns {

namespace {

constexpr int kMaxPointerJumps = 127;

// miekg/dns escapes these inside labels with a plain backslash (isDomainNameLabelSpecial).
bool isSpecial(uint8_t c) {
  switch (c) {
    case '.':
    case ' ':
    case '\'':
    case '@':
    case ';':
    case '(':
    case ')':
    case '"':
    case '\\':
      return true;
    default:
      return false;
  }
}

bool isDigit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

std::string_view errorString(Error e) {
  switch (e) {
    case Error::kNone:
      return "no error";
    case Error::kTruncated:
      return "message truncated";
    case Error::kLabelTooLong:
      return "label longer than 63 bytes";
    case Error::kNameTooLong:
      return "name longer than 255 bytes";
    case Error::kBadPointer:
      return "compression pointer not pointing backwards";
    case Error::kPointerLoop:
      return "too many compression pointers";
    case Error::kBadLabelType:
      return "unsupported label type";
    case Error::kBadCount:
      return "bad section count";
    case Error::kBadOpt:
      return "bad OPT record";
    case Error::kBadRdata:
      return "RDATA inconsistent with RDLENGTH";
  }
  return "unknown error";
}

std::string Name::toString() const {
  if (len <= 1) return ".";
  std::string s;
  s.reserve(len + 8);
  size_t pos = 0;
  while (pos < len) {
    const uint8_t l = data[pos];
    if (l == 0) break;
    ++pos;
    for (size_t i = 0; i < l && pos < len; ++i, ++pos) {
      const uint8_t c = data[pos];
      if (isSpecial(c)) {
        s.push_back('\\');
        s.push_back(static_cast<char>(c));
      } else if (c < ' ' || c > '~') {
        s.push_back('\\');
        s.push_back(static_cast<char>('0' + c / 100));
        s.push_back(static_cast<char>('0' + (c / 10) % 10));
        s.push_back(static_cast<char>('0' + c % 10));
      } else {
        s.push_back(static_cast<char>(c));
      }
    }
    s.push_back('.');
  }
  return s;
}

void Name::toLower() {
  for (size_t i = 0; i < len; ++i) data[i] = asciiLower(data[i]);
}

namespace {
/// Bytes [i, i + 8) of a name, zero-padded past `len` (little-endian load; no byte past len is
/// read, so the result depends only on the name).
uint64_t word(const std::array<uint8_t, kMaxNameLength>& d, size_t i, size_t len) {
  uint64_t w = 0;
  if (i + 8 <= d.size()) {
    // A fixed-size load (no memcpy call), then the bytes past `len` (stale data of an earlier,
    // longer name) are masked off.
    std::memcpy(&w, d.data() + i, 8);
    const size_t left = len - i;
    if (left < 8) w &= (uint64_t{1} << (8 * left)) - 1;
    return w;
  }
  std::memcpy(&w, d.data() + i, std::min<size_t>(8, len - i));
  return w;
}
}  // namespace

bool wireEqualsIgnoreCase(const uint8_t* a, const uint8_t* b, size_t len) {
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t x, y;
    std::memcpy(&x, a + i, 8);
    std::memcpy(&y, b + i, 8);
    if (x != y && asciiLower8(x) != asciiLower8(y)) return false;
  }
  for (; i < len; ++i) {
    if (a[i] != b[i] && asciiLower(a[i]) != asciiLower(b[i])) return false;
  }
  return true;
}

bool Name::equalsIgnoreCase(const Name& other) const {
  return len == other.len && wireEqualsIgnoreCase(data.data(), other.data.data(), len);
}

uint64_t Name::hashLower(uint64_t seed) const {
  uint64_t h = seed ^ (uint64_t{len} * 0x9e3779b97f4a7c15ULL);
  for (size_t i = 0; i < len; i += 8) {
    h = (h ^ asciiLower8(word(data, i, len))) * 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 31;
  }
  return h;
}

bool Name::isSubdomainOf(const Name& zone) const {
  if (zone.len == 0 || len == 0 || zone.len > len) return false;
  if (zone.len == 1) return true;  // the root (`forward .`, `.:53`): every name, no label walk
  const size_t start = len - zone.len;
  // The suffix must begin on a label boundary.
  size_t pos = 0;
  while (pos < start) pos += size_t{data[pos]} + 1;
  if (pos != start) return false;
  for (size_t i = 0; i < zone.len; ++i) {
    if (asciiLower(data[start + i]) != asciiLower(zone.data[i])) return false;
  }
  return true;
}

size_t Name::labelCount() const {
  size_t n = 0;
  size_t pos = 0;
  while (pos < len && data[pos] != 0) {
    ++n;
    pos += size_t{data[pos]} + 1;
  }
  return n;
}

std::optional<Name> Name::fromString(std::string_view text) {
  Name n;
  if (text.empty()) return std::nullopt;
  if (text == ".") {
    n.len = 1;
    n.data[0] = 0;
    return n;
  }
  size_t out = 0;          // write position in n.data
  size_t label_start = 0;  // position of the current label's length byte
  size_t label_len = 0;
  bool in_label = false;
  auto put = [&](uint8_t c) -> bool {
    if (!in_label) {
      label_start = out;
      // Room for the length byte, this byte and the final root label.
      if (out + 3 > kMaxNameLength) return false;
      n.data[out++] = 0;
      in_label = true;
      label_len = 0;
    }
    if (label_len == kMaxLabelLength || out + 2 > kMaxNameLength) return false;
    n.data[out++] = c;
    ++label_len;
    return true;
  };
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '.') {
      if (!in_label) return std::nullopt;  // empty label (".a", "a..b")
      n.data[label_start] = static_cast<uint8_t>(label_len);
      in_label = false;
      ++i;
      continue;
    }
    if (c == '\\') {
      if (i + 1 >= text.size()) return std::nullopt;
      if (isDigit(text[i + 1])) {
        if (i + 3 >= text.size() || !isDigit(text[i + 2]) || !isDigit(text[i + 3])) {
          return std::nullopt;
        }
        const int v = (text[i + 1] - '0') * 100 + (text[i + 2] - '0') * 10 + (text[i + 3] - '0');
        if (v > 255) return std::nullopt;
        if (!put(static_cast<uint8_t>(v))) return std::nullopt;
        i += 4;
      } else {
        if (!put(static_cast<uint8_t>(text[i + 1]))) return std::nullopt;
        i += 2;
      }
      continue;
    }
    if (!put(static_cast<uint8_t>(c))) return std::nullopt;
    ++i;
  }
  if (in_label) n.data[label_start] = static_cast<uint8_t>(label_len);
  n.data[out++] = 0;
  n.len = static_cast<uint8_t>(out);
  return n;
}

Error readName(ByteView msg, size_t offset, Name& out, size_t& next) {
  const uint8_t* const base = msg.data();
  const size_t size = msg.size();
  size_t pos = offset;
  size_t segment = offset;  // start of the run of labels being read
  // Bytes a run may use: the message for the first run; after a jump, only bytes before the
  // pointer that jumped (a compressor only points at names written completely before).
  size_t limit = size;
  size_t out_len = 0;
  int jumps = 0;
  bool jumped = false;
  for (;;) {
    if (pos >= limit) return jumped ? Error::kBadPointer : Error::kTruncated;
    const uint8_t l = base[pos];
    switch (l & 0xC0) {
      case 0x00: {
        if (l == 0) {
          if (out_len + 1 > kMaxNameLength) return Error::kNameTooLong;
          out.data[out_len++] = 0;
          out.len = static_cast<uint8_t>(out_len);
          if (!jumped) next = pos + 1;
          return Error::kNone;
        }
        if (pos + 1 + l > limit) return jumped ? Error::kBadPointer : Error::kTruncated;
        // +1 length byte, +1 for the root label that must still follow.
        if (out_len + 1 + l + 1 > kMaxNameLength) return Error::kNameTooLong;
        out.data[out_len] = l;
        std::memcpy(out.data.data() + out_len + 1, base + pos + 1, l);
        out_len += size_t{l} + 1;
        pos += size_t{l} + 1;
        break;
      }
      case 0xC0: {
        if (pos + 1 >= limit) return jumped ? Error::kBadPointer : Error::kTruncated;
        const size_t target = (size_t{l & 0x3Fu} << 8) | base[pos + 1];
        // Strictly before the run of labels being read: guarantees termination.
        if (target >= segment) return Error::kBadPointer;
        if (++jumps > kMaxPointerJumps) return Error::kPointerLoop;
        if (!jumped) {
          next = pos + 2;
          jumped = true;
        }
        limit = pos;
        pos = segment = target;
        break;
      }
      default:
        return Error::kBadLabelType;
    }
  }
}

Error skipName(ByteView msg, size_t offset, size_t& next) {
  const uint8_t* const base = msg.data();
  const size_t size = msg.size();
  size_t pos = offset;
  size_t segment = offset;  // start of the run of labels being read
  // Bytes a run may use: the message for the first run; after a jump, only bytes before the
  // pointer that jumped (a compressor only points at names written completely before).
  size_t limit = size;
  size_t total = 0;
  int jumps = 0;
  bool jumped = false;
  for (;;) {
    if (pos >= limit) return jumped ? Error::kBadPointer : Error::kTruncated;
    const uint8_t l = base[pos];
    switch (l & 0xC0) {
      case 0x00: {
        if (l == 0) {
          if (!jumped) next = pos + 1;
          return Error::kNone;
        }
        if (pos + 1 + l > limit) return jumped ? Error::kBadPointer : Error::kTruncated;
        total += size_t{l} + 1;
        if (total + 1 > kMaxNameLength) return Error::kNameTooLong;
        pos += size_t{l} + 1;
        break;
      }
      case 0xC0: {
        if (pos + 1 >= limit) return jumped ? Error::kBadPointer : Error::kTruncated;
        const size_t target = (size_t{l & 0x3Fu} << 8) | base[pos + 1];
        // Strictly before the run of labels being read: guarantees termination.
        if (target >= segment) return Error::kBadPointer;
        if (++jumps > kMaxPointerJumps) return Error::kPointerLoop;
        if (!jumped) {
          next = pos + 2;
          jumped = true;
        }
        limit = pos;
        pos = segment = target;
        break;
      }
      default:
        return Error::kBadLabelType;
    }
  }
}

}  // namespace nld::dns
