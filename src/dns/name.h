#pragma once
// DNS names in uncompressed wire form (RFC 1035 §3.1): length-prefixed labels ending with the
// root label. Comparisons are ASCII case-insensitive (RFC 4343); case is preserved in the data.
//
// Hand-written rather than taken from a library: this is on the per-query hot path, where we
// need fixed-size storage (no heap allocation) and byte-exact control over case and compression.
//
// Thread affinity: none. Every function here is a pure function of its arguments (no shared or
// static state), callable from any thread; objects are not synchronised.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace nld::dns {

using ByteView = std::span<const uint8_t>;
using MutableBytes = std::span<uint8_t>;

inline constexpr size_t kMaxNameLength = 255;  // wire form including the root label
inline constexpr size_t kMaxLabelLength = 63;

inline uint16_t load16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
inline uint32_t load32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}
inline void store16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void store32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}
inline uint8_t asciiLower(uint8_t c) { return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c; }
/// ASCII case-insensitive equality of `len` bytes of wire-form names (length bytes are <= 63
/// and unaffected by lower-casing, so whole names compare byte for byte); 8 bytes per step.
bool wireEqualsIgnoreCase(const uint8_t* a, const uint8_t* b, size_t len);
/// asciiLower of the 8 bytes of `x` at once (SWAR: no per-byte branches; hot path of the
/// coalescing key and of reply matching).
inline uint64_t asciiLower8(uint64_t x) {
  const uint64_t low7 = x & 0x7f7f7f7f7f7f7f7fULL;
  const uint64_t ge_a = low7 + 0x3f3f3f3f3f3f3f3fULL;  // bit 7 set where the byte >= 'A'
  const uint64_t gt_z = low7 + 0x2525252525252525ULL;  // bit 7 set where the byte > 'Z'
  const uint64_t upper = ge_a & ~gt_z & ~x & 0x8080808080808080ULL;
  return x | (upper >> 2);
}

/// Parse and validation failures. Every parser returns one of these instead of throwing.
enum class Error : uint8_t {
  kNone = 0,
  kTruncated,     // ran past the end of the message
  kLabelTooLong,  // label length > 63
  kNameTooLong,   // decoded name > 255 bytes
  kBadPointer,    // compression pointer not strictly backwards, or out of range
  kPointerLoop,   // too many pointer jumps
  kBadLabelType,  // 0x40 / 0x80 label types (obsolete / extended)
  kBadCount,      // section counts the message cannot contain / not allowed
  kBadOpt,        // more than one OPT, OPT not owned by root, malformed options
  kBadRdata,      // RDATA inconsistent with RDLENGTH (SOA, NS, CNAME, PTR, MX, SRV names)
};
std::string_view errorString(Error e);

/// A name in uncompressed wire form. Fixed size: no allocation.
struct Name {
  uint8_t len = 0;  // bytes used in data; 0 = unset, 1 = root
  std::array<uint8_t, kMaxNameLength> data{};

  ByteView wire() const { return ByteView(data.data(), len); }
  /// Presentation form with a trailing dot ("example.org.", "." for the root), escaped like
  /// miekg/dns: bytes outside printable ASCII as \DDD (decimal), and `.` `\` space `'` `@` `;`
  /// `(` `)` `"` inside labels as \c. Allocates (not for the hot path).
  std::string toString() const;
  /// ASCII lower-case in place.
  void toLower();
  bool equalsIgnoreCase(const Name& other) const;
  /// A 64-bit hash of the lower-cased wire form (8 bytes per step; not cryptographic: callers
  /// that face untrusted names must verify a match with equalsIgnoreCase).
  uint64_t hashLower(uint64_t seed) const;
  /// True if this name equals zone or lies below it (case-insensitive). Everything is below ".".
  bool isSubdomainOf(const Name& zone) const;
  size_t labelCount() const;
  /// Parses presentation form ("example.org", "example.org.", "." ; \DDD and \c escapes).
  static std::optional<Name> fromString(std::string_view text);
};

/// Reads the (possibly compressed) name at `offset` of `msg` into `out`. On success `next` is the
/// offset just past the name's encoding at `offset` (after the first pointer, if any). Pointers
/// must point strictly backwards, before the start of the run of labels that contains them (so
/// loops are impossible), and the labels reached must end before the pointer itself (a name is
/// only ever compressed against names written completely before it; this keeps every byte a
/// name uses before the end of its own encoding), else BadPointer; at most 127 jumps
/// (PointerLoop). Decoded names over
/// 255 bytes → NameTooLong; label types 0x40/0x80 → BadLabelType; running past the end →
/// Truncated. No allocation; any thread (pure function of its arguments).
Error readName(ByteView msg, size_t offset, Name& out, size_t& next);

/// Like readName but only validates and skips, without decoding the labels.
Error skipName(ByteView msg, size_t offset, size_t& next);

}  // namespace nld::dns
