#pragma once
// node-cache's process: the k8s-dns-node-cache wrapper (flags, Corefile templating, dummy
// interface, iptables, pidfile, signals) around our DNS server. Startup order as upstream's:
// interface → render Corefile → bind listeners → pidfile → iptables → periodic re-check; SIGTERM:
// lameduck → in-flight queries finish → teardown → exit 0.
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <signal.h>
#include <string>
#include <thread>
#include <vector>

#include "node/options.h"
#include "observability/coredns_metrics.h"
#include "observability/http_server.h"
#include "server/metrics.h"
#include "server/server.h"

namespace nld::node {
class HostSetup;
class ConfigSync;
class Handover;
}  // namespace nld::node

namespace nld::cmd {

class App {
 public:
  explicit App(node::Options options);
  ~App();
  /// Runs until a terminating signal or a fatal error; returns the process exit code.
  int run();

 private:
  config::Corefile loadConfig() const;
  void applyConfig(config::Corefile cf);   // throws on failure; nothing changed then
  bool reload(const char* why);            // false: kept the old config
  void restartHttp(const config::Corefile& cf);
  void startLoopProbes();
  bool loopDetected(std::string* message) const;
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
  /// The handover was refused (we are the pod our successor replaced): idle until a signal.
  int idleUntilSignal(const sigset_t& set);
  /// Creates -statedir (0700) if needed and loads its cache snapshot. Warns once if unusable.
  void startWarm();
  /// Writes the cache snapshot to -statedir; `final` logs the outcome at INFO. Failures are
  /// logged once (a read-only state dir must not fill the log), then retried silently.
  void writeSnapshot(bool final);

  node::Options opt_;
  observability::Registry& registry_;
  std::unique_ptr<observability::CorednsMetrics> catalogue_;
  std::unique_ptr<server::ServerMetrics> server_metrics_;
  std::unique_ptr<server::Server> server_;
  std::mutex snapshot_mu_;  // one snapshot writer at a time
  std::mutex http_mu_;  // guards http_ against the handover thread
  std::unique_ptr<observability::HttpEndpoints> http_;   // Corefile health/prometheus
  std::string http_signature_;
  std::unique_ptr<observability::HttpServer> node_metrics_;  // -metrics-listen-address
  std::unique_ptr<node::HostSetup> host_;
  std::unique_ptr<node::ConfigSync> sync_;
  std::unique_ptr<node::Handover> handover_;
  std::string fingerprint_;
  std::string failed_content_;  // last Corefile text that failed to load (tried once)
  std::chrono::milliseconds lameduck_{0};
  std::vector<std::thread> probes_;
  std::atomic<bool> stopping_{false};
  std::string snapshot_path_;  // <statedir>/cache.snapshot; "" = disabled
  bool snapshot_warned_ = false;
  bool pidfile_written_ = false;
  bool torn_down_ = false;
};

}  // namespace nld::cmd
