#pragma once
// The DNS server: N worker threads, each with its own event loop, pipeline (cache partitions,
// forwarders) and its own SO_REUSEPORT UDP and TCP sockets on every listener. Configuration
// changes (reload) are applied without dropping in-flight queries and without re-binding
// listeners that did not change.
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/inherited_sockets.h"
#include "net/event_loop.h"
#include "net/fd.h"
#include "plan/plan.h"
#include "server/metrics.h"
#include "server/pipeline.h"
#include "server/tcp_handler.h"
#include "server/udp_handler.h"

namespace nld::server {

struct ServerOptions {
  size_t workers = 1;
  /// How many workers get a TCP socket per listener (0: all). The daemon sets it to the CPUs the
  /// process may use (common/cpu_budget.h): a TCP connection stays with the worker that accepted
  /// it, so spreading connections over more threads than CPUs only makes them take turns on one
  /// (measured: 2 workers on one core, ~10k context switches/s and 1.3–1.9× the CPU per TCP
  /// query of 1 worker, docs/benchmarks.md). UDP keeps every worker: it is steered by name.
  size_t tcp_workers = 0;
  int udp_rcvbuf = 8 << 20;
  int udp_sndbuf = 4 << 20;
  TcpLimits tcp;
  /// The process identity answered to `id.server.` / `hostname.bind.` CH TXT (Pipeline).
  std::string identity;
};

class Server {
 public:
  Server(ServerMetrics& metrics, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds every listener of `plan` that is not bound yet, then installs the plan on every
  /// worker and waits until all have switched. If any bind fails, the newly bound sockets are
  /// closed, the running configuration is untouched, and std::runtime_error is thrown.
  /// Control thread only. Starts the workers on the first call.
  void load(const std::shared_ptr<const Plan>& plan);

  /// Writes the cache entries of every worker to `path` as a snapshot (cache/snapshot.h).
  /// Control thread, while serving. Each worker exports its partitions in slices of
  /// kSnapshotSliceEntries entries posted to its own loop, so it keeps answering queries between
  /// slices; the file is encoded and written atomically on the calling thread. Returns the
  /// number of entries written. Throws std::runtime_error (file errors name the file, or the
  /// workers did not finish within a bound). Serialised with load()/stop().
  size_t writeSnapshot(const std::string& path);

  /// Loads the snapshot at `path` into the caches of the current plan: an entry goes to the
  /// block with the same cache identity and to the worker that owns its name under the current
  /// worker count (Pipeline::queryOwner, as the kernel steers queries), so a snapshot written
  /// with another -workers count loads correctly. Expired entries, entries of blocks that no
  /// longer exist and keys already cached are skipped. Logs one line: "Cache snapshot: loaded N
  /// entries from FILE (age S s)", or why the file was refused (then the cache stays cold), or
  /// that there is none. Never throws for a bad file. Control thread, after the first load().
  /// Returns the entries loaded.
  size_t loadSnapshot(const std::string& path);

  /// Entries a worker exports per slice (one loop round): bounded pause (~0.1 ms).
  static constexpr size_t kSnapshotSliceEntries = 1024;

  /// Stops accepting, fails queries still waiting on upstreams, joins the workers.
  void stop();

  /// Zero-loss handover (node/handover.h). The listening sockets of every listener, DNS UDP and
  /// TCP, each listener's in the order of its SO_REUSEPORT group. The fds stay ours. Any thread.
  std::vector<PassedSocket> listeningSockets() const;
  /// Stops reading every listening socket (the successor reads them now) while the sockets stay
  /// open: answers to queries already accepted still leave through them, and TCP connections
  /// already accepted are served until they fall idle, then closed. Control thread.
  void pauseListeners();
  /// Undoes pauseListeners() (the successor died before we exited). Control thread.
  void resumeListeners();
  /// TCP connections still open on every worker. Control thread (asks the workers).
  size_t tcpConnections();

  std::shared_ptr<const Plan> plan() const;
  size_t workers() const { return workers_.size(); }
  /// Client queries waiting on upstreams, over all workers (any thread).
  size_t inflight() const;

 private:
  using ListenerKey = std::pair<std::string, uint16_t>;
  /// One listener's sockets in SO_REUSEPORT group order. Socket i belongs to worker i (the
  /// steering program picks index hash % workers); sockets beyond the worker count were
  /// inherited from a predecessor with more workers: they stay open (closing a group member
  /// would drop what it queued and reorder the group) and are served by worker i % workers.
  /// The ints are borrowed: each socket is owned by the worker handler that serves it.
  struct Group {
    std::vector<int> udp;
    std::vector<int> tcp;
  };
  /// Sockets load() bound or adopted, owned until a worker's handlers take them (Worker::apply);
  /// on a failed load they close with it.
  struct GroupFds {
    std::vector<net::Fd> udp;
    std::vector<net::Fd> tcp;
  };
  struct Worker;
  /// Runs `f` on every worker's loop and waits for all.
  void onEveryWorker(const std::function<void(Worker&)>& f);

  ServerMetrics& metrics_;
  ServerOptions options_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::map<ListenerKey, Group> bound_;  // listeners currently served
  mutable std::mutex mu_;
  std::shared_ptr<const Plan> plan_;
  bool started_ = false;
};

}  // namespace nld::server
