#pragma once
// Corefile parsing: turns CoreDNS/caddyfile text into a validated, typed, immutable configuration.
//
// Only the subset of CoreDNS that node-cache needs is accepted: the server-block grammar (keys,
// braces, comments, quotes, {$ENV}, import, snippets, CIDR keys) and the directives errors, log,
// cache, forward, bind, reload, loop, health, prometheus, bufsize, loadbalance, hosts and template.
// Everything else is refused with a `file:line: message` ConfigError, never silently ignored.
//
// The grammar is hand-written because there is no C++ caddyfile library; CoreDNS's own parser is
// the reference (coredns/caddy lexer.go, parse.go; plugin setup.go files).
//
// Thread affinity: every function here is pure (apart from reading files, the environment and
// the interface list through ParseOptions) and may be called from any thread; the returned
// Corefile is an immutable value that may be shared read-only between threads.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cache/settings.h"  // the plugins' defaults (cache::defaults, upstream::defaults)
#include "upstream/settings.h"

namespace nld::config {

/// A configuration error. what() is "file:line: message" (or "file: message" without a line).
struct ConfigError : std::runtime_error {
  using runtime_error::runtime_error;
};

/// Knobs and injectable system access for the parser.
struct ParseOptions {
  /// Port for keys without one (node-cache/CoreDNS `-dns.port`).
  uint16_t default_port = 53;
  /// Environment lookup for {$NAME} / {%NAME%}; unset → empty string. Default: ::getenv.
  std::function<std::optional<std::string>(const std::string&)> getenv;
  /// Addresses of a network interface for `bind IFACE` (IPv6 link-local ones carry "%iface").
  /// std::nullopt means "no such interface" (then the argument must be an IP literal).
  /// Default: getifaddrs(3).
  std::function<std::optional<std::vector<std::string>>(const std::string& iface)>
      interface_addresses;
  /// Whether `import FILE|GLOB` may read files (snippet imports always work). The fuzz target
  /// turns this off so arbitrary input cannot make it read the host's files.
  bool allow_file_imports = true;
};

/// One server-block key: a zone and the port it is served on.
struct ZoneKey {
  std::string zone;  ///< fully qualified, lower-case; "." is the root
  uint16_t port = 53;
};

/// `errors { consolidate DURATION REGEXP [LEVEL] }` entry. The REGEXP is Go RE2 syntax, kept
/// verbatim (validated with RE2 at parse time).
struct ErrorsConsolidate {
  std::chrono::milliseconds period{0};
  std::string
      period_text;  ///< Go's Duration.String() of period ("30s", "5m0s"), as CoreDNS prints it
  std::string pattern;
  std::string level = "error";  ///< warning | error | info | debug
};

struct ErrorsConfig {
  bool stacktrace = false;
  std::vector<ErrorsConsolidate> consolidate;
};

/// One `log` stanza.
struct LogConfig {
  std::vector<std::string> names{"."};      ///< zones whose queries are logged (fqdn, lower-case)
  std::string format;                       ///< resolved format ({common}/{combined} expanded)
  std::vector<std::string> classes{"all"};  ///< success | denial | error | all
};

/// The CoreDNS common log format (plugin/log).
inline constexpr std::string_view kCommonLogFormat =
    "{remote}:{port} - {>id} \"{type} {class} {name} {proto} {size} {>do} {>bufsize}\" {rcode} "
    "{>rflags} {rsize} {duration}";
inline constexpr std::string_view kCombinedLogFormat =
    "{remote}:{port} - {>id} \"{type} {class} {name} {proto} {size} {>do} {>bufsize}\" {rcode} "
    "{>rflags} {rsize} {duration} \"{>opcode}\"";

/// `cache` (CoreDNS cache plugin). Capacities are kept as written; the cache rounds them.
struct CacheConfig {
  std::vector<std::string> zones;  ///< the block's zones when none were given
  size_t success_capacity = cache::defaults::kCapacity;
  uint32_t success_max_ttl = cache::defaults::kSuccessMaxTtl;
  uint32_t success_min_ttl = cache::defaults::kMinTtl;
  size_t denial_capacity = cache::defaults::kCapacity;
  uint32_t denial_max_ttl = cache::defaults::kDenialMaxTtl;
  uint32_t denial_min_ttl = cache::defaults::kMinTtl;
  uint32_t prefetch_amount = 0;
  std::chrono::seconds prefetch_duration{cache::defaults::kPrefetchWindowS};
  uint32_t prefetch_percentage = cache::defaults::kPrefetchPercentage;
  std::optional<std::chrono::seconds> serve_stale;
  bool serve_stale_verify = false;
  std::chrono::seconds servfail_ttl{cache::defaults::kServfailTtl};
  std::vector<std::string> disable_success, disable_denial;
  bool keepttl = false;
};

enum class Policy { kRandom, kRoundRobin, kSequential };

/// An upstream nameserver. `ip` is canonical text; a link-local IPv6 may carry "%zone".
struct UpstreamAddress {
  std::string ip;
  uint16_t port = 53;
  /// "ip:port" or "[v6]:port" (the `to` label of the proxy metrics).
  std::string label() const;
};

/// One `forward` stanza (CoreDNS forward plugin).
struct ForwardConfig {
  std::string from;                 ///< zone, fqdn lower-case
  std::vector<std::string> except;  ///< fqdn lower-case
  std::vector<UpstreamAddress> to;
  bool force_tcp = false, prefer_udp = false;
  std::chrono::seconds expire = upstream::defaults::kExpire;
  uint32_t max_fails = upstream::defaults::kMaxFails;
  uint32_t max_connect_attempts = 0;  ///< 0 = not configured (the forwarder picks its cap)
  Policy policy = Policy::kRandom;
  std::chrono::milliseconds health_check = upstream::defaults::kHealthCheck;
  bool health_check_recursion_desired = true;
  std::string health_check_domain = ".";
  uint32_t max_concurrent = 0;  ///< 0 = unlimited
  bool failfast_all_unhealthy = false;
  std::vector<uint8_t> next_rcodes, failover_rcodes;
};

struct HealthConfig {
  std::string address = ":8080";
  std::chrono::milliseconds lameduck{0};
};

/// `hosts [FILE [ZONES...]] { INLINE; ttl; no_reverse; reload; fallthrough }` (CoreDNS
/// plugin/hosts). Only the syntax is checked here; the file is read by the plugin (plugin/hosts.h).
struct HostsConfig {
  std::string file = "/etc/hosts";  ///< as written (relative: to the working directory, as CoreDNS)
  std::vector<std::string> zones;   ///< the block's zones when none were given
  std::vector<std::string> inline_lines;  ///< hosts-file lines from the block, tokens joined by ' '
  uint32_t ttl = 3600;
  bool reverse = true;  ///< synthesise PTR answers (off with `no_reverse`)
  std::chrono::nanoseconds reload{std::chrono::seconds(5)};  ///< 0 = never re-read the file
  bool fallthrough = false;
  std::vector<std::string> fallthrough_zones;  ///< empty with fallthrough = every name
  int line = 0;  ///< where the directive is (for errors reading the file)
};

/// `template CLASS TYPE [ZONES...] { match REGEX...; answer|additional|authority RR; rcode CODE;
/// fallthrough [ZONES...] }` (CoreDNS plugin/template). The RR texts are Go templates of the
/// subset nld::GoTemplate implements (checked here; other actions are refused).
struct TemplateConfig {
  uint16_t qclass = 255, qtype = 255;  ///< 255 = ANY
  std::vector<std::string> zones;      ///< the block's zones when none were given
  std::vector<std::string> match;      ///< Go RE2 regexes over the lower-case name; none = ".*"
  std::vector<std::string> answer, additional, authority;  ///< RR templates, in file order
  uint8_t rcode = 0;
  bool fallthrough = false;
  std::vector<std::string> fallthrough_zones;  ///< empty with fallthrough = every name
};

/// `timeouts { read D; write D; idle D }` (CoreDNS plugin/timeouts): each 1 s .. 24 h.
struct TimeoutsConfig {
  std::optional<std::chrono::milliseconds> read, write, idle;
};

struct ReloadConfig {
  std::chrono::seconds interval{30}, jitter{15};
};

/// One server block with all its directives parsed and validated.
struct ServerBlock {
  std::string file;  ///< where the block's first key is
  int line = 0;
  std::vector<ZoneKey> keys;
  std::vector<std::string> bind;  ///< resolved, canonical IP literals; empty = wildcard
  bool errors = false;
  ErrorsConfig errors_config;
  bool log = false;
  std::vector<LogConfig> logs;
  std::optional<CacheConfig> cache;
  std::vector<ForwardConfig> forwards;  ///< in file order
  std::optional<ReloadConfig> reload;
  bool loop = false;
  std::optional<HealthConfig> health;
  std::optional<std::string> prometheus;  ///< listen address, e.g. ":9253"
  /// `bufsize`: a client's EDNS UDP size above this is lowered to it (CoreDNS 1.10 semantics).
  std::optional<uint16_t> bufsize;
  bool loadbalance = false;  ///< `loadbalance [round_robin]`: address records shuffled
  std::optional<HostsConfig> hosts;
  std::vector<TemplateConfig> templates;  ///< in file order (CoreDNS tries them in order)
  /// `rewrite` rules in file order, each its arguments (a block's tokens flattened in, as
  /// CoreDNS reads them); validated here, compiled by the server (dns::rewrite::Rewriter).
  std::vector<std::vector<std::string>> rewrites;
  std::optional<TimeoutsConfig> timeouts;  ///< `timeouts`: the TCP deadlines of its listeners
};

/// One listening endpoint (address, port) and the zones it serves → block index.
struct Listener {
  std::string address;  ///< "" = wildcard
  uint16_t port = 53;
  std::vector<std::pair<std::string, size_t>> zones;
};

struct Corefile {
  std::vector<ServerBlock> blocks;
  std::vector<Listener> listeners;  ///< in order of first appearance
  /// Hex hash of the parsed structure (not of whitespace or comments): reload compares it.
  std::string fingerprint;
};

/// Parses Corefile text. `filename` is used in error messages and as the base directory of
/// relative imports. Throws ConfigError on any problem.
Corefile parseCorefile(std::string_view text, const std::string& filename,
                       const ParseOptions& options = {});

/// Reads `path` and parses it (imports relative to its directory). Throws ConfigError.
Corefile loadCorefile(const std::string& path, const ParseOptions& options = {});

/// Human-readable, deterministic rendering (for logs, tests and the fingerprint).
std::string dump(const Corefile& corefile);

}  // namespace nld::config
