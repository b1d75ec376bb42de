#pragma once
// node-cache's iptables rules (kubernetes/dns cache_app.go initIptables): 12 rules per local IP, as
// data, and their maintenance through the iptables binaries (iptables/ip6tables by family), so the
// backend (nft or legacy) is whatever the image's iptables wrapper picks, as for kube-proxy.
//
// ensure(): lists each table once (`iptables -w 5 -t <table> -S`) and inserts every missing rule
// with ONE `iptables-restore -w 5 --noflush` batch of `-I <chain> 1 ...` lines in list order, so
// the final in-chain order is the one the upstream's one-at-a-time inserts produce. teardown():
// deletes every copy of every rule (batch delete, re-list, repeat while any remain; bounded).
//
// Thread affinity: not thread-safe; one thread at a time (HostSetup serialises its calls). Every
// command runs without a shell and with a timeout.
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "node/backends.h"
#include "node/local_ip.h"
#include "node/process.h"

namespace nld::node {

inline constexpr std::string_view kCommentSkipConntrack = "NodeLocal DNS Cache: skip conntrack";
inline constexpr std::string_view kCommentAllowTraffic = "NodeLocal DNS Cache: allow DNS traffic";

/// One rule, structurally (so rules read back from `-S` can be compared after canonicalisation).
struct IptablesRule {
  std::string table;              ///< "raw" or "filter"
  std::string chain;              ///< "PREROUTING", "INPUT", "OUTPUT"
  std::string protocol;           ///< "tcp" or "udp"
  std::string source;             ///< IP as given, or ""
  std::string destination;        ///< IP as given, or ""
  uint16_t source_port = 0;       ///< 0 = no --sport
  uint16_t destination_port = 0;  ///< 0 = no --dport
  std::string target;             ///< "NOTRACK" or "ACCEPT"
  std::string comment;

  /// The upstream's argument list: -p P (-d IP --dport N | -s IP --sport N) -j T -m comment
  /// --comment C.
  std::vector<std::string> args() const;
  /// Like the upstream's %v of its rule struct: `{raw PREROUTING [-p tcp -d ... conntrack]}`.
  std::string toString() const;
  /// Same match and target, IPs compared canonically (a /32 or /128 suffix is accepted).
  bool sameAs(const IptablesRule& other) const;
  bool operator==(const IptablesRule& o) const;
};

/// The 12 rules per IP of upstream initIptables, in its list order.
std::vector<IptablesRule> nodeLocalDnsRules(const std::vector<LocalIp>& ips, uint16_t dns_port,
                                            uint16_t health_port);

/// Parses one `-A CHAIN ...` line of `iptables -S` output into a rule of `table`. Returns false for
/// policy lines, chains and rules using anything beyond the fields of IptablesRule.
bool parseSavedRule(std::string_view line, const std::string& table, IptablesRule* out);

/// Splits an iptables-save/-S line into words, honouring double quotes and backslash escapes.
std::vector<std::string> splitSavedLine(std::string_view line);

/// Quotes one argument for an iptables-restore line (double quotes when it has spaces/quotes).
std::string restoreQuote(std::string_view arg);

struct IptablesSettings {
  int family = 0;  ///< AF_INET (or 0) → iptables, AF_INET6 → ip6tables
  std::chrono::milliseconds command_timeout = std::chrono::seconds(30);
  int teardown_rounds = 16;  ///< bound on delete/re-list rounds
  /// Binary names; empty = derived from the family ("iptables"/"ip6tables" and "-restore").
  std::string iptables_binary;
  std::string restore_binary;
  /// Who runs the binaries; nullptr = systemProcesses() (tests pass a fake iptables).
  ProcessRunner* runner = nullptr;
};

class Iptables final : public RuleBackend {
 public:
  /// Receives "iptables_lock" when the error mentions the xtables lock, else "iptables".
  using ErrorCallback = std::function<void(std::string_view errortype)>;

  Iptables(IptablesSettings settings, std::vector<IptablesRule> rules, ErrorCallback on_error = {});

  /// Inserts every missing rule in one batch; logs `Added back nodelocaldns rule - <rule>` for
  /// each. @return the number of rules inserted, or -1 on error (logged and reported).
  int ensure() override;
  /// Removes every copy of every rule. @return true if none remain.
  bool teardown() override;
  /// The rules currently in `table` (parseable ones only). @return false on error.
  bool listTable(const std::string& table, std::vector<IptablesRule>* out);
  /// How many copies of `rule` are installed now (-1 on error).
  int countInstalled(const IptablesRule& rule);

  const std::vector<IptablesRule>& rules() const { return rules_; }
  /// AF_INET (iptables) or AF_INET6 (ip6tables).
  int family() const { return settings_.family; }
  const std::string& lastError() const { return last_error_; }

 private:
  bool fail(std::string message);
  bool restore(const std::string& batch);
  std::vector<std::string> tables() const;

  IptablesSettings settings_;
  std::vector<IptablesRule> rules_;
  ErrorCallback on_error_;
  std::string last_error_;
};

}  // namespace nld::node
