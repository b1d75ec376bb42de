#pragma once
// Cache snapshots: the on-disk form of a node-cache's cache entries (issue 10, "warm cache"),
// so that a restarted process (after an upgrade, a crash, SIGKILL or OOM) starts with the
// entries its predecessor had, with their remaining lifetimes and never longer ones.
//
// File layout (all integers big-endian, like DNS):
//
//   header, 64 bytes
//     0  magic "NLDCACHE"           8
//     8  version (kSnapshotVersion) 4
//    12  reserved, 0                4
//    16  boot id                    16  (/proc/sys/kernel/random/boot_id)
//    32  written_boot_ms            8   (CLOCK_BOOTTIME, milliseconds)
//    40  group count                4
//    44  entry count                4
//    48  payload length             8
//    56  CRC32C of the payload      4
//    60  CRC32C of bytes 0..59      4
//   payload
//     group_count × { u16 length, identity bytes }      (which server block / cache settings)
//     entry_count × { u32 group, u8 bits (1 denial, 2 DO, 4 CD), u16 stored flags,
//                     u32 duration, u64 inserted_boot_ms, u16 packet length, u16 TTL count,
//                     packet bytes, TTL count × u16 TTL offsets }
//
// Time: an entry's age must survive the process, so it is kept on CLOCK_BOOTTIME, which every
// process on the same boot shares (steady_clock, CLOCK_MONOTONIC, does too, but it stops during
// suspend and its zero is not documented as shared). A snapshot written on another boot (another
// boot id) is foreign and refused: its clock readings mean nothing now. Ages are rounded so that
// an entry only ever looks older after a round trip, never younger: the TTL a client gets after a
// restart is at most what it would have got without one (see ClockPair).
//
// Identity: every entry names a group, an opaque string built by the server from a block's zones,
// listeners and cache settings (blockCacheIdentity in server/plan.cc, settingsFingerprint here).
// Entries are loaded only into the cache of a block with the same identity.
//
// Robustness: the file is untrusted input (a crash half-way, a disk error, another version, a
// hand-edited file). parseSnapshot validates everything — sizes, both checksums, the boot, the
// age, and every entry's packet so that the cache's hit path can trust it (question name
// uncompressed at offset 12, every TTL offset inside the packet) — and refuses the whole file
// with one reason otherwise. Bounded: at most kMaxSnapshotBytes and kMaxSnapshotEntries; the
// writer stops adding entries before either is reached and the reader refuses a larger file.
// fuzz/cache_snapshot feeds it arbitrary bytes.
//
// Thread affinity: everything here is a pure function of its arguments or a value type; the file
// functions do blocking I/O and belong on a control thread, never on a worker loop.
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cache/settings.h"
#include "cache/store.h"
#include "dns/message.h"

namespace nld::cache {

inline constexpr char kSnapshotMagic[8] = {'N', 'L', 'D', 'C', 'A', 'C', 'H', 'E'};
inline constexpr uint32_t kSnapshotVersion = 1;
inline constexpr size_t kSnapshotHeaderSize = 64;
/// Upper bounds of one snapshot (writer stops before, reader refuses beyond). 256 MiB holds
/// about two million typical entries, far more than node-cache's default 10k + 10k per block.
inline constexpr size_t kMaxSnapshotBytes = size_t{256} << 20;
inline constexpr size_t kMaxSnapshotEntries = size_t{1} << 22;
inline constexpr size_t kMaxSnapshotGroups = 4096;
inline constexpr size_t kMaxGroupIdentity = 8192;
/// A snapshot written longer ago than this is refused as too old: every entry of a default
/// configuration (success TTL ≤ 1 h, serve_stale ≤ 1 h by default) would be dead anyway, and an
/// old file most likely belongs to a node-cache that has long been replaced.
inline constexpr std::chrono::hours kMaxSnapshotAge{6};
/// Fixed part of an entry record in the payload (before the packet bytes).
inline constexpr size_t kSnapshotEntryFixed = 4 + 1 + 2 + 4 + 8 + 2 + 2;

using BootId = std::array<uint8_t, 16>;
/// The kernel's boot id (/proc/sys/kernel/random/boot_id) as 16 bytes; all zero if unreadable
/// (then every snapshot is foreign, as it should be when the boot cannot be told).
BootId readBootId();

/// The steady clock (the cache's) and CLOCK_BOOTTIME (the snapshot's) read back to back, for
/// converting instants between them. Reading boot, steady, boot gives boot_lo ≤ boot(steady) ≤
/// boot_hi: exporting uses boot_lo (an insertion instant lands no later than it was), importing
/// uses boot_hi (an age comes out no smaller than it is), so rounding never extends a TTL.
struct ClockPair {
  Clock::time_point steady{};
  int64_t boot_lo_ms = 0;  // rounded down
  int64_t boot_hi_ms = 0;  // rounded up
  static ClockPair now();
};

/// One cache entry on its way into or out of a snapshot. A view: `packet` and `ttl_offsets`
/// point into the cache (export) or the loaded file (import).
struct SnapshotEntry {
  uint32_t group = 0;  // index into the snapshot's groups
  bool denial = false;
  bool dnssec_ok = false;
  bool checking_disabled = false;
  uint16_t flags = 0;            // the upstream's RA, AD and RCODE bits
  uint32_t duration = 0;         // seconds fresh from insertion, as originally decided
  int64_t inserted_boot_ms = 0;  // insertion instant on CLOCK_BOOTTIME
  dns::ByteView packet;          // response without OPT; question uncompressed at offset 12
  dns::ByteView ttl_offsets;     // 2 bytes (big-endian) per TTL field offset
};

/// True if the entry's packet can be served by the cache's hit path: a header, one question whose
/// name is uncompressed at offset 12, every TTL offset after the question and inside the packet.
/// Sets `name` to the question name and `qtype`/`qclass`. Pure.
bool validSnapshotEntry(const SnapshotEntry& e, dns::Name& name, uint16_t& qtype, uint16_t& qclass);

/// Accumulates encoded entries (one per worker while it exports its partitions), up to a byte
/// budget. Kept in chunks of kChunkBytes so that growing never copies what is already encoded
/// (a doubling vector would move megabytes inside one worker's slice). Not thread-safe: one
/// owner at a time.
class SnapshotBuffer {
 public:
  static constexpr size_t kChunkBytes = size_t{256} << 10;
  explicit SnapshotBuffer(size_t max_bytes = kMaxSnapshotBytes - kSnapshotHeaderSize);
  /// Appends `e`; false (nothing appended) if it would exceed the budget or the entry cap.
  bool add(const SnapshotEntry& e);
  size_t entries() const { return entries_; }
  size_t size() const { return size_; }
  bool full() const { return full_; }
  /// The encoded entries, in order, split at entry boundaries.
  const std::vector<std::vector<uint8_t>>& chunks() const { return chunks_; }

 private:
  std::vector<std::vector<uint8_t>> chunks_;
  size_t max_bytes_;
  size_t size_ = 0;
  size_t entries_ = 0;
  bool full_ = false;
};

/// Canonical text of a cache configuration for snapshot and reload matching: every field of
/// `s` except `partitions` (the worker count may change between processes; entries are
/// redistributed by name). Equal text ⇔ equal settings.
std::string settingsFingerprint(const Settings& s);

/// CRC32C (Castagnoli) of `data`, continuing from `crc` (0 to start). Pure.
uint32_t crc32c(dns::ByteView data, uint32_t crc = 0);

/// Encodes a complete snapshot file image: header, `groups`, then the entries of every part in
/// order. Throws std::length_error if the result would exceed the bounds (the parts' budgets
/// prevent that when they share kMaxSnapshotBytes).
std::vector<uint8_t> encodeSnapshot(const std::vector<std::string>& groups,
                                    const std::vector<const SnapshotBuffer*>& parts,
                                    const BootId& boot, int64_t written_boot_ms);

/// Writes `image` to `path` atomically: a temporary file in the same directory (named after the
/// process id, so two processes never share one), fsync, rename over `path`, fsync of the
/// directory. Throws std::runtime_error naming the file and errno text; leaves no temporary
/// file behind on failure.
void writeFileAtomically(const std::string& path, const std::vector<uint8_t>& image);

/// A parsed, fully validated snapshot. `entries` point into `bytes`.
struct LoadedSnapshot {
  std::vector<uint8_t> bytes;
  std::vector<std::string> groups;
  std::vector<SnapshotEntry> entries;
  int64_t written_boot_ms = 0;
};

/// Validates and parses a snapshot image. On refusal returns nullopt and sets `why` to one short
/// reason ("truncated: ...", "bad magic", "version 7, want 1", "written on another boot",
/// "too old: written 7h ago", "checksum mismatch", ...). Never reads out of bounds, never
/// allocates more than a small multiple of the input size, runs in time linear in it.
std::optional<LoadedSnapshot> parseSnapshot(std::vector<uint8_t> bytes, const BootId& boot,
                                            int64_t now_boot_ms, std::string& why);

/// Reads and parses the file at `path`. A missing file sets `missing` (and `why`); a file over
/// kMaxSnapshotBytes is refused without reading it. Blocking I/O.
std::optional<LoadedSnapshot> readSnapshotFile(const std::string& path, const BootId& boot,
                                               int64_t now_boot_ms, std::string& why,
                                               bool& missing);

}  // namespace nld::cache
