#include "dns/shuffle.h"

#include <array>
#include <cstring>
#include <vector>

#include "dns/message.h"

namespace nld::dns {

namespace {

// One record's position in the message.
struct Rec {
  uint16_t owner = 0, owner_len = 0;  // the owner name's bytes as encoded here
  uint16_t type = 0, klass = 0;
  uint16_t ttl = 0;  // offset of TTL; RDLENGTH and RDATA follow
  uint16_t rdlen = 0;
};

constexpr size_t kMaxSlots = 64;  // records of one group beyond this keep their place

size_t shuffleGroup(MutableBytes msg, const Rec* recs, size_t n, uint16_t type,
                    RandomBelow random_below) {
  const size_t want = type == type::A ? 4 : 16;
  const Rec* first = nullptr;
  std::array<uint16_t, kMaxSlots> slots{};  // TTL offsets
  size_t count = 0;
  for (size_t i = 0; i < n && count < kMaxSlots; ++i) {
    const Rec& r = recs[i];
    if (r.type != type || r.rdlen != want) continue;
    if (first == nullptr) {
      first = &r;
    } else if (r.klass != first->klass || r.owner_len != first->owner_len ||
               std::memcmp(msg.data() + r.owner, msg.data() + first->owner, r.owner_len) != 0) {
      continue;
    }
    slots[count++] = r.ttl;
  }
  if (count < 2) return 0;
  // Fisher-Yates over the slots: TTL (4 bytes) and RDATA trade places; RDLENGTH is equal.
  std::array<uint8_t, 4 + 16> tmp{};
  for (size_t i = count - 1; i > 0; --i) {
    const size_t j = size_t(random_below(i + 1));
    if (j == i) continue;
    uint8_t* a = msg.data() + slots[i];
    uint8_t* b = msg.data() + slots[j];
    std::memcpy(tmp.data(), a, 4);
    std::memcpy(a, b, 4);
    std::memcpy(b, tmp.data(), 4);
    std::memcpy(tmp.data(), a + 6, want);
    std::memcpy(a + 6, b + 6, want);
    std::memcpy(b + 6, tmp.data(), want);
  }
  return count;
}

size_t shuffleInPlace(MutableBytes msg, size_t len, RandomBelow random_below) {
  if (len < kHeaderSize || len > msg.size() || len > 0xffff) return 0;
  const ByteView view(msg.data(), len);
  if ((load16(msg.data() + 2) & 0xf) != rcode::NoError) return 0;
  size_t off = kHeaderSize;
  for (uint16_t i = 0, qd = load16(msg.data() + 4); i < qd; ++i) {
    size_t next = 0;
    if (skipName(view, off, next) != Error::kNone || next + 4 > len) return 0;
    off = next + 4;
  }
  size_t total = 0;
  std::array<Rec, kMaxSlots * 2> recs{};
  for (int section = 0; section < 3; ++section) {
    const uint16_t count = load16(msg.data() + 6 + 2 * section);
    size_t n = 0;
    for (uint16_t i = 0; i < count; ++i) {
      size_t next = 0;
      if (skipName(view, off, next) != Error::kNone || next + 10 > len) return total;
      Rec r;
      r.owner = uint16_t(off);
      r.owner_len = uint16_t(next - off);
      r.type = load16(msg.data() + next);
      r.klass = load16(msg.data() + next + 2);
      r.ttl = uint16_t(next + 4);
      r.rdlen = load16(msg.data() + next + 8);
      off = next + 10 + r.rdlen;
      if (off > len) return total;
      // Only address records can take part; others need no slot.
      if ((r.type == type::A || r.type == type::AAAA) && n < recs.size()) recs[n++] = r;
    }
    total += shuffleGroup(msg, recs.data(), n, type::A, random_below);
    total += shuffleGroup(msg, recs.data(), n, type::AAAA, random_below);
  }
  return total;
}

}  // namespace

size_t shuffleAddressRecords(MutableBytes msg, size_t len, RandomBelow random_below) {
  // A compression pointer may point into the TTL or RDATA of an address record (a hostile or
  // broken upstream; the fuzzer found one): moving those bytes would leave a message that no
  // longer parses. So the shuffle is checked, and undone when it broke the message. Buffers are
  // per thread and reused: no allocation once warm.
  if (len < kHeaderSize || len > msg.size()) return 0;
  thread_local std::vector<uint8_t> backup;
  thread_local Response check;
  backup.assign(msg.data(), msg.data() + len);
  const size_t n = shuffleInPlace(msg, len, random_below);
  if (n == 0) return 0;
  const bool parsed_before = parseResponse(ByteView(backup.data(), len), check) == Error::kNone;
  if (parsed_before && parseResponse(ByteView(msg.data(), len), check) != Error::kNone) {
    std::memcpy(msg.data(), backup.data(), len);
    return 0;
  }
  return n;
}

}  // namespace nld::dns
