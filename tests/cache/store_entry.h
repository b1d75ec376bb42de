#pragma once
// A Store entry for the store tests: its packet is a header and the question name (all the store
// looks at), padded to `blob_size` bytes when that is larger (byte-budget tests).
#include <algorithm>
#include <chrono>
#include <cstring>

#include "cache/store.h"
#include "dns/message.h"

namespace nld::cache::testing {

inline Entry makeStoreEntry(const dns::Name& n, uint64_t hash, Clock::time_point now,
                            uint32_t duration, size_t blob_size = 0) {
  const size_t pkt = dns::kHeaderSize + n.len + 4;
  Entry e;
  e.blob_size = static_cast<uint32_t>(std::max(pkt, blob_size));
  e.blob = std::make_unique<uint8_t[]>(e.blob_size);
  std::memcpy(e.blob.get() + dns::kHeaderSize, n.data.data(), n.len);
  e.pkt_len = static_cast<uint16_t>(pkt);
  e.hash = hash;
  e.inserted = now;
  e.duration = duration;
  e.qtype = dns::type::A;
  e.qclass = dns::cls::IN;
  e.name_len = n.len;
  return e;
}

}  // namespace nld::cache::testing
