#pragma once
// The `hosts` plugin (CoreDNS 1.10 plugin/hosts): answers A, AAAA and PTR from a hosts file and
// from inline entries of the Corefile.
//
// Semantics, as the upstream image's CoreDNS (checked against it by
// tests/integration/test_hosts.py):
// - Names outside the plugin's zones go to the next plugin (PTR queries are not zone-checked).
// - A/AAAA of a known name: NOERROR, AA, the addresses (file entries first, then inline ones)
//   with the configured TTL. Another type of a known name: NOERROR/NODATA, AA, no SOA.
// - An unknown name: the next plugin with `fallthrough` (covering the name), else SERVFAIL
//   (CoreDNS has no SOA to build an NXDOMAIN from, so it answers SERVFAIL, not cached).
// - PTR: from the reverse map (unless no_reverse); an unknown address always goes to the next
//   plugin, whatever `fallthrough` says.
// - The file is re-read when its mtime or size changed, checked every `reload` (0: never). A
//   file that cannot be opened keeps the entries last read.
//
// The answers run through the cache like upstream answers (CoreDNS orders cache before hosts).
//
// Threading: one HostsPlugin per block, shared by all workers. lookup() may be called from any
// thread; the file's entries are an immutable HostsMap swapped atomically on reload. The reload
// check runs on the query path of whichever worker first sees the period elapsed (one stat(2)
// per period; a re-read only when the file changed: hosts files are small), so no extra thread.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/corefile.h"
#include "dns/message.h"
#include "dns/name.h"
#include "net/event_loop.h"

namespace nld::plugin {

/// One parsed hosts file (or the inline entries). Names are lower-case, fully qualified text
/// (dns::Name::toString of the lower-cased name); addresses are 4 or 16 raw bytes (IPv4-mapped
/// IPv6 addresses count as IPv4, as Go's net.IP.To4).
struct HostsMap {
  std::unordered_map<std::string, std::vector<std::string>> name4, name6;
  std::unordered_map<std::string, std::vector<std::string>> addr;  // raw address → names
  size_t size() const { return name4.size() + name6.size(); }
};

/// Parses hosts-file text like CoreDNS's Hostsfile.parse: one entry per line, `#` starts a
/// comment, fields split on whitespace, lines with fewer than two fields or a first field that
/// is not an IP address (a `%zone` suffix is ignored) are skipped, names outside `origins` are
/// skipped. `reverse` fills the address → names map. Scanning stops at a line of 64 KiB or
/// more (Go's bufio.Scanner limit). Never throws on any input.
HostsMap parseHostsText(std::string_view text, const std::vector<dns::Name>& origins, bool reverse);

/// The address a reverse name (x.x.x.x.in-addr.arpa., 32 nibbles .ip6.arpa.) stands for, as
/// 4 or 16 raw bytes (IPv4-mapped IPv6 → 4 bytes), or empty if it is not one.
std::string addressFromReverse(const dns::Name& qname);

/// Header (QR, AA, the query's opcode, `rcode`) and the question as the client sent it: the
/// start of the answers the local plugins (hosts, template) write. Returns the length, 0 if
/// `out` is too small.
size_t writeAuthoritativeHead(dns::ByteView pkt, const dns::Query& q, uint8_t rcode,
                              dns::MutableBytes out);

class HostsPlugin {
 public:
  /// Reads the file once (a missing file is logged as a warning, as CoreDNS). Throws
  /// std::runtime_error if the file exists but cannot be accessed. `where` = "file:line".
  HostsPlugin(const config::HostsConfig& cfg, std::string where);

  enum class Verdict : uint8_t { kNext, kServFail, kAnswer };
  /// Decides about query `q` (packet `pkt`). For Answer, writes a complete response (question
  /// copied from `pkt`, no OPT) to `out` and sets `len`. `out` must hold 65535 bytes. `now` is
  /// the calling worker loop's time (net::EventLoop::now()): the reload period runs on it.
  Verdict lookup(dns::ByteView pkt, const dns::Query& q, dns::MutableBytes out, size_t& len,
                 net::Clock::time_point now);

  /// Re-reads the file now if its mtime or size changed (the periodic check calls this).
  void reloadIfChanged();
  size_t entries() const;

 private:
  void maybeReload(net::Clock::time_point now);

  config::HostsConfig cfg_;
  std::string where_;
  std::vector<dns::Name> origins_, fallthrough_;
  HostsMap inline_;
  std::atomic<std::shared_ptr<const HostsMap>> file_;
  std::mutex reload_mu_;  // one reader of the file at a time; guards mtime_/size_
  int64_t mtime_ns_ = 0;
  int64_t size_ = 0;
  // Next file check, in the workers' loop time (ns); 0 = check disabled; kArmOnFirstQuery: the
  // first query starts the first period (the plan is built off the loops, on no loop's clock).
  static constexpr int64_t kArmOnFirstQuery = -1;
  std::atomic<int64_t> next_check_ns_{0};
};

}  // namespace nld::plugin
