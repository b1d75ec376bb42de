#pragma once
// A Plan is one loaded Corefile turned into what the data path needs: for every listener the
// zone table that picks a server block (longest suffix), and for every block its cache settings
// and forwarders' shared state. Plans are immutable once built and shared by all workers; a
// reload builds a new Plan off the hot path and hands it to the workers (RCU-style), while
// queries in flight keep the Plan they started with alive.
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cache/cache.h"
#include "config/corefile.h"
#include "dns/name.h"
#include "dns/rewrite.h"
#include "plugin/errors.h"
#include "plugin/hosts.h"
#include "plugin/template.h"
#include "upstream/forwarder.h"

namespace nld::plan {

/// Longest-suffix zone lookup for one listener (as CoreDNS core/dnsserver/server.go).
class ZoneTable {
 public:
  struct Entry {
    dns::Name zone;    // lower-cased
    std::string text;  // "cluster.local."
    size_t block = 0;  // index into Plan::blocks
    size_t labels = 0;
  };
  void add(const dns::Name& zone, std::string text, size_t block);
  /// The entry whose zone is the longest suffix of qname, or nullptr (→ REFUSED). For DS
  /// queries the shortest non-root match is used instead (the parent side answers DS).
  const Entry* match(const dns::Name& qname, uint16_t qtype) const;
  const std::vector<Entry>& entries() const { return entries_; }

 private:
  std::vector<Entry> entries_;  // sorted by label count, longest first
};

/// `loop` plugin state of one block (CoreDNS plugin/loop), shared by the workers.
struct LoopDetector {
  dns::Name probe;  // HINFO <rand>.<rand>.<zone>
  std::string probe_text;
  std::string target_ip;  // where the probe is sent: the block's first listen address
  uint16_t target_port = 0;
  std::atomic<int> seen{0};
  std::atomic<bool> active{true};
};

struct ForwardPlan {
  dns::Name from;
  std::vector<dns::Name> except;
  upstream::Settings settings;
  std::vector<std::string> labels;                      // "ip:port" per upstream, for metrics
  std::unique_ptr<upstream::ForwardObserver> observer;  // metrics hooks (outlives `shared`)
  std::shared_ptr<upstream::SharedForwardState> shared;
};

struct BlockPlan {
  const config::ServerBlock* cfg = nullptr;
  std::vector<dns::Name> zones;
  std::string zones_label;   // comma-joined zones, as CoreDNS's cache `zones` label
  std::string server_label;  // the first listener serving the block (cache entries gauge)
  std::optional<cache::Settings> cache;
  std::vector<dns::Name> cache_zones;  // `cache TTL ZONES...`; empty = the block's zones
  /// Which cache this block's entries belong to, for carrying a cache across a reload and for
  /// snapshots: its zones with ports, bind addresses, cache zones and cache settings
  /// (cache::settingsFingerprint) as canonical text. Empty without `cache`. Two blocks with
  /// equal identities cache the same answers the same way.
  std::string cache_identity;
  std::vector<ForwardPlan> forwards;
  bool errors = false;
  /// its consolidate patterns (set when `errors`)
  std::shared_ptr<plugin::ErrorsPlugin> errors_plugin;
  bool log = false;
  bool metrics = false;      // block has `prometheus`
  uint16_t bufsize = 0;      // `bufsize`: cap on a client's EDNS UDP size (0: none)
  bool loadbalance = false;  // `loadbalance`: shuffle address records in every answer
  /// `rewrite` rules (null: none). The cache keeps upstream answers to rewritten questions, so
  /// a change of rules does not invalidate it (not part of cache_identity).
  std::shared_ptr<const dns::rewrite::Rewriter> rewrite;
  std::shared_ptr<LoopDetector> loop;
  std::shared_ptr<plugin::HostsPlugin> hosts;  // `hosts`: shared by the workers (plugin/hosts.h)
  std::shared_ptr<const plugin::TemplatePlugin> templates;  // every `template` line of the block
};

struct ListenerPlan {
  std::string address;  // "" = wildcard
  uint16_t port = 0;
  std::string server_label;  // "dns://169.254.20.10:53", "dns://:53"
  ZoneTable zones;
  /// `timeouts` of the blocks served here (the last block that sets one wins, as CoreDNS's
  /// server takes them): `read` → the TCP first-read and frame deadlines, `idle` → the idle one.
  std::optional<std::chrono::milliseconds> tcp_read, tcp_idle;
};

struct Plan {
  config::Corefile corefile;
  std::vector<BlockPlan> blocks;
  std::vector<ListenerPlan> listeners;
  size_t workers = 1;
};

/// The `max_concurrent` of a `forward` stanza that sets none (CoreDNS: unbounded): client
/// queries waiting on the stanza's upstreams, over all workers. Over it a query is answered
/// REFUSED at once and counted in coredns_forward_max_concurrent_rejects_total, as with
/// `max_concurrent`. Per stanza, not process-wide, so that a flood towards one upstream cannot
/// starve the others (the cluster zone keeps being resolved while `.` is flooded). An in-flight
/// query costs about 2 KiB (docs/operator-guide.md, "Memory bound"): 4 MiB per stanza at most;
/// at a 2 s upstream latency still 1,000 misses a second per stanza, at 10 ms 200,000.
inline constexpr uint32_t kDefaultMaxConcurrent = 2048;

/// Where buildPlan gets the metric hooks of each forward stanza: server::ServerMetrics in the
/// daemon. An interface so that the plan does not depend on the server that runs it.
class ForwardObservers {
 public:
  virtual ~ForwardObservers() = default;
  /// The observer of one stanza whose upstreams are labelled `to_labels` ("ip:port").
  virtual std::unique_ptr<upstream::ForwardObserver> forwardObserver(
      std::vector<std::string> to_labels) = 0;
};

/// Builds a plan from a parsed Corefile. Starts the forwarders' health checking. `observers`
/// may be null (no forward metrics). Throws std::runtime_error "file:line: message" for what
/// only the plan can refuse (a directive combination node-cache does not implement, a
/// `forward` option it does not support, a plugin whose arguments do not compile).
std::shared_ptr<const Plan> buildPlan(config::Corefile corefile, size_t workers,
                                      ForwardObservers* observers);

/// Converts a parsed `forward` stanza to the forwarder's settings.
upstream::Settings toUpstreamSettings(const config::ForwardConfig& f);
/// Converts a parsed `cache` directive to the cache's settings for one worker partition.
cache::Settings toCacheSettings(const config::CacheConfig& c, size_t partitions);

}  // namespace nld::plan
