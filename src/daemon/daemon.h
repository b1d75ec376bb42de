#pragma once
// node-cache's process: the k8s-dns-node-cache wrapper (Corefile templating, dummy interface,
// iptables, pidfile, signals, reload, warm cache, handover) around our DNS server. main() only
// turns flags into a Daemon and calls run().
//
// Startup (start()), in upstream's order: handover → interface → render Corefile → bind
// listeners → warm cache → pidfile → iptables → periodic re-check → loop probes.
// Control loop (run()): every 100 ms or at once on a signal, onSignal() then tick():
//   SIGUSR1 → reload; SIGTERM/SIGINT/SIGQUIT → shutdown(); others are taken and ignored;
//   tick(): loop probes → loop detected (exit 1) → periodic snapshot → reload poll.
// SIGTERM: lameduck (health unhealthy, DNS served) → pidfile removed → teardown (unless
// -skipteardown) → queries waiting on upstreams finish → final snapshot → stop serving → exit 0.
//
// Seams (tests/daemon): the reload poll, the snapshot period and the loop-probe schedule read
// Env::time; the host side goes through Env::host_backends (node/backends.h); signals are calls
// to onSignal() (and -reloadwithsignal raises through Env::raise_signal); metrics go to
// Env::registry. Waits that depend on other processes or on queries
// in flight (lameduck, graceful stop, handover drain) stay on the real clock.
//
// Thread affinity: one control thread calls start(), onSignal(), tick() and run(); the handover
// thread calls the snapshot/socket hooks (guarded by snapshot_mu_ / http_mu_).
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "daemon/loop_probes.h"
#include "net/event_loop.h"
#include "node/host_setup.h"
#include "node/options.h"
#include "observability/coredns_metrics.h"
#include "observability/http_server.h"
#include "server/metrics.h"
#include "server/server.h"

namespace nld::node {
class ConfigSync;
class Handover;
}  // namespace nld::node

namespace nld::daemon {

/// What the daemon gets from the process around it; the defaults are the real ones.
struct Env {
  /// Metrics of the process (defaultRegistry() when null).
  observability::Registry* registry = nullptr;
  /// The reload poll, snapshot period and loop-probe schedule (systemTime() when null).
  net::TimeSource* time = nullptr;
  /// The host side for -setupinterface/-setupiptables (HostSetup::realBackends when empty).
  std::function<node::HostBackends(const node::HostSetupSettings&,
                                   const node::HostSetup::ErrorCallback&)>
      host_backends;
  /// -reloadwithsignal: how a new rendering of the Corefile asks for a reload, from the config
  /// sync thread (kill(getpid(), signo) when empty: the control loop takes it as a signal).
  std::function<void(int signo)> raise_signal;
  /// Answered to id.server. CH TXT (cmd/node-cache/ready_probe.h: processIdentity()).
  std::string identity;
  /// build_info and the start-up line.
  std::string version = "unknown";
  std::string revision = "unknown";
};

class Daemon {
 public:
  Daemon(node::Options options, Env env = {});
  ~Daemon();  // stops whatever still serves; never tears the host side down
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  /// Runs until a terminating signal or a fatal error; returns the process exit code. Blocks the
  /// signals it handles in the calling thread (and every thread created later).
  int run();

  /// How start() ended.
  enum class Started {
    kServing,  // listeners up: call tick()/onSignal()
    kIdle,     // the handover owner refused us (we are the pod it replaced): wait for SIGTERM
    kFailed,   // broken config or a port conflict: exit 1 (the host side is undone)
  };
  /// Steps 0–4 of the startup.
  Started start();
  /// Handles one signal. Returns the exit code if the process must end.
  std::optional<int> onSignal(int signo);
  /// One round of the control loop (see the top). Returns the exit code if the process must end.
  std::optional<int> tick();
  /// After a handover to a successor: drains and returns the exit code (0), or nullopt if no
  /// successor took over or it died meanwhile (we serve again).
  std::optional<int> checkHandover();

  // Observers (tests, control thread).
  std::shared_ptr<const plan::Plan> plan() const { return server_ ? server_->plan() : nullptr; }
  server::Server& server() { return *server_; }
  /// The Corefile's health/prometheus listeners (null before the first load).
  observability::HttpEndpoints* httpEndpoints() { return http_.get(); }
  const std::string& snapshotPath() const { return snapshot_path_; }
  LoopProbes& loopProbes() { return loop_probes_; }

 private:
  config::Corefile loadConfig() const;
  void applyConfig(config::Corefile cf);  // throws on failure; nothing changed then
  bool reload(const char* why);           // false: kept the old config
  void restartHttp(const config::Corefile& cf);
  void scheduleReload();
  void writePidfile();
  void removePidfile();
  void setupError(std::string_view type);
  void teardownNetworking();
  int shutdown(int signo);
  /// Stops the workers, the HTTP listeners and the loop probes (the end of every exit path).
  void stopServing();
  /// A successor serves from our sockets: stop reading, finish what was accepted, exit 0
  /// without teardown. Returns nullopt if the successor died meanwhile (we serve again).
  std::optional<int> drainAfterHandover();
  /// A successor died before we exited (node::Handover::successorsLost changed): it may have
  /// left its pidfile, or removed the pidfile, the interface and the rules on a SIGTERM. Writes
  /// ours and re-ensures the interface and the rules at once.
  void restoreAfterLostSuccessor();
  /// Creates -statedir (0700) if needed and loads its cache snapshot. Warns once if unusable.
  void startWarm();
  /// Writes the cache snapshot to -statedir; `final` logs the outcome at INFO. Failures are
  /// logged once (a read-only state dir must not fill the log), then retried silently.
  void writeSnapshot(bool final);

  node::Options opt_;
  Env env_;
  observability::Registry& registry_;
  net::TimeSource& time_;
  std::unique_ptr<observability::CorednsMetrics> catalogue_;
  std::unique_ptr<server::ServerMetrics> server_metrics_;
  std::unique_ptr<server::Server> server_;
  std::mutex snapshot_mu_;                              // one snapshot writer at a time
  std::mutex http_mu_;                                  // guards http_ against the handover thread
  std::unique_ptr<observability::HttpEndpoints> http_;  // Corefile health/prometheus
  std::string http_signature_;
  std::unique_ptr<observability::HttpServer> node_metrics_;  // -metrics-listen-address
  std::unique_ptr<node::HostSetup> host_;
  std::unique_ptr<node::ConfigSync> sync_;
  std::unique_ptr<node::Handover> handover_;
  LoopProbes loop_probes_;
  std::string fingerprint_;
  std::string failed_content_;  // last Corefile text that failed to load (tried once)
  std::chrono::milliseconds lameduck_{0};
  std::string snapshot_path_;  // <statedir>/cache.snapshot; "" = disabled
  bool snapshot_warned_ = false;
  bool pidfile_written_ = false;
  unsigned successors_lost_seen_ = 0;  // node::Handover::successorsLost() already restored
  bool torn_down_ = false;
  bool idle_ = false;     // start() returned kIdle
  bool stopped_ = false;  // stopServing() ran
  // Control-loop schedule (time_).
  std::optional<config::ReloadConfig> reload_cfg_;
  std::chrono::milliseconds reload_period_{0};  // 0: no `reload` plugin
  net::Clock::time_point next_reload_{};
  net::Clock::time_point next_snapshot_{};
};

}  // namespace nld::daemon
