#pragma once
// Keeps the rendered Corefile in step with the base Corefile's directory and the kube-dns ConfigMap
// directory (as node-cache's initDNSConfigSync): polls both every `poll_interval` (default 10 s),
// re-renders on change, writes the output atomically (temp file + rename, mode 0644) and calls
// on_written. Unlike upstream node-cache, which stops watching a ConfigMap invalid at start, a bad
// one is never given up on: the last good config stays in use, the error is logged and counted once
// per distinct bad content, and the directory keeps being polled.
//
// Thread affinity: construct, initialSync() and start()/stop() from one owning thread (main).
// pollOnce() may be called directly only while the poll thread is not running (tests). The
// callbacks run on the thread that triggered the render: the caller of initialSync()/pollOnce(),
// or the internal poll thread after start().
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "common/result.h"
#include "node/corefile_template.h"

namespace nld::node {

struct ConfigSyncSettings {
  std::string base_corefile;               ///< -basecorefile (its directory is polled)
  std::string kube_dns_dir;                ///< ConfigMap directory; "" = no kube-dns sync
  std::string output_path;                 ///< -conf (or -corefile)
  std::string local_ips;                   ///< -localip with commas → spaces
  std::optional<std::string> upstream_ip;  ///< from upstreamServiceIp()
  std::string upstream_env_name;           ///< for the missing-IP error message
  uint16_t local_port = 53;                ///< -dns.port
  std::chrono::milliseconds poll_interval = std::chrono::seconds(10);
};

class ConfigSync {
 public:
  /// Called after a successful write with the output path and the rendered text (the place to log
  /// upstream's `Using config file:` + text and to send SIGUSR1 for -reloadwithsignal).
  using OnWritten = std::function<void(const std::string& path, const std::string& text)>;
  /// Called with "configmap" for every template/ConfigMap/write error.
  using OnError = std::function<void(std::string_view errortype)>;

  ConfigSync(ConfigSyncSettings settings, OnWritten on_written, OnError on_error);
  ~ConfigSync();  // stops the poll thread
  ConfigSync(const ConfigSync&) = delete;
  ConfigSync& operator=(const ConfigSync&) = delete;

  /// Loads the kube-dns directory (if any), renders and writes the Corefile once.
  /// @return true if a Corefile was written.
  bool initialSync();
  /// One poll: re-reads both directories and re-renders/writes if either changed (or if the last
  /// render failed). @return true if the Corefile was rewritten.
  bool pollOnce();
  /// Starts the poll thread (every poll_interval). Idempotent.
  void start();
  /// Stops the poll thread promptly (wakes it). Idempotent.
  void stop();

  /// The kube-dns config currently in use (last good one).
  KubeDnsConfig currentKubeDns() const;
  /// Number of Corefile writes so far.
  uint64_t writes() const;

 private:
  std::string dirFingerprint(const std::string& dir) const;
  bool loadKubeDns(bool force);
  bool renderAndWrite();
  void error(const std::string& message);
  void run();

  ConfigSyncSettings settings_;
  OnWritten on_written_;
  OnError on_error_;

  mutable std::mutex mu_;  // guards kube_dns_ and writes_ (read by other threads)
  KubeDnsConfig kube_dns_;
  uint64_t writes_ = 0;

  std::string base_fingerprint_;
  std::string kube_fingerprint_;  // fingerprint of the last load attempt (good or bad)
  bool render_failed_ = false;
  std::optional<std::string> last_written_;

  std::thread thread_;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stop_requested_ = false;
};

/// Writes `text` to `path` atomically: temp file in the same directory, mode 0644, fsync, rename.
/// On failure the old file is left untouched and the error says which step failed.
Result<void> writeFileAtomically(const std::string& path, std::string_view text);

}  // namespace nld::node
