#pragma once
// The test-only DNS packet writer (tests/README.md): appends raw fields so tests can build
// well-formed and deliberately malformed messages byte by byte. Not for production use (no
// validation at all). Client queries are built with the production dns::buildQuery instead,
// so tests send what the server itself would.
#include <cstdint>
#include <initializer_list>
#include <string_view>
#include <vector>

namespace nld::test {

class PacketBuilder {
 public:
  PacketBuilder& header(uint16_t id, uint16_t flags, uint16_t qd, uint16_t an, uint16_t ns,
                        uint16_t ar) {
    u16(id).u16(flags).u16(qd).u16(an).u16(ns).u16(ar);
    return *this;
  }
  PacketBuilder& u8(uint8_t v) {
    bytes_.push_back(v);
    return *this;
  }
  PacketBuilder& u16(uint16_t v) {
    bytes_.push_back(static_cast<uint8_t>(v >> 8));
    bytes_.push_back(static_cast<uint8_t>(v));
    return *this;
  }
  PacketBuilder& u32(uint32_t v) {
    return u16(static_cast<uint16_t>(v >> 16)).u16(static_cast<uint16_t>(v));
  }
  PacketBuilder& raw(std::initializer_list<uint8_t> b) {
    bytes_.insert(bytes_.end(), b.begin(), b.end());
    return *this;
  }
  PacketBuilder& raw(const std::vector<uint8_t>& b) {
    bytes_.insert(bytes_.end(), b.begin(), b.end());
    return *this;
  }
  /// Labels of a dotted name ("a.b" / "a.b." / "" for root), no escapes, terminated by the root.
  PacketBuilder& name(std::string_view dotted) {
    labels(dotted);
    return u8(0);
  }
  /// Labels without the terminating root (to be followed by a pointer).
  PacketBuilder& labels(std::string_view dotted) {
    size_t start = 0;
    while (start < dotted.size()) {
      size_t dot = dotted.find('.', start);
      if (dot == std::string_view::npos) dot = dotted.size();
      u8(static_cast<uint8_t>(dot - start));
      for (size_t i = start; i < dot; ++i) u8(static_cast<uint8_t>(dotted[i]));
      start = dot + 1;
    }
    return *this;
  }
  PacketBuilder& pointer(uint16_t offset) { return u16(static_cast<uint16_t>(0xC000 | offset)); }
  PacketBuilder& question(std::string_view dotted, uint16_t qtype, uint16_t qclass = 1) {
    return name(dotted).u16(qtype).u16(qclass);
  }
  /// Type, class, TTL, RDLENGTH and RDATA (the owner name must be written before).
  PacketBuilder& rrBody(uint16_t type, uint16_t cls, uint32_t ttl,
                        const std::vector<uint8_t>& rdata) {
    u16(type).u16(cls).u32(ttl).u16(static_cast<uint16_t>(rdata.size()));
    return raw(rdata);
  }
  /// A root-owned OPT RR.
  PacketBuilder& opt(uint16_t udp_size, uint8_t ext_rcode = 0, uint8_t version = 0,
                     bool dnssec_ok = false, const std::vector<uint8_t>& options = {}) {
    u8(0);
    return rrBody(
        41, udp_size,
        (uint32_t{ext_rcode} << 24) | (uint32_t{version} << 16) | (dnssec_ok ? 0x8000u : 0u),
        options);
  }
  size_t size() const { return bytes_.size(); }
  const std::vector<uint8_t>& bytes() const { return bytes_; }
  std::vector<uint8_t>& mutableBytes() { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

/// Uncompressed wire form of a dotted name, as a byte vector (for RDATA).
inline std::vector<uint8_t> wireName(std::string_view dotted) {
  PacketBuilder b;
  b.name(dotted);
  return b.bytes();
}

}  // namespace nld::test
