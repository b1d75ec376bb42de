#pragma once
// The DNS server: N worker threads, each with its own event loop, pipeline (cache partitions,
// forwarders) and its own SO_REUSEPORT UDP and TCP sockets on every listener. Configuration
// changes (reload) are applied without dropping in-flight queries and without re-binding
// listeners that did not change.
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "net/event_loop.h"
#include "server/metrics.h"
#include "server/pipeline.h"
#include "server/plan.h"
#include "server/tcp_handler.h"
#include "server/udp_handler.h"

namespace nld::server {

struct ServerOptions {
  size_t workers = 1;
  int udp_rcvbuf = 8 << 20;
  int udp_sndbuf = 4 << 20;
  TcpLimits tcp;
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

  std::shared_ptr<const Plan> plan() const;
  size_t workers() const { return workers_.size(); }
  /// Client queries waiting on upstreams, over all workers (any thread).
  size_t inflight() const;

 private:
  using ListenerKey = std::pair<std::string, uint16_t>;
  struct Sockets {
    std::vector<int> udp;  // one per worker
    std::vector<int> tcp;
  };
  struct Worker;

  ServerMetrics& metrics_;
  ServerOptions options_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::map<ListenerKey, bool> bound_;  // listeners currently served
  mutable std::mutex mu_;
  std::shared_ptr<const Plan> plan_;
  bool started_ = false;
};

}  // namespace nld::server
