// ovn-localdns-controller: keeps Kube-OVN's NodeLocal DNS router policies and NB_Global option in
// the OVN Northbound database (what kube-ovn-controller does for --node-local-dns-ip), as a
// standalone, declarative reconciler. See docs/ovn-controller.md.
//
//   ovn-localdns-controller [flags] run|check|agent [flags]
//
// `agent` is the per-node fail-over agent (src/ovn/agent.h): it probes the node's own cache and
// reroutes that node's pods to healthy neighbours' caches while it does not answer.
//
// Thread affinity: main thread runs the controller (or the agent); the metrics HTTP server has its
// own thread.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "common/log.h"
#include "common/random.h"
#include "flags/flag_set.h"
#include "net/fd.h"
#include "ovn/agent.h"
#include "ovn/controller.h"
#include "ovn/dns_probe.h"
#include "ovn/ip.h"
#include "ovn/metrics.h"
#include "ovsdb/remote.h"

namespace {

std::atomic<bool> g_stop{false};

void onSignal(int) { g_stop.store(true); }

struct Args {
  std::string nb_addr;
  std::string dns_ips;
  std::string router;
  std::string node_switch;
  int64_t priority = 30000;
  std::string metrics_addr;
  std::chrono::nanoseconds resync{};
  std::chrono::nanoseconds probe{};
  bool dry_run = false;
  bool probe_dns = true;
  bool quiet = false;
  bool version = false;
  std::string ssl_key;
  std::string ssl_cert;
  std::string ssl_ca;
  // agent
  std::string node;
  std::chrono::nanoseconds probe_interval{};
  std::chrono::nanoseconds probe_timeout{};
  int64_t probe_port = 53;
  int64_t fall = 3;
  int64_t rise = 4;
  std::chrono::nanoseconds rise_min{};
  std::chrono::nanoseconds hold{};
  std::chrono::nanoseconds hold_max{};
  int64_t neighbours = 3;
};

void defineFlags(nld::flags::FlagSet& fs, Args& a) {
  using namespace std::chrono_literals;
  fs.addString("ovn-nb-addr", &a.nb_addr, "unix:/var/run/ovn/ovnnb_db.sock",
               "OVN Northbound remotes, comma-separated (unix:PATH, tcp:IP:PORT, ssl:IP:PORT)");
  fs.addString("node-local-dns-ip", &a.dns_ips, "",
               "NodeLocal DNS IPs, comma-separated, IPv4 and/or IPv6 (empty: remove the policies)");
  fs.addString("cluster-router", &a.router, "ovn-cluster", "the default VPC logical router");
  fs.addString("node-switch", &a.node_switch, "join",
               "the logical switch holding the node-<node> ports");
  fs.addInt("policy-priority", &a.priority, 30000,
            "priority of the reroute policies (kube-ovn uses 30000)");
  fs.addString("metrics-addr", &a.metrics_addr, ":10667",
               "address for /metrics and /healthz (run only; empty disables)");
  fs.addDuration("resync-interval", &a.resync, 60s,
                 "full reconcile period even without NB changes");
  fs.addDuration("inactivity-probe", &a.probe, 5s, "OVSDB echo probe interval (0 disables)");
  fs.addBool("dry-run", &a.dry_run, false,
             "print the transaction that would be sent and exit; change nothing");
  fs.addBool("quiet", &a.quiet, false, "suppress INFO logs");
  fs.addBool("version", &a.version, false, "print the version and commit, then exit");
  fs.addBool("probe-dns", &a.probe_dns, true,
             "check: also query every node-local DNS IP from this host (run check on a node)");
  fs.addString("ovn-nb-ssl-key", &a.ssl_key, "", "private key for ssl: remotes");
  fs.addString("ovn-nb-ssl-cert", &a.ssl_cert, "", "certificate for ssl: remotes");
  fs.addString("ovn-nb-ssl-ca", &a.ssl_ca, "", "CA certificate for ssl: remotes");
  fs.addString("node", &a.node, "",
               "agent: this node's name (its port on --node-switch is node-<name>)");
  fs.addDuration("probe-interval", &a.probe_interval, 250ms,
                 "agent: how often the local cache is probed");
  fs.addDuration("probe-timeout", &a.probe_timeout, 300ms,
                 "agent: how long a probe waits for the answers");
  fs.addInt("probe-port", &a.probe_port, 53, "agent: the cache's DNS port");
  fs.addInt("fall", &a.fall, 3, "agent: consecutive failed probes that make the cache unhealthy");
  fs.addInt("rise", &a.rise, 4, "agent: consecutive good probes that make it healthy again ...");
  fs.addDuration("rise-min", &a.rise_min, 1s, "agent: ... spanning at least this long");
  fs.addDuration("hold", &a.hold, 3s, "agent: minimum time failed over (doubles on every flap)");
  fs.addDuration("hold-max", &a.hold_max, 60s, "agent: cap of the doubling hold");
  fs.addInt("failover-neighbours", &a.neighbours, 3,
            "agent: how many healthy neighbours take over");
}

// `check` on a node: the policies are only half of the path; the cache must answer too. Sends
// ". NS" to ip:53 over UDP, twice with a 2 s timeout; any DNS reply counts.
bool probeDns(const std::string& ip, std::string* why) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, ip.c_str(), &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons(53);
    len = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, ip.c_str(), &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(53);
    len = sizeof(sockaddr_in6);
  } else {
    *why = "not an IP address";
    return false;
  }
  for (int attempt = 0; attempt < 2; ++attempt) {
    const nld::net::Fd owned(::socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!owned) {
      *why = std::strerror(errno);
      return false;
    }
    const int fd = owned.get();
    const uint16_t id = static_cast<uint16_t>(nld::random64());
    const uint8_t q[] = {uint8_t(id >> 8),
                         uint8_t(id),
                         0x01,
                         0x00,
                         0,
                         1,
                         0,
                         0,
                         0,
                         0,
                         0,
                         0,
                         0x00,
                         0x00,
                         0x02,
                         0x00,
                         0x01};  // ". IN NS", RD
    bool ok = false;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0 &&
        ::send(fd, q, sizeof(q), 0) == ssize_t(sizeof(q))) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 2000) == 1) {
        uint8_t buf[4096];
        ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        ok = n >= 12 && buf[0] == q[0] && buf[1] == q[1] && (buf[2] & 0x80);
        if (!ok) *why = n < 0 ? std::strerror(errno) : "malformed reply";
      } else {
        *why = "no answer within 2 s";
      }
    } else {
      *why = std::strerror(errno);
    }
    if (ok) return true;
  }
  return false;
}

int fail(const std::string& msg) {
  std::fprintf(stderr, "ovn-localdns-controller: %s\n", msg.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  nld::flags::FlagSet fs("ovn-localdns-controller");
  defineFlags(fs, a);
  std::vector<std::string> rest;
  std::string command = "run";
  try {
    rest = fs.parse(argc, argv);
    // Flags may also follow the command: "run --node-local-dns-ip=...".
    if (!rest.empty()) {
      command = rest.front();
      std::vector<const char*> again{argv[0]};
      for (std::size_t i = 1; i < rest.size(); ++i) again.push_back(rest[i].c_str());
      rest = fs.parse(static_cast<int>(again.size()), again.data());
    }
  } catch (const nld::flags::HelpRequested&) {
    std::cout
        << fs.usage() << "\nCommands:\n  run    reconcile continuously (default)\n"
        << "  check  report nodes, policies and problems; exit 1 if anything is wrong\n"
        << "  agent  per-node fail-over: probe this node's cache, reroute its pods to healthy\n"
        << "         neighbours' caches while it does not answer (needs --node)\n";
    return 0;
  } catch (const nld::flags::FlagError& e) {
    return fail(e.what());
  }
  if (a.version) {
    std::printf("nodelocaldns ovn-localdns-controller %s (%s)\n", NLD_VERSION, NLD_REVISION);
    return 0;
  }
  if (!rest.empty()) return fail("unexpected argument \"" + rest.front() + "\"");
  if (command != "run" && command != "check" && command != "agent") {
    return fail("unknown command \"" + command + "\" (want run, check or agent)");
  }
  nld::log::init(a.quiet);

  nld::ovn::ControllerOptions opts;
  try {
    opts.client.remotes = nld::ovsdb::parseRemotes(a.nb_addr);
  } catch (const std::invalid_argument& e) {
    return fail(std::string("invalid --ovn-nb-addr: ") + e.what());
  }
  if (!a.dns_ips.empty()) {
    std::size_t start = 0;
    while (true) {
      auto comma = a.dns_ips.find(',', start);
      std::string ip =
          a.dns_ips.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (nld::ovn::ipFamily(ip) == 0)
        return fail("invalid --node-local-dns-ip \"" + ip + "\": not an IP address");
      opts.config.dns_ips.push_back(ip);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  if (a.priority < 0 || a.priority > 32767) return fail("--policy-priority must be in [0, 32767]");
  if (a.resync <= std::chrono::nanoseconds::zero())
    return fail("--resync-interval must be positive");
  opts.config.router = a.router;
  opts.config.node_switch = a.node_switch;
  opts.config.priority = a.priority;
  opts.resync_interval = std::chrono::duration_cast<std::chrono::milliseconds>(a.resync);
  opts.client.probe_interval = std::chrono::duration_cast<std::chrono::milliseconds>(a.probe);
  opts.client.ssl = {a.ssl_key, a.ssl_cert, a.ssl_ca};

  if (command == "agent") {
    if (a.node.empty()) return fail("agent needs --node");
    if (opts.config.dns_ips.empty()) return fail("agent needs --node-local-dns-ip");
    if (a.probe_interval <= std::chrono::nanoseconds::zero() ||
        a.probe_timeout <= std::chrono::nanoseconds::zero()) {
      return fail("--probe-interval and --probe-timeout must be positive");
    }
    if (a.probe_port < 1 || a.probe_port > 65535) return fail("--probe-port must be in [1, 65535]");
    if (a.fall < 1 || a.rise < 1) return fail("--fall and --rise must be at least 1");
    if (a.neighbours < 1) return fail("--failover-neighbours must be at least 1");
    if (a.hold < std::chrono::nanoseconds::zero() || a.hold_max < a.hold)
      return fail("need 0 <= --hold <= --hold-max");
    using std::chrono::duration_cast;
    using std::chrono::milliseconds;
    nld::ovn::AgentOptions ao;
    ao.config.node = a.node;
    ao.config.reconcile = opts.config;
    ao.config.max_neighbours = static_cast<std::size_t>(a.neighbours);
    ao.client = opts.client;
    // A partitioned NB must not stall the probing for long (see Agent::run).
    ao.client.connect_timeout = std::min(ao.client.connect_timeout, milliseconds(2000));
    ao.health.fall = static_cast<int>(a.fall);
    ao.health.rise = static_cast<int>(a.rise);
    ao.health.rise_min_span = duration_cast<milliseconds>(a.rise_min);
    ao.health.hold_base = duration_cast<milliseconds>(a.hold);
    ao.health.hold_max = duration_cast<milliseconds>(a.hold_max);
    ao.probe_interval = duration_cast<milliseconds>(a.probe_interval);
    nld::ovn::DnsProber prober(opts.config.dns_ips, static_cast<uint16_t>(a.probe_port),
                               duration_cast<milliseconds>(a.probe_timeout));
    nld::ovn::Agent agent(std::move(ao), prober);
    struct sigaction sa {};
    sa.sa_handler = onSignal;
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);
    nld::log::info("plugin/ovn: agent for node {} probing {} every {} ms", a.node, a.dns_ips,
                   duration_cast<milliseconds>(a.probe_interval).count());
    int rc = agent.run(g_stop);
    nld::log::info("plugin/ovn: agent stopped");
    return rc;
  }

  const std::vector<std::string> controller_dns_ips = opts.config.dns_ips;
  nld::ovn::Metrics metrics;
  nld::ovn::Controller controller(std::move(opts), metrics);
  if (command == "check") {
    int rc = controller.check(std::cout);
    if (a.probe_dns) {
      for (const auto& ip : controller_dns_ips) {
        std::string why;
        if (probeDns(ip, &why)) {
          std::cout << "OK: node-local DNS " << ip << ":53 answers on this host\n";
        } else {
          std::cout << "PROBLEM: node-local DNS " << ip << ":53 does not answer on this host ("
                    << why << "): is node-cache running on this node? (--probe-dns=false skips "
                    << "this check off-node)\n";
          rc = 1;
        }
      }
    }
    return rc;
  }
  if (a.dry_run) return controller.dryRun(std::cout);

  nld::ovn::MetricsServer server(metrics);
  if (!a.metrics_addr.empty()) {
    try {
      server.start(a.metrics_addr);
    } catch (const std::exception& e) {
      return fail(e.what());
    }
    nld::log::info("plugin/ovn: metrics on {} (port {})", a.metrics_addr, server.port());
  }
  struct sigaction sa {};
  sa.sa_handler = onSignal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  int rc = controller.run(g_stop);
  server.stop();
  nld::log::info("plugin/ovn: stopped");
  return rc;
}
