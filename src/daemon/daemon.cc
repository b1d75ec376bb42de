#include "daemon/daemon.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/cpu_budget.h"
#include "common/inherited_sockets.h"
#include "common/log.h"
#include "common/random.h"
#include "daemon/default_corefile.h"
#include "fmt/format.h"
#include "net/address.h"
#include "node/config_sync.h"
#include "node/handover.h"
#include "node/host_setup.h"
#include "plan/plan.h"

namespace nld::daemon {

namespace {
// How long a predecessor keeps serving what it accepted after a handover: queries waiting on
// upstreams end within the forward timeout (5 s); TCP clients are given a little more to finish
// pipelined queries before their connections are closed.
constexpr std::chrono::seconds kHandoverDrain{8};
// How long a predecessor stays at least, drained or not, holding the sockets: a successor that
// dies in its first seconds (a new version that crashes on its first queries) finds it still
// there, and it resumes serving instead of leaving the node without DNS until the kubelet
// restarts the successor.
constexpr std::chrono::seconds kHandoverLinger{2};
}  // namespace

Daemon::Daemon(node::Options options, Env env)
    : opt_(std::move(options)),
      env_(std::move(env)),
      registry_(env_.registry != nullptr ? *env_.registry : observability::defaultRegistry()),
      time_(env_.time != nullptr ? *env_.time : net::systemTime()),
      loop_probes_(time_) {}

Daemon::~Daemon() {
  if (server_ && !stopped_) stopServing();
}

void Daemon::setupError(std::string_view type) {
  if (catalogue_ && catalogue_->nodecache_setup_errors != nullptr) {
    catalogue_->nodecache_setup_errors->with({std::string(type)}).inc();
  }
}

config::Corefile Daemon::loadConfig() const {
  config::ParseOptions po;
  po.default_port = opt_.dns_port;
  if (opt_.default_config) {
    return config::parseCorefile(kDefaultCorefile, "<embedded default Corefile>", po);
  }
  return config::loadCorefile(opt_.output_corefile, po);
}

void Daemon::restartHttp(const config::Corefile& cf) {
  // Signature of the endpoint set; unchanged → keep the running set as it is.
  std::string sig;
  std::chrono::milliseconds lameduck{0};
  for (const auto& b : cf.blocks) {
    if (b.health) {
      sig += "h:" + b.health->address + ";";
      lameduck = std::max(lameduck, b.health->lameduck);
    }
    if (b.prometheus) sig += "m:" + *b.prometheus + ";";
  }
  lameduck_ = lameduck;
  std::lock_guard<std::mutex> lock(http_mu_);  // against a handover listing the sockets
  if (http_ && sig == http_signature_) return;
  auto fresh = std::make_unique<observability::HttpEndpoints>();
  for (const auto& b : cf.blocks) {
    if (b.health) {
      // The health plugin's self-check (CoreDNS plugin/health): GET /health every second, timed.
      fresh->addHealth(b.health->address)
          .enableHealthProbe(catalogue_->health_request_duration.with(),
                             catalogue_->health_request_failures.with());
    }
    if (b.prometheus) fresh->addMetrics(*b.prometheus, registry_);
  }
  // Only what changed restarts: a listener whose address and role stay keeps its socket (no
  // refused health checks or scrapes during a reload); the others stop before the new bind.
  if (http_) fresh->keepRunning(*http_);
  http_ = std::move(fresh);
  http_->start();
  http_signature_ = sig;
}

void Daemon::applyConfig(config::Corefile cf) {
  const std::string fp = cf.fingerprint;
  auto plan = plan::buildPlan(std::move(cf), server_->workers(), server_metrics_.get());
  server_->load(plan);  // binds new listeners first; throws without changing anything
  for (const auto& l : plan->listeners) {
    for (const auto& e : l.zones.entries()) {
      const auto& b = plan->corefile.blocks[e.block];
      if (!b.prometheus) continue;
      for (const char* name : {"cache", "forward", "errors", "loop", "prometheus"}) {
        bool on = (std::string_view(name) == "cache" && b.cache) ||
                  (std::string_view(name) == "forward" && !b.forwards.empty()) ||
                  (std::string_view(name) == "errors" && b.errors) ||
                  (std::string_view(name) == "loop" && b.loop) ||
                  std::string_view(name) == "prometheus";
        if (on) server_metrics_->enablePlugin(l.server_label, e.text, name);
      }
    }
  }
  try {
    restartHttp(plan->corefile);
  } catch (const std::exception& e) {
    log::error("health/prometheus listener: {}", e.what());
  }
  if (!fingerprint_.empty()) catalogue_->reload_version_info.with({"fnv1a64", fingerprint_}).set(0);
  fingerprint_ = fp;
  catalogue_->reload_version_info.with({"fnv1a64", fp}).set(1);
}

bool Daemon::reload(const char* why) {
  // Like CoreDNS's reload plugin, a broken file is tried once per distinct content: polling the
  // same broken file again neither logs nor counts another failure.
  std::string raw;
  if (!opt_.default_config) {
    if (std::FILE* f = std::fopen(opt_.output_corefile.c_str(), "rb")) {
      char buf[4096];
      size_t n;
      while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) raw.append(buf, n);
      std::fclose(f);
    }
    if (!failed_content_.empty() && raw == failed_content_) return false;
  }
  config::Corefile cf;
  try {
    cf = loadConfig();
  } catch (const std::exception& e) {
    log::info("Reloading");  // CoreDNS's reload plugin: this line, then the outcome
    log::error("Corefile changed but reload failed: {}", e.what());
    catalogue_->reload_failed.with().inc();
    failed_content_ = raw.empty() ? std::string(1, '\0') : raw;
    return false;
  }
  failed_content_.clear();
  if (cf.fingerprint == fingerprint_) return true;  // whitespace/comments only
  log::info("Reloading");
  try {
    applyConfig(std::move(cf));
  } catch (const std::exception& e) {
    log::error("Corefile changed but reload failed: {}", e.what());
    catalogue_->reload_failed.with().inc();
    failed_content_ = raw.empty() ? std::string(1, '\0') : raw;
    return false;
  }
  log::info("Reloading complete ({})", why);
  if (auto plan = server_->plan()) loop_probes_.start(LoopProbes::targetsOf(*plan));
  return true;
}

void Daemon::writePidfile() {
  if (opt_.pidfile.empty()) return;
  std::ofstream f(opt_.pidfile, std::ios::trunc);
  f << getpid() << "\n";
  f.close();
  if (!f) {
    throw std::runtime_error("could not write pidfile " + opt_.pidfile);
  }
  pidfile_written_ = true;
}

void Daemon::removePidfile() {
  if (!pidfile_written_) return;
  pidfile_written_ = false;
  // Only while it still names us: after a handover it names the successor.
  std::ifstream f(opt_.pidfile);
  long pid = 0;
  if (f >> pid && pid == long(getpid())) ::unlink(opt_.pidfile.c_str());
}

void Daemon::teardownNetworking() {
  if (torn_down_) return;
  torn_down_ = true;
  if (host_ && !opt_.skip_teardown) {
    if (opt_.setup_interface || opt_.setup_iptables) log::info("Tearing down");
    host_->teardown();
  } else if (host_) {
    host_->stopPeriodic();
  }
}

void Daemon::startWarm() {
  if (opt_.statedir.empty()) return;
  snapshot_path_ = opt_.statedir + "/cache.snapshot";
  std::error_code ec;
  if (!std::filesystem::is_directory(opt_.statedir, ec)) {
    std::filesystem::create_directories(opt_.statedir, ec);
    if (!ec) {
      std::filesystem::permissions(opt_.statedir, std::filesystem::perms::owner_all,
                                   std::filesystem::perm_options::replace, ec);
    }
    if (ec) {
      log::warn("State dir {}: {}; serving without a cache snapshot", opt_.statedir, ec.message());
      snapshot_warned_ = true;
      return;
    }
  }
  try {
    server_->loadSnapshot(snapshot_path_);
  } catch (const std::exception& e) {
    log::warn("Cache snapshot {}: {}; starting cold", snapshot_path_, e.what());
  }
}

void Daemon::writeSnapshot(bool final) {
  if (snapshot_path_.empty()) return;
  // The main thread (periodic, shutdown) and the handover thread (for a successor) write it.
  std::lock_guard<std::mutex> lock(snapshot_mu_);
  const auto start = std::chrono::steady_clock::now();
  try {
    const size_t n = server_->writeSnapshot(snapshot_path_);
    if (final) {
      std::error_code ec;
      const auto bytes = std::filesystem::file_size(snapshot_path_, ec);
      log::info("Cache snapshot: wrote {} entries to {} ({} bytes) in {} ms", n, snapshot_path_,
                ec ? 0 : bytes,
                std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now() - start)
                    .count());
    }
    snapshot_warned_ = false;  // working again: a new failure is worth a line
  } catch (const std::exception& e) {
    if (!snapshot_warned_) {
      log::warn("Cache snapshot not written: {}; serving on, will retry", e.what());
    }
    snapshot_warned_ = true;
  }
}

std::optional<int> Daemon::drainAfterHandover() {
  // The successor reads our listening sockets now. Stop reading them; keep them open so answers
  // to what we accepted still leave from them; finish queries waiting on upstreams and serve the
  // TCP connections we accepted until they fall idle. The interface and the rules stay: the
  // successor holds them (no teardown), and the pidfile names it.
  server_->pauseListeners();
  if (sync_) sync_->stop();
  if (host_) host_->stopPeriodic();
  auto resume = [this] {
    server_->resumeListeners();
    if (sync_) sync_->start();
    if (host_ && (opt_.setup_iptables || opt_.setup_interface)) {
      host_->startPeriodic(opt_.sync_interval);
    }
    restoreAfterLostSuccessor();
    return std::nullopt;
  };
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + kHandoverDrain;
  size_t tcp = 0;
  for (;;) {
    if (!handover_->handedOver()) return resume();  // the successor died: we serve again
    tcp = server_->tcpConnections();
    const auto now = std::chrono::steady_clock::now();
    const bool drained = server_->inflight() == 0 && tcp == 0;
    if ((drained && now >= start + kHandoverLinger) || now >= deadline) {
      // One atomic decides between this exit and a successor's death in the same instant.
      if (!handover_->commitExit()) return resume();
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  log::info("Handover: drained (queries waiting on upstreams: {}, TCP connections: {}); exiting",
            server_->inflight(), tcp);
  torn_down_ = true;  // the successor owns the interface and the rules
  pidfile_written_ = false;
  handover_->stop();
  stopServing();
  return 0;
}

int Daemon::shutdown(int signo) {
  loop_probes_.stop();
  if (handover_ && handover_->handedOver()) {
    // Terminated while draining after a handover: the successor owns interface and rules.
    torn_down_ = true;
    pidfile_written_ = false;
  }
  if (signo == SIGTERM && http_) {
    // Lameduck: health reports unhealthy while DNS keeps being served.
    http_->setLameduck(true);
    if (lameduck_.count() > 0) std::this_thread::sleep_for(lameduck_);
  }
  if (sync_) sync_->stop();
  removePidfile();
  teardownNetworking();
  if (signo != SIGQUIT) {
    // Let queries waiting on upstreams finish (bounded like CoreDNS's 5 s graceful stop).
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (server_->inflight() > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    // Their answers are cached now: the successor starts with everything we had. (After a
    // handover the successor owns the snapshot.)
    if (!(handover_ && handover_->handedOver())) writeSnapshot(true);
  }
  stopServing();
  return 0;
}

void Daemon::stopServing() {
  server_->stop();
  if (http_) http_->stop();
  if (node_metrics_) node_metrics_->stop();
  loop_probes_.stop();
  stopped_ = true;
}

Daemon::Started Daemon::start() {
  // 0. Zero-loss handover (node/handover.h): before anything binds, take the listening sockets
  //    of a node-cache that is serving (a rollout with maxSurge), or become the owner.
  if (!opt_.statedir.empty()) {
    const char* uid = std::getenv("POD_UID");
    handover_ = std::make_unique<node::Handover>(opt_.statedir, uid != nullptr ? uid : "");
    try {
      if (handover_->begin() == node::Handover::Start::kRefused) {
        log::info(
            "Not serving: this pod was replaced by the node-cache that now serves; "
            "waiting for SIGTERM");
        idle_ = true;
        return Started::kIdle;
      }
    } catch (const std::exception& e) {
      log::warn("State directory unusable, no handover: {}", e.what());
      handover_.reset();
    }
  }

  // -metrics-listen-address, node-cache's own endpoint: setup errors count only if it started.
  bool node_metrics_ok = true;
  node_metrics_ = std::make_unique<observability::HttpServer>(
      opt_.default_config ? std::string("127.0.0.1:9353") : opt_.metrics_listen_address);
  node_metrics_->enableMetrics(registry_);
  node_metrics_->countLimitsInto(registry_);
  try {
    node_metrics_->start();
  } catch (const std::exception& e) {
    log::error("Failed to start metrics handler: {}", e.what());
    node_metrics_.reset();
    node_metrics_ok = false;
  }
  observability::BuildInfo build;
  build.version = env_.version;
  build.revision = env_.revision;
  catalogue_ = std::make_unique<observability::CorednsMetrics>(registry_, build, node_metrics_ok);
  observability::registerProcessCollector(registry_);

  // Unset: as many workers as the CPU the process may use (affinity, cpuset, cgroup quota), so
  // a DaemonSet limited to 500m on a 64-core node runs one worker, not 64 on half a core.
  // TCP sockets: on at most that many workers, even when -workers asks for more (server.h).
  const CpuBudget cpu = detectCpuBudget();
  size_t workers = size_t(opt_.workers);
  if (workers == 0) {
    workers = cpu.workers();
    if (cpu.quota) {
      log::info("CPU quota {:.2f} ({}), {} CPUs in the affinity mask: {} workers", *cpu.quota,
                cpu.quota_source, cpu.affinity, workers);
    }
  }
  server_metrics_ = std::make_unique<server::ServerMetrics>(*catalogue_, workers);
  server::ServerOptions so;
  so.workers = workers;
  so.tcp_workers = std::min<size_t>(workers, cpu.workers());
  if (so.tcp_workers < workers) {
    log::info(
        "TCP: {} of {} workers accept connections (CPU this process may use: {} in the "
        "affinity mask{})",
        so.tcp_workers, workers, cpu.affinity,
        cpu.quota ? fmt::format(", quota {:.2f}", *cpu.quota) : std::string());
  }
  // Answered to id.server CH TXT: the readiness probe (-probe-ready) tells its own pod by it.
  so.identity = env_.identity;
  log::info("Identity (id.server CH TXT): {}", so.identity);
  server_ = std::make_unique<server::Server>(*server_metrics_, so);

  // 1. Interface (before listeners: `bind` needs the addresses to be local).
  node::HostSetupSettings hs = node::HostSetupSettings::fromOptions(opt_);
  node::HostSetup::ErrorCallback on_error = [this](std::string_view t) { setupError(t); };
  node::HostBackends backends = env_.host_backends ? env_.host_backends(hs, on_error)
                                                   : node::HostSetup::realBackends(hs, on_error);
  host_ = std::make_unique<node::HostSetup>(hs, std::move(backends), on_error);
  if (opt_.setup_interface) host_->setupInterface();

  // 2. Render the Corefile from the template (and keep re-rendering on changes).
  if (!opt_.default_config) {
    node::ConfigSyncSettings cs;
    cs.base_corefile = opt_.base_corefile;
    cs.kube_dns_dir = opt_.kubednscm;
    if (cs.kube_dns_dir.empty() && ::access("/etc/kube-dns", F_OK) == 0) {
      cs.kube_dns_dir = "/etc/kube-dns";
    }
    cs.output_path = opt_.output_corefile;
    cs.local_ips = opt_.localIpsSpaceSeparated();
    cs.upstream_ip = node::upstreamServiceIp(opt_.upstream_svc);
    cs.upstream_env_name = node::upstreamServiceEnvName(opt_.upstream_svc);
    cs.local_port = opt_.dns_port;
    if (!cs.upstream_ip) {
      log::warn(
          "Unable to lookup IP address of Upstream service {}, env ${} is not set or not "
          "an IP",
          opt_.upstream_svc, cs.upstream_env_name);
    }
    std::function<void(int)> raise;
    if (opt_.reload_with_signal) {
      raise = env_.raise_signal ? env_.raise_signal : [](int signo) { ::kill(::getpid(), signo); };
    }
    sync_ = std::make_unique<node::ConfigSync>(
        cs,
        [raise](const std::string& path, const std::string& text) {
          log::info("Using config file:\n{}", text);
          (void)path;
          if (raise) raise(SIGUSR1);
        },
        [this](std::string_view t) { setupError(t); });
    if (::access(opt_.base_corefile.c_str(), R_OK) == 0) {
      sync_->initialSync();
      sync_->start();
    } else {
      log::warn("Base Corefile {} not readable; serving {} as is", opt_.base_corefile,
                opt_.output_corefile);
    }
  }

  // 3. Load and serve. A broken config or a port conflict is fatal, after undoing step 1.
  try {
    applyConfig(loadConfig());
  } catch (const std::exception& e) {
    log::error("{}", e.what());
    if (sync_) sync_->stop();
    teardownNetworking();
    return Started::kFailed;
  }
  if (size_t n = inheritedSockets().closeUnclaimed()) {
    log::info("Handover: closed {} handed-over sockets the configuration does not use", n);
  }
  // 3b. Warm cache: the snapshot of the previous process (written for us at a handover, else
  //     its last periodic one), before we tell a predecessor that we serve and before the
  //     pidfile says "ready".
  startWarm();
  if (handover_) {
    node::Handover::Hooks hooks;
    hooks.snapshot = [this] {
      writeSnapshot(false);  // the successor starts with everything we have now
      return snapshot_path_;
    };
    hooks.sockets = [this] {
      std::vector<PassedSocket> all = server_->listeningSockets();
      std::lock_guard<std::mutex> lock(http_mu_);
      if (http_) {
        for (auto& s : http_->listeningSockets()) all.push_back(std::move(s));
      }
      if (node_metrics_ && node_metrics_->listeningFd() >= 0) {
        all.push_back(
            {SocketKind::kHttp, node_metrics_->address(), 0, node_metrics_->listeningFd()});
      }
      return all;
    };
    handover_->serve(std::move(hooks));
  }
  auto plan = server_->plan();
  for (const auto& l : plan->listeners) log::info("{}", l.server_label);
  log::info("nodelocaldns-{} (node-cache, {} workers)", env_.version, workers);

  // 4. Pidfile after every listener is up, then iptables (rules without a listener black-hole DNS).
  try {
    writePidfile();
  } catch (const std::exception& e) {
    log::error("{}", e.what());
  }
  if (opt_.setup_iptables || opt_.setup_interface) {
    host_->setupRules();
    host_->startPeriodic(opt_.sync_interval);
  }
  if (auto p = server_->plan()) loop_probes_.start(LoopProbes::targetsOf(*p));

  // 5. The control loop's schedule: reload polling and the periodic snapshot.
  reload_cfg_.reset();
  for (const auto& b : plan->corefile.blocks) {
    if (b.reload) reload_cfg_ = b.reload;
  }
  scheduleReload();
  // The periodic snapshot is what an unclean end (SIGKILL, OOM, crash) restarts from: at most
  // -snapshotinterval (60 s by default) of new entries are lost. Written from this thread while
  // the workers keep serving (they export in slices), so its cost does not pause DNS.
  next_snapshot_ =
      time_.now() + std::chrono::duration_cast<net::Clock::duration>(opt_.snapshot_interval);
  return Started::kServing;
}

void Daemon::scheduleReload() {
  // The reload plugin's period: interval ± jitter/2, drawn again for every poll.
  reload_period_ = std::chrono::milliseconds(0);
  if (reload_cfg_) {
    auto base = std::chrono::duration_cast<std::chrono::milliseconds>(reload_cfg_->interval);
    auto jitter = std::chrono::duration_cast<std::chrono::milliseconds>(reload_cfg_->jitter);
    auto j = jitter.count() > 0
                 ? int64_t(randomBelow(uint64_t(jitter.count()))) - jitter.count() / 2
                 : 0;
    reload_period_ = base + std::chrono::milliseconds(j);
  }
  next_reload_ = time_.now() + reload_period_;
}

void Daemon::restoreAfterLostSuccessor() {
  successors_lost_seen_ = handover_->successorsLost();
  try {
    writePidfile();  // it names the successor, or is gone (a terminated successor removed it)
  } catch (const std::exception& e) {
    log::warn("Handover: {}", e.what());
  }
  if (host_ && (opt_.setup_iptables || opt_.setup_interface)) {
    // A terminated (not killed) successor tore the interface and the rules down on its way
    // out: put them back now, not one -syncinterval later.
    host_->ensureOnce();
  }
}

std::optional<int> Daemon::checkHandover() {
  if (idle_ || !handover_) return std::nullopt;
  // A successor that died before this loop saw it serve: we never paused, but it may have
  // left things behind.
  if (handover_->successorsLost() != successors_lost_seen_) restoreAfterLostSuccessor();
  if (!handover_->handedOver()) return std::nullopt;
  return drainAfterHandover();
}

std::optional<int> Daemon::onSignal(int signo) {
  if (signo == SIGTERM || signo == SIGINT || signo == SIGQUIT) {
    if (idle_) return 0;
    log::info("Received {}, shutting down", signo == SIGTERM  ? "SIGTERM"
                                            : signo == SIGINT ? "SIGINT"
                                                              : "SIGQUIT");
    return shutdown(signo);
  }
  if (signo == SIGUSR1 && !idle_) reload("SIGUSR1");
  return std::nullopt;  // SIGHUP, SIGUSR2: taken and ignored (CoreDNS reloads on SIGUSR1 only)
}

std::optional<int> Daemon::tick() {
  if (idle_) return std::nullopt;
  loop_probes_.tick();
  if (auto loop_msg = loop_probes_.detected()) {
    // Unlike the upstream, tear down first: rules left behind black-hole node DNS.
    removePidfile();
    teardownNetworking();
    log::error("{}", *loop_msg);
    server_->stop();
    return 1;
  }
  if (!snapshot_path_.empty() && time_.now() >= next_snapshot_) {
    writeSnapshot(false);
    next_snapshot_ =
        time_.now() + std::chrono::duration_cast<net::Clock::duration>(opt_.snapshot_interval);
  }
  if (reload_period_.count() > 0 && time_.now() >= next_reload_) {
    reload("reload plugin: Corefile changed");
    if (auto p = server_->plan()) {
      reload_cfg_.reset();
      for (const auto& b : p->corefile.blocks) {
        if (b.reload) reload_cfg_ = b.reload;
      }
    }
    scheduleReload();
  }
  return std::nullopt;
}

int Daemon::run() {
  // Every thread created from here on inherits this mask; only the control loop takes signals.
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGHUP, SIGUSR2}) sigaddset(&set, s);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  switch (start()) {
    case Started::kFailed:
      return 1;
    case Started::kIdle:
      for (;;) {
        if (auto code = onSignal(sigwaitinfo(&set, nullptr))) return *code;
      }
    case Started::kServing:
      break;
  }
  for (;;) {
    timespec ts{0, 100 * 1000 * 1000};
    const int sig = sigtimedwait(&set, nullptr, &ts);
    if (auto code = checkHandover()) return *code;
    if (sig > 0) {
      if (auto code = onSignal(sig)) return *code;
    }
    if (auto code = tick()) return *code;
  }
}

}  // namespace nld::daemon
