// Micro-benchmarks of the response cache: hit (with and without EDNS), miss, insert, eviction
// with hot entries, insert while entries expire.
// Run: build-*/bench/cache/cache_bench
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "cache/cache.h"
#include "cache/snapshot.h"
#include "dns/key_hash.h"

namespace nld::cache {
namespace {

const Clock::time_point kT0 = Clock::time_point{} + std::chrono::hours(1000);

struct Packet {
  std::vector<uint8_t> bytes;
};

dns::Name nameOf(const std::string& s) { return dns::Name::fromString(s).value(); }

void put16(std::vector<uint8_t>& v, uint16_t x) {
  v.push_back(static_cast<uint8_t>(x >> 8));
  v.push_back(static_cast<uint8_t>(x));
}

// A typical answer: 2 A records (uncompressed owners), no OPT.
std::vector<uint8_t> response(const std::string& qname) {
  dns::Name n = nameOf(qname);
  std::vector<uint8_t> v;
  put16(v, 1);
  put16(v, dns::flag::QR | dns::flag::RD | dns::flag::RA);
  put16(v, 1);
  put16(v, 2);
  put16(v, 0);
  put16(v, 0);
  v.insert(v.end(), n.data.begin(), n.data.begin() + n.len);
  put16(v, dns::type::A);
  put16(v, dns::cls::IN);
  for (uint8_t i = 1; i <= 2; ++i) {
    v.insert(v.end(), n.data.begin(), n.data.begin() + n.len);
    put16(v, dns::type::A);
    put16(v, dns::cls::IN);
    put16(v, 0);
    put16(v, 300);
    put16(v, 4);
    v.insert(v.end(), {192, 0, 2, i});
  }
  return v;
}

struct Query {
  std::vector<uint8_t> bytes;
  dns::Query q;
};

Query query(const std::string& qname, bool edns) {
  Query out;
  out.bytes.resize(512);
  size_t len = dns::buildQuery(0x1234, nameOf(qname), dns::type::A, dns::cls::IN, dns::flag::RD,
                               edns, 1232, false, dns::MutableBytes(out.bytes));
  out.bytes.resize(len);
  if (dns::parseQuery(dns::ByteView(out.bytes), out.q) != dns::QueryStatus::kOk) {
    throw std::runtime_error("bench: query did not parse");
  }
  return out;
}

std::string host(size_t i) { return "host-" + std::to_string(i) + ".default.svc.cluster.local"; }

void fill(Cache& c, size_t n) {
  dns::Response r;
  for (size_t i = 0; i < n; ++i) {
    Query q = query(host(i), false);
    std::vector<uint8_t> pkt = response(host(i));
    if (dns::parseResponse(dns::ByteView(pkt), r) != dns::Error::kNone) {
      throw std::runtime_error("bench: response did not parse");
    }
    c.insert(q.q, dns::keyHash(q.q), dns::ByteView(pkt), r, kT0);
  }
}

void hitBench(benchmark::State& state, bool edns) {
  Cache c(Settings{});
  fill(c, 5000);
  std::vector<Query> qs;
  for (size_t i = 0; i < 64; ++i) qs.push_back(query(host(i * 61 % 5000), edns));
  std::vector<uint8_t> out(dns::kMaxMessageSize);
  size_t i = 0;
  for (auto _ : state) {
    const Query& q = qs[i++ & 63];
    LookupResult r = c.lookup(dns::ByteView(q.bytes), q.q, dns::keyHash(q.q),
                              kT0 + std::chrono::seconds(10), 1232, dns::MutableBytes(out));
    if (r.kind != Kind::kHit) state.SkipWithError("expected a hit");
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_LookupHit(benchmark::State& state) { hitBench(state, false); }
void BM_LookupHitEdns(benchmark::State& state) { hitBench(state, true); }

void BM_LookupMiss(benchmark::State& state) {
  Cache c(Settings{});
  fill(c, 5000);
  std::vector<Query> qs;
  for (size_t i = 0; i < 64; ++i) qs.push_back(query("absent-" + host(i), false));
  std::vector<uint8_t> out(dns::kMaxMessageSize);
  size_t i = 0;
  for (auto _ : state) {
    const Query& q = qs[i++ & 63];
    LookupResult r =
        c.lookup(dns::ByteView(q.bytes), q.q, dns::keyHash(q.q), kT0, 1232, dns::MutableBytes(out));
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}

// Inserts into a full cache (every insert replaces or evicts), cycling over 20000 names.
void BM_Insert(benchmark::State& state) {
  Cache c(Settings{});
  constexpr size_t kNames = 20000;
  std::vector<Query> qs;
  std::vector<std::vector<uint8_t>> pkts;
  std::vector<dns::Response> rs(kNames);
  for (size_t i = 0; i < kNames; ++i) {
    qs.push_back(query(host(i), false));
    pkts.push_back(response(host(i)));
    if (dns::parseResponse(dns::ByteView(pkts.back()), rs[i]) != dns::Error::kNone) {
      throw std::runtime_error("bench: response did not parse");
    }
  }
  size_t i = 0;
  for (auto _ : state) {
    size_t k = i++ % kNames;
    uint32_t d = c.insert(qs[k].q, dns::keyHash(qs[k].q), dns::ByteView(pkts[k]), rs[k], kT0);
    benchmark::DoNotOptimize(d);
  }
  state.SetItemsProcessed(state.iterations());
}

// Eviction under a realistic mix (issue 6): every insert is a name not cached any more (50000
// names cycled through a 9984-entry store), and each is followed by a hit on one of 1000 hot
// names, so about a tenth of the store is always referenced and the CLOCK hand has to pass them.
void BM_InsertEvictWithHotHits(benchmark::State& state) {
  Cache c(Settings{});
  constexpr size_t kCold = 50000;
  constexpr size_t kHot = 1000;
  std::vector<Query> qs;
  std::vector<std::vector<uint8_t>> pkts;
  std::vector<dns::Response> rs(kCold);
  for (size_t i = 0; i < kCold; ++i) {
    qs.push_back(query(host(i), false));
    pkts.push_back(response(host(i)));
    if (dns::parseResponse(dns::ByteView(pkts.back()), rs[i]) != dns::Error::kNone) {
      throw std::runtime_error("bench: response did not parse");
    }
  }
  std::vector<Query> hot;
  dns::Response hr;
  for (size_t i = 0; i < kHot; ++i) {
    const std::string name = "hot-" + host(i);
    hot.push_back(query(name, false));
    std::vector<uint8_t> pkt = response(name);
    if (dns::parseResponse(dns::ByteView(pkt), hr) != dns::Error::kNone) {
      throw std::runtime_error("bench: response did not parse");
    }
    c.insert(hot.back().q, dns::keyHash(hot.back().q), dns::ByteView(pkt), hr, kT0);
  }
  std::vector<uint8_t> out(dns::kMaxMessageSize);
  size_t i = 0;
  for (auto _ : state) {
    const size_t k = i++;
    const Query& cold = qs[k % kCold];
    uint32_t d =
        c.insert(cold.q, dns::keyHash(cold.q), dns::ByteView(pkts[k % kCold]), rs[k % kCold], kT0);
    const Query& h = hot[k % kHot];
    LookupResult r =
        c.lookup(dns::ByteView(h.bytes), h.q, dns::keyHash(h.q), kT0, 1232, dns::MutableBytes(out));
    if (d == 0 || r.kind != Kind::kHit) state.SkipWithError("hot name evicted or insert refused");
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}

// Inserts while entries keep expiring (duration 5 s, 1 ms between inserts): dead entries are
// purged instead of live ones being evicted.
void BM_InsertExpiring(benchmark::State& state) {
  Settings s;
  s.success_max_ttl = 5;
  Cache c(s);
  constexpr size_t kNames = 50000;
  std::vector<Query> qs;
  std::vector<std::vector<uint8_t>> pkts;
  std::vector<dns::Response> rs(kNames);
  for (size_t i = 0; i < kNames; ++i) {
    qs.push_back(query(host(i), false));
    pkts.push_back(response(host(i)));
    if (dns::parseResponse(dns::ByteView(pkts.back()), rs[i]) != dns::Error::kNone) {
      throw std::runtime_error("bench: response did not parse");
    }
  }
  size_t i = 0;
  for (auto _ : state) {
    const size_t k = i++;
    const auto now = kT0 + std::chrono::milliseconds(k);
    const Query& q = qs[k % kNames];
    uint32_t d =
        c.insert(q.q, dns::keyHash(q.q), dns::ByteView(pkts[k % kNames]), rs[k % kNames], now);
    benchmark::DoNotOptimize(d);
  }
  state.counters["evictions"] = static_cast<double>(c.stats().evictions_success.load());
  state.SetItemsProcessed(state.iterations());
}

// Cache snapshots (issue 10 "warm cache") of 100k entries: export in the workers' slices of
// 1024 entries + encode + atomic write with fsync (Server::writeSnapshot's work), and read +
// validate + import into a fresh cache (Server::loadSnapshot's). Counters: file bytes, entries,
// and the longest single export slice (what a worker pauses for between rounds).
constexpr size_t kSnapshotEntries = 100000;

Settings bigSettings() {
  Settings s;
  s.success_capacity = 2 * kSnapshotEntries;
  return s;
}

std::string snapshotPath() {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/nld-bench-cache.snapshot";
}

void BM_SnapshotWrite100k(benchmark::State& state) {
  Cache c(bigSettings());
  fill(c, kSnapshotEntries);
  const std::string path = snapshotPath();
  double bytes = 0, entries = 0, max_slice_us = 0, slice_us = 0, slices = 0;
  for (auto _ : state) {
    SnapshotBuffer buf;
    Cache::ExportCursor cur;
    ClockPair now = ClockPair::now();
    now.steady = kT0 + std::chrono::seconds(1);
    while (!cur.done()) {
      const auto t = std::chrono::steady_clock::now();
      cur = c.exportSome(cur, 1024, now, 0, buf);
      const double us =
          std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t).count();
      max_slice_us = std::max(max_slice_us, us);
      slice_us += us;
      ++slices;
    }
    auto img = encodeSnapshot({"bench"}, {&buf}, readBootId(), now.boot_hi_ms);
    writeFileAtomically(path, img);
    bytes = double(img.size());
    entries = double(buf.entries());
  }
  state.counters["file_bytes"] = bytes;
  state.counters["entries"] = entries;
  state.counters["max_slice_us"] = max_slice_us;
  state.counters["avg_slice_us"] = slices > 0 ? slice_us / slices : 0;
}

void BM_SnapshotLoad100k(benchmark::State& state) {
  const std::string path = snapshotPath();
  double loaded = 0;
  for (auto _ : state) {
    std::string why;
    bool missing = false;
    const ClockPair now = ClockPair::now();
    auto snap = readSnapshotFile(path, readBootId(), now.boot_hi_ms, why, missing);
    if (!snap) {
      state.SkipWithError(("snapshot refused: " + why).c_str());
      break;
    }
    Cache c(bigSettings());
    size_t n = 0;
    for (const auto& e : snap->entries) n += c.importEntry(e, now) ? 1 : 0;
    loaded = double(n);
  }
  state.counters["entries"] = loaded;
}

BENCHMARK(BM_SnapshotWrite100k)->Unit(benchmark::kMillisecond)->Iterations(5);
BENCHMARK(BM_SnapshotLoad100k)->Unit(benchmark::kMillisecond)->Iterations(5);
BENCHMARK(BM_LookupHit);
BENCHMARK(BM_LookupHitEdns);
BENCHMARK(BM_LookupMiss);
BENCHMARK(BM_Insert);
BENCHMARK(BM_InsertEvictWithHotHits);
BENCHMARK(BM_InsertExpiring);

}  // namespace
}  // namespace nld::cache

BENCHMARK_MAIN();
