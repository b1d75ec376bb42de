// Cache snapshots (cache/snapshot.h, Cache::exportSome / importEntry): round trip, TTLs never
// extended by a round trip, expired entries skipped, slicing, and every refusal of a damaged or
// foreign file. Fake clocks throughout: `ClockPair`s are built by hand, nothing sleeps.
#include "cache/snapshot.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <string>

#include "cache_fixture.h"
#include "net/fd.h"
#include "support/open_fds.h"
#include "support/temp_dir.h"

namespace nld::cache::testing {
namespace {

constexpr BootId kBoot = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
// Boot-clock milliseconds corresponding to the fixture's t0_ in the "old" process.
constexpr int64_t kBoot0 = 50'000'000;

Settings settings1() {
  Settings s;
  s.partitions = 1;
  return s;
}

class SnapshotTest : public CacheTest {
 protected:
  // The old process's clocks `ms` milliseconds after t0_ (boot = kBoot0 at t0_).
  ClockPair oldClock(int64_t ms) const {
    ClockPair p;
    p.steady = t0_ + std::chrono::milliseconds(ms);
    p.boot_lo_ms = kBoot0 + ms;
    p.boot_hi_ms = kBoot0 + ms;
    return p;
  }
  // The new process: its steady clock has another origin (t0_ + 400 h ↔ the same boot instant
  // as old t0_ + `ms`), as a restarted process's loop times would.
  Clock::time_point newSteady(int64_t ms) const {
    return t0_ + std::chrono::hours(400) + std::chrono::milliseconds(ms);
  }
  ClockPair newClock(int64_t ms) const {
    ClockPair p;
    p.steady = newSteady(ms);
    p.boot_lo_ms = kBoot0 + ms;
    p.boot_hi_ms = kBoot0 + ms;
    return p;
  }

  // Exports everything of `c` at old time `ms` into one image.
  std::vector<uint8_t> snapshotOf(const Cache& c, int64_t ms, size_t* written = nullptr,
                                  size_t slice = 1000) {
    SnapshotBuffer buf;
    Cache::ExportCursor cur;
    while (!cur.done()) cur = c.exportSome(cur, slice, oldClock(ms), 0, buf);
    if (written) *written = buf.entries();
    return encodeSnapshot({"group-a"}, {&buf}, kBoot, kBoot0 + ms);
  }

  std::optional<LoadedSnapshot> parse(std::vector<uint8_t> img, int64_t now_ms,
                                      std::string* why_out = nullptr, const BootId& boot = kBoot) {
    std::string why;
    auto r = parseSnapshot(std::move(img), boot, kBoot0 + now_ms, why);
    if (why_out) *why_out = why;
    return r;
  }

  LookupResult getAt(Cache& c, const TestQuery& q, Clock::time_point t) {
    return c.lookup(q.view(), q.q, dns::keyHash(q.q), t, 65535, dns::MutableBytes(buf_));
  }

  // Small image with a few different entries, for the refusal cases.
  std::vector<uint8_t> smallImage() {
    Cache c(settings1());
    put(c, positive("a.example.org", 300));
    put(c, nxdomain("b.example.org", 600, 120));
    QueryOptions o;
    o.edns = true;
    o.dnssec_ok = true;
    put(c, positive("c.example.org", 60), o);
    size_t n = 0;
    auto img = snapshotOf(c, 1000, &n);
    EXPECT_EQ(n, 3u);
    return img;
  }

  static void fixHeaderCrc(std::vector<uint8_t>& img) {
    dns::store32(img.data() + 60, crc32c(dns::ByteView(img.data(), 60)));
  }
  static void fixCrcs(std::vector<uint8_t>& img) {
    dns::store32(img.data() + 56, crc32c(dns::ByteView(img).subspan(kSnapshotHeaderSize)));
    fixHeaderCrc(img);
  }
};

TEST_F(SnapshotTest, Crc32cKnownValue) {
  // RFC 3720 B.4 test vector: 32 bytes of zeros.
  std::vector<uint8_t> zeros(32, 0);
  EXPECT_EQ(crc32c(dns::ByteView(zeros)), 0x8A9136AAu);
  const std::string digits = "123456789";
  EXPECT_EQ(crc32c(dns::ByteView(reinterpret_cast<const uint8_t*>(digits.data()), 9)), 0xE3069283u);
}

TEST_F(SnapshotTest, RoundTripAnswersLikeTheOriginal) {
  Cache a(settings1());
  put(a, positive("a.example.org", 300));
  put(a, nxdomain("nx.example.org", 600, 120));
  QueryOptions dnssec;
  dnssec.edns = true;
  dnssec.dnssec_ok = true;
  put(a, positive("do.example.org", 200), dnssec);
  QueryOptions cd;
  cd.flags = dns::flag::RD | dns::flag::CD;
  put(a, positive("cd.example.org", 250), cd);

  size_t written = 0;
  auto img = snapshotOf(a, 10'000, &written);
  EXPECT_EQ(written, 4u);
  auto loaded = parse(img, 30'000);
  ASSERT_TRUE(loaded.has_value());
  ASSERT_EQ(loaded->groups.size(), 1u);
  EXPECT_EQ(loaded->groups[0], "group-a");
  ASSERT_EQ(loaded->entries.size(), 4u);

  Cache b(settings1());
  size_t imported = 0;
  for (const auto& e : loaded->entries) imported += b.importEntry(e, newClock(30'000)) ? 1 : 0;
  EXPECT_EQ(imported, 4u);
  EXPECT_EQ(b.stats().entries_success.load(), 3u);
  EXPECT_EQ(b.stats().entries_denial.load(), 1u);

  struct Case {
    std::string name;
    QueryOptions o;
  };
  for (const Case& k : {Case{"a.example.org", {}}, Case{"nx.example.org", {}},
                        Case{"do.example.org", dnssec}, Case{"cd.example.org", cd}}) {
    TestQuery q = makeQuery(k.name, k.o);
    // Same instant in both processes: old t0 + 30 s ↔ new newSteady(30 s).
    auto ra = getAt(a, q, t0_ + std::chrono::seconds(30));
    std::vector<uint8_t> from_a(buf_.begin(), buf_.begin() + long(ra.length));
    auto rb = getAt(b, q, newSteady(30'000));
    ASSERT_EQ(rb.kind, Kind::kHit) << k.name;
    std::vector<uint8_t> from_b(buf_.begin(), buf_.begin() + long(rb.length));
    EXPECT_EQ(from_a, from_b) << k.name;
    EXPECT_EQ(ra.denial, rb.denial) << k.name;
  }
  // DO/CD are part of the key: the plain query for do.example.org is still a miss.
  EXPECT_EQ(getAt(b, makeQuery("do.example.org"), newSteady(30'000)).kind, Kind::kMiss);
  EXPECT_EQ(getAt(b, makeQuery("cd.example.org"), newSteady(30'000)).kind, Kind::kMiss);
}

TEST_F(SnapshotTest, TtlNeverExtendedWhateverTheSubSecondPhase) {
  // Insert, export and import at every combination of sub-second offsets; at every later
  // instant the imported entry's TTL is ≤ the original's at the same instant.
  for (int ins = 0; ins < 1000; ins += 250) {
    for (int exp = 0; exp < 1000; exp += 330) {
      for (int imp = 0; imp < 1000; imp += 410) {
        Cache a(settings1());
        ResponseSpec spec = positive("t.example.org", 100);
        TestQuery q = makeQuery(spec.qname);
        TestResponse r = makeResponse(spec);
        a.insert(q.q, dns::keyHash(q.q), r.view(), r.r, t0_ + std::chrono::milliseconds(ins));
        SnapshotBuffer buf;
        ClockPair ex = oldClock(20'000 + exp);
        ex.boot_hi_ms += 1;  // a real reading brackets the steady one
        a.exportSome({}, 10, ex, 0, buf);
        ASSERT_EQ(buf.entries(), 1u);
        auto img = encodeSnapshot({"g"}, {&buf}, kBoot, ex.boot_hi_ms);
        const int64_t load_ms = 40'000 + imp;
        auto loaded = parse(img, load_ms);
        ASSERT_TRUE(loaded.has_value());
        Cache b(settings1());
        ClockPair im = newClock(load_ms);
        im.boot_lo_ms -= 1;
        ASSERT_TRUE(b.importEntry(loaded->entries[0], im));
        for (int64_t t = load_ms; t < 110'000; t += 370) {
          auto ra = getAt(a, q, t0_ + std::chrono::milliseconds(t));
          uint32_t ttl_a = ra.kind == Kind::kHit ? out(ra).ttls.at(0) : 0;
          auto rb = getAt(b, q, newSteady(t));
          if (rb.kind != Kind::kHit) continue;  // expired earlier: allowed
          uint32_t ttl_b = out(rb).ttls.at(0);
          ASSERT_LE(ttl_b, ttl_a) << "ins " << ins << " exp " << exp << " imp " << imp << " t "
                                  << t;
          ASSERT_GE(ttl_b + 1, ttl_a) << "more than a second lost";
        }
      }
    }
  }
}

TEST_F(SnapshotTest, ExpiredEntriesAreSkipped) {
  Cache a(settings1());
  put(a, positive("short.example.org", 10));
  put(a, positive("long.example.org", 300));
  size_t written = 0;
  // At 15 s the short entry is dead: not exported.
  auto img = snapshotOf(a, 15'000, &written);
  EXPECT_EQ(written, 1u);

  // Exported alive, dead by the time it is loaded: not imported.
  size_t both = 0;
  auto img2 = snapshotOf(a, 5'000, &both);
  EXPECT_EQ(both, 2u);
  auto loaded = parse(img2, 12'000);
  ASSERT_TRUE(loaded.has_value());
  Cache b(settings1());
  size_t imported = 0;
  for (const auto& e : loaded->entries) imported += b.importEntry(e, newClock(12'000)) ? 1 : 0;
  EXPECT_EQ(imported, 1u);
  EXPECT_EQ(getAt(b, makeQuery("short.example.org"), newSteady(12'000)).kind, Kind::kMiss);
  EXPECT_EQ(getAt(b, makeQuery("long.example.org"), newSteady(12'000)).kind, Kind::kHit);
}

TEST_F(SnapshotTest, StaleEntriesTravelOnlyToCachesThatServeStale) {
  Settings stale = settings1();
  stale.serve_stale_s = 3600;
  Cache a(stale);
  put(a, positive("s.example.org", 10));
  size_t written = 0;
  auto img = snapshotOf(a, 20'000, &written);  // expired, within the stale window
  EXPECT_EQ(written, 1u);
  auto loaded = parse(img, 25'000);
  ASSERT_TRUE(loaded.has_value());
  Cache plain(settings1());
  EXPECT_FALSE(plain.importEntry(loaded->entries[0], newClock(25'000)));
  Cache b(stale);
  EXPECT_TRUE(b.importEntry(loaded->entries[0], newClock(25'000)));
  auto r = getAt(b, makeQuery("s.example.org"), newSteady(25'000));
  EXPECT_EQ(r.kind, Kind::kStale);
}

TEST_F(SnapshotTest, ImportNeverReplacesALiveEntry) {
  Cache a(settings1());
  put(a, positive("x.example.org", 300));
  auto loaded = parse(snapshotOf(a, 0), 1000);
  ASSERT_TRUE(loaded.has_value());
  Cache b(settings1());
  ResponseSpec fresh = positive("x.example.org", 30);
  TestQuery q = makeQuery(fresh.qname);
  TestResponse r = makeResponse(fresh);
  b.insert(q.q, dns::keyHash(q.q), r.view(), r.r, newSteady(500));
  EXPECT_FALSE(b.importEntry(loaded->entries[0], newClock(1000)));
  auto res = getAt(b, q, newSteady(1000));
  ASSERT_EQ(res.kind, Kind::kHit);
  EXPECT_LE(out(res).ttls.at(0), 30u);
}

TEST_F(SnapshotTest, ImportHonoursDisableZones) {
  Cache a(settings1());
  put(a, positive("x.example.org", 300));
  auto loaded = parse(snapshotOf(a, 0), 1000);
  ASSERT_TRUE(loaded.has_value());
  Settings s = settings1();
  s.disable_success.push_back(name("example.org"));
  Cache b(s);
  EXPECT_FALSE(b.importEntry(loaded->entries[0], newClock(1000)));
}

TEST_F(SnapshotTest, SlicedExportVisitsEveryEntryOnce) {
  Settings s = settings1();
  s.success_capacity = 4096;
  Cache a(s);
  for (int i = 0; i < 300; ++i) put(a, positive("n" + std::to_string(i) + ".example.org", 300));
  for (int i = 0; i < 50; ++i) put(a, nxdomain("x" + std::to_string(i) + ".example.org", 300, 60));
  SnapshotBuffer buf;
  Cache::ExportCursor cur;
  size_t slices = 0;
  while (!cur.done()) {
    const size_t before = buf.entries();
    cur = a.exportSome(cur, 7, oldClock(1000), 3, buf);
    EXPECT_LE(buf.entries() - before, 7u);
    ++slices;
  }
  EXPECT_EQ(buf.entries(), 350u);
  EXPECT_GE(slices, 50u);
  auto loaded = parse(encodeSnapshot({"a", "b", "c", "d"}, {&buf}, kBoot, kBoot0 + 1000), 1000);
  ASSERT_TRUE(loaded.has_value());
  std::set<std::string> names;
  for (const auto& e : loaded->entries) {
    EXPECT_EQ(e.group, 3u);
    names.insert(std::string(e.packet.begin() + 12, e.packet.end()) + (e.denial ? "D" : "S"));
  }
  EXPECT_EQ(names.size(), 350u);
}

TEST_F(SnapshotTest, WriterStopsAtItsBudget) {
  Cache a(settings1());
  for (int i = 0; i < 100; ++i) put(a, positive("n" + std::to_string(i) + ".example.org", 300));
  SnapshotBuffer buf(2000);
  Cache::ExportCursor cur;
  while (!cur.done() && !buf.full()) cur = a.exportSome(cur, 1000, oldClock(0), 0, buf);
  EXPECT_TRUE(buf.full());
  EXPECT_GT(buf.entries(), 0u);
  EXPECT_LE(buf.size(), 2000u);
  auto loaded = parse(encodeSnapshot({"g"}, {&buf}, kBoot, kBoot0), 0);
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->entries.size(), buf.entries());
}

TEST_F(SnapshotTest, EmptySnapshotIsValid) {
  auto loaded = parse(encodeSnapshot({}, {}, kBoot, kBoot0), 0);
  ASSERT_TRUE(loaded.has_value());
  EXPECT_TRUE(loaded->entries.empty());
}

TEST_F(SnapshotTest, RefusesTruncationAtEveryLength) {
  auto img = smallImage();
  ASSERT_TRUE(parse(img, 1000).has_value());
  for (size_t len = 0; len < img.size(); ++len) {
    std::vector<uint8_t> cut(img.begin(), img.begin() + long(len));
    std::string why;
    EXPECT_FALSE(parse(cut, 1000, &why).has_value()) << len;
    EXPECT_FALSE(why.empty());
  }
  std::string why;
  EXPECT_FALSE(parse(std::vector<uint8_t>(img.begin(), img.begin() + 100), 1000, &why));
  EXPECT_NE(why.find("truncated"), std::string::npos) << why;
  auto longer = img;
  longer.push_back(0);
  EXPECT_FALSE(parse(longer, 1000, &why).has_value());
}

TEST_F(SnapshotTest, RefusesEveryFlippedByte) {
  auto img = smallImage();
  for (size_t i = 0; i < img.size(); ++i) {
    for (uint8_t bit : {uint8_t{0x01}, uint8_t{0x80}}) {
      auto bad = img;
      bad[i] ^= bit;
      EXPECT_FALSE(parse(bad, 1000).has_value()) << "byte " << i;
    }
  }
}

TEST_F(SnapshotTest, RefusesWrongMagicAndVersion) {
  auto img = smallImage();
  std::string why;
  auto magic = img;
  magic[0] = 'X';
  fixHeaderCrc(magic);
  EXPECT_FALSE(parse(magic, 1000, &why).has_value());
  EXPECT_NE(why.find("magic"), std::string::npos) << why;

  auto version = img;
  dns::store32(version.data() + 8, kSnapshotVersion + 1);
  fixHeaderCrc(version);
  EXPECT_FALSE(parse(version, 1000, &why).has_value());
  EXPECT_NE(why.find("version 2"), std::string::npos) << why;
}

TEST_F(SnapshotTest, RefusesAnotherBootAndAnUnknownBoot) {
  auto img = smallImage();
  std::string why;
  BootId other = kBoot;
  other[15] ^= 1;
  EXPECT_FALSE(parse(img, 1000, &why, other).has_value());
  EXPECT_NE(why.find("another boot"), std::string::npos) << why;
  // A process that cannot read its boot id trusts no snapshot, not even a zero-id one.
  auto zero = encodeSnapshot({}, {}, BootId{}, kBoot0);
  EXPECT_FALSE(parse(zero, 0, &why, BootId{}).has_value());
}

TEST_F(SnapshotTest, RefusesTooOldAndFuture) {
  auto img = smallImage();  // written at kBoot0 + 1000
  const int64_t max_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(kMaxSnapshotAge).count();
  EXPECT_TRUE(parse(img, 1000 + max_ms).has_value());
  std::string why;
  EXPECT_FALSE(parse(img, 1001 + max_ms, &why).has_value());
  EXPECT_NE(why.find("too old"), std::string::npos) << why;
  EXPECT_FALSE(parse(img, 999, &why).has_value());
  EXPECT_NE(why.find("future"), std::string::npos) << why;
}

TEST_F(SnapshotTest, RefusesInvalidEntriesEvenWithGoodChecksums) {
  auto img = smallImage();
  // The first entry starts after the one group ("group-a": 2 + 7 bytes).
  const size_t entry = kSnapshotHeaderSize + 2 + 7;
  const size_t pkt = entry + kSnapshotEntryFixed;
  std::string why;
  {
    auto bad = img;  // question name turned into a compression pointer
    bad[pkt + 12] = 0xC0;
    fixCrcs(bad);
    EXPECT_FALSE(parse(bad, 1000, &why).has_value());
    EXPECT_NE(why.find("invalid entry 0"), std::string::npos) << why;
  }
  {
    auto bad = img;  // group index out of range
    dns::store32(bad.data() + entry, 5);
    fixCrcs(bad);
    EXPECT_FALSE(parse(bad, 1000, &why).has_value());
  }
  {
    auto bad = img;  // TTL offset beyond the packet
    const uint16_t pkt_len = dns::load16(bad.data() + entry + 19);
    dns::store16(bad.data() + pkt + pkt_len, 0xFFF0);
    fixCrcs(bad);
    EXPECT_FALSE(parse(bad, 1000, &why).has_value());
  }
  {
    auto bad = img;  // inserted after the file was written
    dns::store32(bad.data() + entry + 15, 0x7FFFFFFF);
    fixCrcs(bad);
    EXPECT_FALSE(parse(bad, 1000, &why).has_value());
  }
  {
    auto bad = img;  // more entries claimed than the payload can hold
    dns::store32(bad.data() + 44, 1'000'000);
    fixHeaderCrc(bad);
    EXPECT_FALSE(parse(bad, 1000, &why).has_value());
    EXPECT_NE(why.find("truncated"), std::string::npos) << why;
  }
}

class SnapshotFileTest : public SnapshotTest {
 protected:
  test::TempDir tmp_{"nld-snapshot-test-"};
  const std::string dir_ = tmp_.path();
};

TEST_F(SnapshotFileTest, AtomicWriteThenRead) {
  auto img = smallImage();
  const std::string path = dir_ + "/cache.snapshot";
  writeFileAtomically(path, img);
  writeFileAtomically(path, img);  // replaces
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(size_t(st.st_size), img.size());
  EXPECT_EQ(::access((path + ".tmp." + std::to_string(::getpid())).c_str(), F_OK), -1);
  std::string why;
  bool missing = true;
  auto loaded = readSnapshotFile(path, kBoot, kBoot0 + 1000, why, missing);
  ASSERT_TRUE(loaded.has_value()) << why;
  EXPECT_FALSE(missing);
  EXPECT_EQ(loaded->entries.size(), 3u);

  EXPECT_FALSE(readSnapshotFile(dir_ + "/none", kBoot, kBoot0, why, missing).has_value());
  EXPECT_TRUE(missing);
  EXPECT_THROW(writeFileAtomically(dir_ + "/no/such/dir/cache.snapshot", img), std::runtime_error);
}

// Makes a sparse file one byte over the reader's limit (no disk used).
void makeOversizeFile(const std::string& path) {
  const net::Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  ASSERT_TRUE(fd);
  ASSERT_EQ(::ftruncate(fd.get(), off_t(kMaxSnapshotBytes) + 1), 0);
}

TEST_F(SnapshotFileTest, RefusesOversizeFileWithoutReadingIt) {
  const std::string path = dir_ + "/big.snapshot";
  makeOversizeFile(path);
  std::string why;
  bool missing = false;
  EXPECT_FALSE(readSnapshotFile(path, kBoot, kBoot0, why, missing).has_value());
  EXPECT_FALSE(missing);
  EXPECT_NE(why.find("too large"), std::string::npos) << why;
}

// The writer and the reader close their descriptor on every exit: success, each refusal and
// each error (the descriptors are net::Fd owners; before they were closed by hand per path).
TEST_F(SnapshotFileTest, EveryExitClosesTheDescriptor) {
  const auto img = smallImage();
  const std::string path = dir_ + "/cache.snapshot";
  makeOversizeFile(dir_ + "/big.snapshot");
  ASSERT_EQ(::mkdir((dir_ + "/taken").c_str(), 0700), 0);
  const size_t before = test::openFdCount();

  writeFileAtomically(path, img);
  // The rename onto a directory fails after the temporary file was written and closed.
  EXPECT_THROW(writeFileAtomically(dir_ + "/taken", img), std::runtime_error);
  {
    // A write fails while the file is open: a file size limit of 16 bytes (EFBIG; SIGXFSZ,
    // which would end the process, is ignored meanwhile).
    rlimit saved{};
    ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
    struct sigaction ignore {
    }, old{};
    ignore.sa_handler = SIG_IGN;
    ASSERT_EQ(::sigaction(SIGXFSZ, &ignore, &old), 0);
    rlimit small = saved;
    small.rlim_cur = 16;
    ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
    std::string error = "(no exception)";
    try {
      writeFileAtomically(dir_ + "/limited.snapshot", img);
    } catch (const std::runtime_error& e) {
      error = e.what();
    }
    ::setrlimit(RLIMIT_FSIZE, &saved);  // before any assertion prints
    ::sigaction(SIGXFSZ, &old, nullptr);
    EXPECT_EQ(error.rfind("write ", 0), 0u) << error;
  }
  std::string why;
  bool missing = false;
  EXPECT_TRUE(readSnapshotFile(path, kBoot, kBoot0 + 1000, why, missing).has_value()) << why;
  EXPECT_FALSE(readSnapshotFile(dir_ + "/taken", kBoot, kBoot0, why, missing).has_value());
  EXPECT_EQ(why, "not a regular file");
  EXPECT_FALSE(readSnapshotFile(dir_ + "/big.snapshot", kBoot, kBoot0, why, missing).has_value());
  EXPECT_FALSE(readSnapshotFile(dir_ + "/none", kBoot, kBoot0, why, missing).has_value());
  EXPECT_TRUE(missing);

  EXPECT_EQ(test::openFdCount(), before);
}

TEST(SnapshotSettings, FingerprintCoversEverySettingButPartitions) {
  Settings a;
  Settings b = a;
  b.partitions = 8;
  EXPECT_EQ(settingsFingerprint(a), settingsFingerprint(b));
  std::vector<Settings> variants(12, a);
  variants[0].success_capacity = 5000;
  variants[1].success_max_ttl = 30;
  variants[2].success_min_ttl = 1;
  variants[3].denial_capacity = 5000;
  variants[4].denial_max_ttl = 30;
  variants[5].denial_min_ttl = 1;
  variants[6].servfail_ttl = 0;
  variants[7].prefetch_amount = 10;
  variants[8].serve_stale_s = 0;
  variants[9].serve_stale_verify = true;
  variants[10].keepttl = true;
  variants[11].disable_denial.push_back(*dns::Name::fromString("example.org"));
  std::set<std::string> seen{settingsFingerprint(a)};
  for (const auto& v : variants) EXPECT_TRUE(seen.insert(settingsFingerprint(v)).second);
}

TEST(SnapshotClock, PairBracketsTheSteadyReading) {
  const ClockPair p = ClockPair::now();
  EXPECT_LE(p.boot_lo_ms, p.boot_hi_ms);
  EXPECT_LE(p.boot_hi_ms - p.boot_lo_ms, 1000);
  EXPECT_NE(readBootId(), BootId{});  // Linux always has one
}

}  // namespace
}  // namespace nld::cache::testing
