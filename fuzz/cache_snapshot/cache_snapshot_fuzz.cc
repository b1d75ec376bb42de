// Fuzz target for cache snapshots (cache/snapshot.h): the input is a snapshot file image.
// 1. parseSnapshot as is, with the boot id and clock the file itself claims (so the boot and age
//    checks pass and the checksums are the only gate);
// 2. the same image with both CRC32Cs recomputed, so mutations reach the structural parser;
// 3. every entry a parse accepts is imported into a cache and then served through the hit path
//    (a lookup for its own question), checking that a validated entry is safe to render.
// Any violated invariant aborts so libFuzzer / the corpus replay reports it.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "cache/cache.h"
#include "cache/snapshot.h"
#include "dns/key_hash.h"

namespace {

using namespace nld;
using namespace nld::cache;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "cache_snapshot_fuzz invariant violated: %s\n", what);
    std::abort();
  }
}

void exercise(std::vector<uint8_t> img) {
  BootId boot{};
  int64_t written = 0;
  if (img.size() >= kSnapshotHeaderSize) {
    std::memcpy(boot.data(), img.data() + 16, boot.size());
    written =
        int64_t((uint64_t{dns::load32(img.data() + 32)} << 32) | dns::load32(img.data() + 36));
  }
  const int64_t now = written < 0 || written > (int64_t{1} << 50) ? 0 : written + 1500;
  std::string why;
  const size_t size = img.size();
  auto loaded = parseSnapshot(std::move(img), boot, now, why);
  if (!loaded) {
    check(!why.empty(), "refusal without a reason");
    return;
  }
  check(loaded->bytes.size() == size, "parsed image changed size");
  Settings s;
  s.serve_stale_s = 3600;  // keep expired entries too: more of them reach the hit path
  Cache c(s);
  ClockPair at;
  at.steady = Clock::time_point{} + std::chrono::hours(1000);
  at.boot_lo_ms = at.boot_hi_ms = now;
  std::vector<uint8_t> out(dns::kMaxMessageSize);
  for (const SnapshotEntry& e : loaded->entries) {
    check(e.packet.data() >= loaded->bytes.data() &&
              e.packet.data() + e.packet.size() <= loaded->bytes.data() + loaded->bytes.size(),
          "entry packet outside the image");
    dns::Name name;
    uint16_t qtype = 0, qclass = 0;
    check(validSnapshotEntry(e, name, qtype, qclass), "accepted entry does not validate");
    if (!c.importEntry(e, at)) continue;
    uint8_t qbuf[512];
    const size_t qlen = dns::buildQuery(0x4242, name, qtype, qclass, dns::flag::RD, e.dnssec_ok,
                                        1232, e.dnssec_ok, dns::MutableBytes(qbuf, sizeof(qbuf)));
    if (qlen == 0) continue;
    dns::Query q;
    if (dns::parseQuery(dns::ByteView(qbuf, qlen), q) != dns::QueryStatus::kOk) continue;
    const uint64_t key_hash = dns::keyHash(q);
    for (size_t limit : {size_t{512}, size_t{65535}}) {
      LookupResult r = c.lookup(dns::ByteView(qbuf, qlen), q, key_hash, at.steady, limit,
                                dns::MutableBytes(out));
      if (r.kind == Kind::kHit || r.kind == Kind::kStale) {
        check(r.length >= dns::kHeaderSize && r.length <= limit, "hit length out of range");
      }
    }
  }
  // Re-export what was imported: it must encode and parse again.
  SnapshotBuffer buf;
  Cache::ExportCursor cur;
  while (!cur.done()) cur = c.exportSome(cur, 64, at, 0, buf);
  std::string why2;
  auto again = parseSnapshot(encodeSnapshot({"g"}, {&buf}, boot, now), boot, now, why2);
  check(again.has_value() || boot == BootId{}, "re-exported snapshot refused");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (size_t{1} << 20)) return 0;
  std::vector<uint8_t> img(data, data + size);
  exercise(img);
  if (size >= kSnapshotHeaderSize) {
    dns::store32(img.data() + 56, crc32c(dns::ByteView(img).subspan(kSnapshotHeaderSize)));
    dns::store32(img.data() + 60, crc32c(dns::ByteView(img.data(), 60)));
    exercise(std::move(img));
  }
  return 0;
}
