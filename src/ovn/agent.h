#pragma once
// `ovn-localdns-controller agent`: the per-node fail-over agent (issue 10 §3). Probes the node's
// own cache every probe_interval (Prober), feeds one HealthTracker per DNS IP, keeps an OVSDB
// replica of the NB (the same tables as `run`) and, whenever the desired shape of its own node's
// rows differs from the NB (a health change, a neighbour's change, a reconnect), updates them in
// one wait-guarded transaction. Nothing is written while nothing changes. See failover.h for the
// row protocol and docs/ovn-controller.md for the failure matrix.
//
// Single-threaded: a probe round blocks for at most the probe timeout, the rest of each interval
// is spent in the OVSDB client's poll. NB loss does not stop the probing; after a reconnect the
// current state is written at once (a full resync, as every connect).
#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "ovn/dns_probe.h"
#include "ovn/failover.h"
#include "ovsdb/client.h"

namespace nld::ovn {

struct AgentOptions {
  AgentConfig config;
  ovsdb::ClientOptions client;
  HealthOptions health;
  std::chrono::milliseconds probe_interval{250};
  std::chrono::milliseconds transaction_timeout{5000};
};

class Agent {
 public:
  Agent(AgentOptions options, Prober& prober);

  /// Runs until `stop` becomes true (checked at least every probe interval). @return exit code.
  int run(const std::atomic<bool>& stop);

 private:
  void probeRound();
  /// Writes the own rows if they differ from the desired shape. @return false to retry later.
  bool reconcile();

  AgentOptions options_;
  Prober& prober_;
  ovsdb::Client client_;
  std::vector<HealthTracker> trackers_;  ///< one per config.reconcile.dns_ips entry
  std::vector<std::string> last_why_;    ///< last failure reason per DNS IP (for the log)
  std::vector<std::string> last_notes_;
  bool dirty_ = true;
};

}  // namespace nld::ovn
