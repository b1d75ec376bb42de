#pragma once
// The local-DNS reconciler loop (declarative, after OVN inc-proc-eng minus the DAG: the NB slice
// is small, so every pass is a full recompute): keep an OVSDB replica of the NB, recompute the
// desired policies and NB_Global option on every replica change (debounced) and on a periodic
// resync, and write only the difference, guarded by "wait" operations. Reconnects with
// exponential backoff (1 s → 8 s) and resynchronises fully after every reconnect.
//
// Thread affinity: run()/check()/dryRun() are called on one thread (main); the Metrics object is
// read by the HTTP thread at scrape time (registry handles: thread-safe).
#include <atomic>
#include <chrono>
#include <iosfwd>
#include <string>
#include <vector>

#include "ovn/checks.h"
#include "ovn/desired_state.h"
#include "ovn/metrics.h"
#include "ovsdb/client.h"

namespace nld::ovn {

struct ControllerOptions {
  ReconcileConfig config;
  ovsdb::ClientOptions client;
  std::chrono::milliseconds resync_interval{60000};
  std::chrono::milliseconds debounce{200};
  std::chrono::milliseconds transaction_timeout{10000};
};

class Controller {
 public:
  Controller(ControllerOptions options, Metrics& metrics);

  /// Runs until `stop` becomes true (checked at least every 100 ms). @return process exit code.
  int run(const std::atomic<bool>& stop);

  /// One-shot: connects, prints the nodes, their policies and every finding to `out`.
  /// @return 0 if healthy, 1 if anything is wrong or the NB cannot be reached.
  int check(std::ostream& out);

  /// One-shot: prints the transaction it would send (JSON, one line: the transact params) or
  /// nothing if the NB is converged; never writes. @return 0, or 1 if the NB cannot be reached.
  int dryRun(std::ostream& out);

 private:
  enum class Pass { kConverged, kChanged, kRetry, kFailed };
  Pass reconcileOnce();
  bool connectLogged();
  void publish(const NbSnapshot& nb, const std::vector<Finding>& findings);

  ControllerOptions options_;
  Metrics& metrics_;
  ovsdb::Client client_;
  std::vector<std::string> last_reported_;
};

}  // namespace nld::ovn
