#pragma once
// Corefile templating of node-cache (kubernetes/dns:cmd/node-cache/app/configmap.go
// updateCorefile) and the kube-dns ConfigMap directory loader (pkg/dns/config), minus the
// upstream bugs: a missing upstream-service env var is a clear error (never `<nil>`), and
// stub-domain blocks come out in sorted order (deterministic output).
//
// Thread affinity: free functions, no shared state; safe from any thread.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace nld::node {

// Template and ConfigMap errors are nld::Result errors (startup/config path only, never the
// packet path): the caller (ConfigSync) logs them and keeps the last good config.

/// The kube-dns ConfigMap keys node-cache uses.
struct KubeDnsConfig {
  std::map<std::string, std::vector<std::string>> stub_domains;  ///< domain → servers
  std::vector<std::string> upstream_nameservers;                 ///< ≤ 3, IP or IP:port
  std::string version;  ///< SHA-256 over (name NUL content NUL) of the directory's files; "" = none
  bool operator==(const KubeDnsConfig& o) const {
    return stub_domains == o.stub_domains && upstream_nameservers == o.upstream_nameservers;
  }
};

/// "kube-dns-upstream" → "KUBE_DNS_UPSTREAM_SERVICE_HOST".
std::string upstreamServiceEnvName(std::string_view service);

/// Reads the env var of upstreamServiceEnvName(service) through `getenv` (default ::getenv) and
/// returns the IP in canonical text form (Go's net.IP.String()); nullopt if unset or not an IP.
std::optional<std::string> upstreamServiceIp(
    std::string_view service, const std::function<const char*(const char*)>& getenv_fn = nullptr);

/// Loads a kube-dns ConfigMap mounted as a directory (non-recursive, dotfiles skipped, UTF-8
/// required; keys `stubDomains`, `upstreamNameservers`, `federations` (validated as JSON object
/// only)). A missing or empty directory yields an empty config with version "". The error names
/// the file/key on unreadable files, bad JSON or failed validation.
Result<KubeDnsConfig> loadKubeDnsConfigDir(const std::string& dir);

/// Parses/validates the two keys from their JSON texts (exposed for tests). Empty text = absent.
Result<KubeDnsConfig> parseKubeDnsConfig(std::string_view stub_domains_json,
                                         std::string_view upstream_nameservers_json);

/// True for IP, IPv4:port, [IPv6]:port with port 1-65535 (what node-cache's forward accepts).
bool isValidNameserver(std::string_view server);
/// True for a DNS-1123 subdomain (lower-case alnum and '-', dot-separated, ≤ 253 chars).
bool isDns1123Subdomain(std::string_view name);

/// Inputs of one render.
struct RenderInput {
  std::string base;                        ///< the -basecorefile text
  std::string local_ips;                   ///< -localip with commas → spaces
  std::optional<std::string> upstream_ip;  ///< IP for __PILLAR__CLUSTER__DNS__
  std::string upstream_env_name;           ///< for the error message when upstream_ip is missing
  KubeDnsConfig kube_dns;
  uint16_t local_port = 53;  ///< -dns.port, used in stub-domain block keys
};

struct RenderOutput {
  std::string text;
  std::vector<std::string> warnings;  ///< e.g. "Did not find TCP upstream block to replace, ..."
};

/// Renders the Corefile: placeholders, then stub-domain blocks. Byte-exact replace-all; the
/// force_tcp upstream block is replaced as one unit when custom upstreams are configured.
/// __PILLAR__LOCAL__DNS__ is every local IP, except in host:port position
/// (`__PILLAR__LOCAL__DNS__:` or `[__PILLAR__LOCAL__DNS__]:`, e.g. the `health` address) where it
/// is the first local IP, bracketed if IPv6 (upstream pastes the whole list there; see
/// docs/operator-guide.md). An error if the base uses __PILLAR__CLUSTER__DNS__ and upstream_ip is
/// missing
/// ("... environment variable KUBE_DNS_UPSTREAM_SERVICE_HOST is not set ...").
Result<RenderOutput> renderCorefile(const RenderInput& in);

/// Replaces every occurrence of `from` in `text` with `to` (Go strings.ReplaceAll).
std::string replaceAll(std::string text, std::string_view from, std::string_view to);

}  // namespace nld::node
