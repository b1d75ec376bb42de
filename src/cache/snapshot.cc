#include "cache/snapshot.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <stdexcept>

#include "fmt/format.h"
#include "net/fd.h"

namespace nld::cache {
namespace {

// CRC32C, reflected polynomial 0x82F63B78, one table lookup per byte. Hand-written (20 lines)
// instead of linking zlib (whose crc32 is the other polynomial anyway) or a hashing library:
// node-cache keeps its shared libraries to a minimum for its idle RSS (issue 6), and this runs
// once per snapshot, not on the query path (~1 ns/byte: 10 ms for a 10 MiB file).
constexpr std::array<uint32_t, 256> makeCrcTable() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr std::array<uint32_t, 256> kCrcTable = makeCrcTable();

void put8(std::vector<uint8_t>& v, uint8_t x) { v.push_back(x); }
void put16(std::vector<uint8_t>& v, uint16_t x) {
  v.push_back(static_cast<uint8_t>(x >> 8));
  v.push_back(static_cast<uint8_t>(x));
}
void put32(std::vector<uint8_t>& v, uint32_t x) {
  put16(v, static_cast<uint16_t>(x >> 16));
  put16(v, static_cast<uint16_t>(x));
}
void put64(std::vector<uint8_t>& v, uint64_t x) {
  put32(v, static_cast<uint32_t>(x >> 32));
  put32(v, static_cast<uint32_t>(x));
}
uint64_t load64(const uint8_t* p) { return (uint64_t{dns::load32(p)} << 32) | dns::load32(p + 4); }

int64_t bootNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_BOOTTIME, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// Bounds-checked reader over the payload; every read fails (and stays failed) past the end.
struct Reader {
  const uint8_t* p;
  size_t left;
  bool ok = true;
  bool need(size_t n) {
    if (!ok || left < n) ok = false;
    return ok;
  }
  const uint8_t* take(size_t n) {
    if (!need(n)) return nullptr;
    const uint8_t* r = p;
    p += n;
    left -= n;
    return r;
  }
  uint8_t u8() {
    const uint8_t* q = take(1);
    return q ? q[0] : 0;
  }
  uint16_t u16() {
    const uint8_t* q = take(2);
    return q ? dns::load16(q) : 0;
  }
  uint32_t u32() {
    const uint8_t* q = take(4);
    return q ? dns::load32(q) : 0;
  }
  uint64_t u64() {
    const uint8_t* q = take(8);
    return q ? load64(q) : 0;
  }
};

std::string ageText(int64_t ms) {
  const int64_t s = ms / 1000;
  if (s >= 3600) return fmt::format("{}h{}m", s / 3600, (s % 3600) / 60);
  if (s >= 60) return fmt::format("{}m{}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

}  // namespace

uint32_t crc32c(dns::ByteView data, uint32_t crc) {
  crc = ~crc;
  for (uint8_t b : data) crc = kCrcTable[(crc ^ b) & 0xff] ^ (crc >> 8);
  return ~crc;
}

BootId readBootId() {
  BootId id{};
  std::FILE* f = std::fopen("/proc/sys/kernel/random/boot_id", "re");
  if (f == nullptr) return id;
  char text[64] = {};
  const size_t n = std::fread(text, 1, sizeof(text) - 1, f);
  std::fclose(f);
  // "0b1f2c3d-...": 32 hex digits and dashes.
  size_t digits = 0;
  for (size_t i = 0; i < n && digits < 32; ++i) {
    const char c = text[i];
    int v = -1;
    if (c >= '0' && c <= '9') v = c - '0';
    if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
    if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
    if (v < 0) continue;
    id[digits / 2] = static_cast<uint8_t>(id[digits / 2] | (v << ((digits % 2) ? 0 : 4)));
    ++digits;
  }
  if (digits != 32) id.fill(0);
  return id;
}

ClockPair ClockPair::now() {
  ClockPair p;
  const int64_t lo = bootNs();
  p.steady = Clock::now();
  const int64_t hi = bootNs();
  p.boot_lo_ms = lo / 1'000'000;
  p.boot_hi_ms = (hi + 999'999) / 1'000'000;
  return p;
}

bool validSnapshotEntry(const SnapshotEntry& e, dns::Name& name, uint16_t& qtype,
                        uint16_t& qclass) {
  const dns::ByteView pkt = e.packet;
  if (pkt.size() < dns::kHeaderSize + 1 + 4 || pkt.size() > dns::kMaxMessageSize) return false;
  if (dns::load16(pkt.data() + 4) != 1) return false;  // QDCOUNT
  // The question name, uncompressed (the hit path copies the client's name over it in place).
  size_t off = dns::kHeaderSize;
  for (;;) {
    if (off >= pkt.size()) return false;
    const uint8_t len = pkt[off];
    if (len == 0) break;
    if (len > 63) return false;  // compression pointer or obsolete label type
    off += size_t{len} + 1;
    if (off - dns::kHeaderSize >= dns::kMaxNameLength) return false;
  }
  const size_t name_len = off + 1 - dns::kHeaderSize;
  const size_t question_end = off + 1 + 4;
  if (question_end > pkt.size()) return false;
  name.len = static_cast<uint8_t>(name_len);
  std::memcpy(name.data.data(), pkt.data() + dns::kHeaderSize, name_len);
  qtype = dns::load16(pkt.data() + off + 1);
  qclass = dns::load16(pkt.data() + off + 3);
  if (e.ttl_offsets.size() % 2 != 0 || e.ttl_offsets.size() / 2 > UINT16_MAX) return false;
  for (size_t i = 0; i < e.ttl_offsets.size(); i += 2) {
    const size_t t = dns::load16(e.ttl_offsets.data() + i);
    if (t < question_end || t + 4 > pkt.size()) return false;
  }
  return true;
}

SnapshotBuffer::SnapshotBuffer(size_t max_bytes) : max_bytes_(max_bytes) {}

bool SnapshotBuffer::add(const SnapshotEntry& e) {
  const size_t need = kSnapshotEntryFixed + e.packet.size() + e.ttl_offsets.size();
  if (full_ || size_ + need > max_bytes_ || entries_ >= kMaxSnapshotEntries ||
      e.packet.size() > UINT16_MAX || e.ttl_offsets.size() / 2 > UINT16_MAX) {
    full_ = full_ || size_ + need > max_bytes_ || entries_ >= kMaxSnapshotEntries;
    return false;
  }
  if (chunks_.empty() || chunks_.back().capacity() - chunks_.back().size() < need) {
    chunks_.emplace_back();
    chunks_.back().reserve(std::max(kChunkBytes, need));
  }
  std::vector<uint8_t>& out = chunks_.back();
  size_ += need;
  put32(out, e.group);
  put8(out, static_cast<uint8_t>((e.denial ? 1 : 0) | (e.dnssec_ok ? 2 : 0) |
                                 (e.checking_disabled ? 4 : 0)));
  put16(out, e.flags);
  put32(out, e.duration);
  put64(out, static_cast<uint64_t>(e.inserted_boot_ms));
  put16(out, static_cast<uint16_t>(e.packet.size()));
  put16(out, static_cast<uint16_t>(e.ttl_offsets.size() / 2));
  out.insert(out.end(), e.packet.begin(), e.packet.end());
  out.insert(out.end(), e.ttl_offsets.begin(), e.ttl_offsets.end());
  ++entries_;
  return true;
}

std::string settingsFingerprint(const Settings& s) {
  std::string out = fmt::format(
      "success={}/{}/{} denial={}/{}/{} servfail={} prefetch={}/{}/{} stale={}/{} keepttl={} "
      "budget={}",
      s.success_capacity, s.success_min_ttl, s.success_max_ttl, s.denial_capacity, s.denial_min_ttl,
      s.denial_max_ttl, s.servfail_ttl, s.prefetch_amount, s.prefetch_window_s,
      s.prefetch_percentage, s.serve_stale_s ? int64_t{*s.serve_stale_s} : int64_t{-1},
      s.serve_stale_verify ? 1 : 0, s.keepttl ? 1 : 0, s.bytes_per_entry_budget);
  out += " disable_success=";
  for (const auto& n : s.disable_success) out += n.toString() + ",";
  out += " disable_denial=";
  for (const auto& n : s.disable_denial) out += n.toString() + ",";
  return out;
}

std::vector<uint8_t> encodeSnapshot(const std::vector<std::string>& groups,
                                    const std::vector<const SnapshotBuffer*>& parts,
                                    const BootId& boot, int64_t written_boot_ms) {
  if (groups.size() > kMaxSnapshotGroups) throw std::length_error("too many snapshot groups");
  size_t entries = 0;
  size_t size = kSnapshotHeaderSize;
  for (const auto& g : groups) {
    if (g.size() > kMaxGroupIdentity) throw std::length_error("snapshot group identity too long");
    size += 2 + g.size();
  }
  for (const SnapshotBuffer* p : parts) {
    entries += p->entries();
    size += p->size();
  }
  if (size > kMaxSnapshotBytes || entries > kMaxSnapshotEntries) {
    throw std::length_error("snapshot exceeds its size bounds");
  }
  // The header is filled in place (GCC 12 mis-reports vector range inserts of the magic).
  std::vector<uint8_t> img(kSnapshotHeaderSize, 0);
  img.reserve(size);
  uint8_t* h = img.data();
  std::memcpy(h, kSnapshotMagic, sizeof(kSnapshotMagic));
  dns::store32(h + 8, kSnapshotVersion);
  std::memcpy(h + 16, boot.data(), boot.size());
  dns::store32(h + 32, static_cast<uint32_t>(static_cast<uint64_t>(written_boot_ms) >> 32));
  dns::store32(h + 36, static_cast<uint32_t>(written_boot_ms));
  dns::store32(h + 40, static_cast<uint32_t>(groups.size()));
  dns::store32(h + 44, static_cast<uint32_t>(entries));
  const uint64_t payload_len = size - kSnapshotHeaderSize;
  dns::store32(h + 48, static_cast<uint32_t>(payload_len >> 32));
  dns::store32(h + 52, static_cast<uint32_t>(payload_len));
  // 56: payload CRC and 60: header CRC, filled in below.
  for (const auto& g : groups) {
    put16(img, static_cast<uint16_t>(g.size()));
    img.insert(img.end(), g.begin(), g.end());
  }
  for (const SnapshotBuffer* p : parts) {
    for (const auto& c : p->chunks()) img.insert(img.end(), c.begin(), c.end());
  }
  dns::store32(img.data() + 56, crc32c(dns::ByteView(img).subspan(kSnapshotHeaderSize)));
  dns::store32(img.data() + 60, crc32c(dns::ByteView(img.data(), 60)));
  return img;
}

void writeFileAtomically(const std::string& path, const std::vector<uint8_t>& image) {
  const std::string tmp = fmt::format("{}.tmp.{}", path, ::getpid());
  auto fail = [&](const char* what) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error(fmt::format("{} {}: {}", what, tmp, std::strerror(err)));
  };
  net::Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) {
    const int err = errno;
    throw std::runtime_error(fmt::format("create {}: {}", tmp, std::strerror(err)));
  }
  size_t done = 0;
  while (done < image.size()) {
    const ssize_t n = ::write(fd.get(), image.data() + done, image.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("write");
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0) fail("fsync");
  if (fd.close() != 0) fail("close");
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail("rename");
  // Make the rename itself durable: a crash right after must not bring the old file back.
  const size_t slash = path.rfind('/');
  const std::string dir =
      slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const net::Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd) ::fsync(dfd.get());
}

std::optional<LoadedSnapshot> parseSnapshot(std::vector<uint8_t> bytes, const BootId& boot,
                                            int64_t now_boot_ms, std::string& why) {
  const size_t size = bytes.size();
  if (size < kSnapshotHeaderSize) {
    why = fmt::format("truncated: {} bytes, shorter than the {}-byte header", size,
                      kSnapshotHeaderSize);
    return std::nullopt;
  }
  if (size > kMaxSnapshotBytes) {
    why = fmt::format("too large: {} bytes, limit {}", size, kMaxSnapshotBytes);
    return std::nullopt;
  }
  const uint8_t* h = bytes.data();
  if (std::memcmp(h, kSnapshotMagic, sizeof(kSnapshotMagic)) != 0) {
    why = "bad magic (not a node-cache cache snapshot)";
    return std::nullopt;
  }
  const uint32_t version = dns::load32(h + 8);
  if (version != kSnapshotVersion) {
    why = fmt::format("unsupported version {} (this node-cache reads version {})", version,
                      kSnapshotVersion);
    return std::nullopt;
  }
  if (crc32c(dns::ByteView(h, 60)) != dns::load32(h + 60)) {
    why = "header checksum mismatch (corrupt)";
    return std::nullopt;
  }
  const uint64_t payload_len = load64(h + 48);
  if (payload_len != size - kSnapshotHeaderSize) {
    why = fmt::format("{}: payload is {} bytes, header says {}",
                      payload_len > size - kSnapshotHeaderSize ? "truncated" : "trailing bytes",
                      size - kSnapshotHeaderSize, payload_len);
    return std::nullopt;
  }
  const dns::ByteView payload(h + kSnapshotHeaderSize, size - kSnapshotHeaderSize);
  if (crc32c(payload) != dns::load32(h + 56)) {
    why = "payload checksum mismatch (corrupt)";
    return std::nullopt;
  }
  if (std::memcmp(h + 16, boot.data(), boot.size()) != 0 || boot == BootId{}) {
    why = "foreign: written on another boot (boot id differs), its clock readings do not apply";
    return std::nullopt;
  }
  const auto written = static_cast<int64_t>(load64(h + 32));
  if (written < 0 || written > now_boot_ms) {
    why = "written in the future (boot clock readings inconsistent)";
    return std::nullopt;
  }
  const int64_t max_age_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(kMaxSnapshotAge).count();
  if (now_boot_ms - written > max_age_ms) {
    why = fmt::format("too old: written {} ago, limit {}", ageText(now_boot_ms - written),
                      ageText(max_age_ms));
    return std::nullopt;
  }
  const uint32_t group_count = dns::load32(h + 40);
  const uint32_t entry_count = dns::load32(h + 44);
  if (group_count > kMaxSnapshotGroups || entry_count > kMaxSnapshotEntries) {
    why = fmt::format("{} groups / {} entries, over the limits {} / {}", group_count, entry_count,
                      kMaxSnapshotGroups, kMaxSnapshotEntries);
    return std::nullopt;
  }
  // Every entry takes at least its fixed part plus a minimal packet: an entry count the payload
  // cannot hold is refused before anything is reserved for it.
  if (uint64_t{entry_count} * (kSnapshotEntryFixed + dns::kHeaderSize + 5) > payload.size()) {
    why = fmt::format("truncated: {} entries cannot fit in {} payload bytes", entry_count,
                      payload.size());
    return std::nullopt;
  }

  LoadedSnapshot out;
  out.written_boot_ms = written;
  Reader r{payload.data(), payload.size()};
  out.groups.reserve(group_count);
  for (uint32_t i = 0; i < group_count; ++i) {
    const uint16_t len = r.u16();
    const uint8_t* p = r.take(len);
    if (!r.ok) {
      why = fmt::format("truncated in group {} of {}", i, group_count);
      return std::nullopt;
    }
    out.groups.emplace_back(reinterpret_cast<const char*>(p), len);
  }
  out.entries.reserve(entry_count);
  for (uint32_t i = 0; i < entry_count; ++i) {
    SnapshotEntry e;
    e.group = r.u32();
    const uint8_t bits = r.u8();
    e.flags = r.u16();
    e.duration = r.u32();
    const uint64_t inserted = r.u64();
    const uint16_t pkt_len = r.u16();
    const uint16_t ttls = r.u16();
    const uint8_t* pkt = r.take(pkt_len);
    const uint8_t* offs = r.take(size_t{ttls} * 2);
    if (!r.ok) {
      why = fmt::format("truncated in entry {} of {}", i, entry_count);
      return std::nullopt;
    }
    e.denial = (bits & 1) != 0;
    e.dnssec_ok = (bits & 2) != 0;
    e.checking_disabled = (bits & 4) != 0;
    e.inserted_boot_ms = static_cast<int64_t>(inserted);
    e.packet = dns::ByteView(pkt, pkt_len);
    e.ttl_offsets = dns::ByteView(offs, size_t{ttls} * 2);
    dns::Name name;
    uint16_t qtype = 0, qclass = 0;
    if (e.group >= group_count || (bits & ~7u) != 0 || e.inserted_boot_ms < 0 ||
        e.inserted_boot_ms > written || !validSnapshotEntry(e, name, qtype, qclass)) {
      why = fmt::format("invalid entry {} of {}", i, entry_count);
      return std::nullopt;
    }
    out.entries.push_back(e);
  }
  if (r.left != 0) {
    why = fmt::format("{} trailing payload bytes after the last entry", r.left);
    return std::nullopt;
  }
  // The views point into the vector's heap block, which a move keeps in place.
  out.bytes = std::move(bytes);
  return out;
}

std::optional<LoadedSnapshot> readSnapshotFile(const std::string& path, const BootId& boot,
                                               int64_t now_boot_ms, std::string& why,
                                               bool& missing) {
  missing = false;
  const net::Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) {
    missing = errno == ENOENT;
    why = std::strerror(errno);
    return std::nullopt;
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    why = "not a regular file";
    return std::nullopt;
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxSnapshotBytes) {
    why = fmt::format("too large: {} bytes, limit {}", st.st_size, kMaxSnapshotBytes);
    return std::nullopt;
  }
  std::vector<uint8_t> bytes(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::read(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      why = fmt::format("read: {}", std::strerror(err));
      return std::nullopt;
    }
    if (n == 0) break;  // shrank while reading: parse what is there (it will be refused)
    done += static_cast<size_t>(n);
  }
  bytes.resize(done);
  return parseSnapshot(std::move(bytes), boot, now_boot_ms, why);
}

}  // namespace nld::cache
