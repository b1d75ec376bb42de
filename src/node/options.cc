#include "node/options.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

namespace nld::node {

namespace {

using flags::FlagError;

// All flag variables in their textual / Go form, bound to one FlagSet.
struct RawFlags {
  Options o;
  std::string health_port = "8080";
  std::string dns_port = "53";
  std::string firewall = "iptables";
};

void define(flags::FlagSet& fs, RawFlags& r) {
  Options& o = r.o;
  fs.addString("localip", &o.localip, "",
               "comma-separated string of ip addresses to bind dnscache to");
  fs.addBool("setupinterface", &o.setup_interface, true,
             "indicates whether network interface should be setup");
  fs.addString("interfacename", &o.interface_name, "nodelocaldns",
               "name of the interface to be created");
  fs.addDuration("syncinterval", &o.sync_interval, std::chrono::seconds(60),
                 "interval(in seconds, or a Go duration such as 30s) to check for iptables rules",
                 std::chrono::seconds(1));
  fs.addString("metrics-listen-address", &o.metrics_listen_address, "0.0.0.0:9353",
               "address to serve metrics on");
  fs.addBool("setupiptables", &o.setup_iptables, true,
             "indicates whether iptables rules should be setup");
  fs.addString("firewall", &r.firewall, "iptables",
               "how the DNS traffic rules are installed: iptables, nftables (table inet "
               "node-local-dns over netlink) or auto (nftables when kube-proxy's nft table exists "
               "or no iptables binary is on PATH)");
  fs.addString("basecorefile", &o.base_corefile, "/etc/coredns/Corefile.base",
               "Path to the template Corefile for node-cache");
  fs.addString("corefile", &o.corefile, "/etc/Corefile",
               "Path to the Corefile to be used by node-cache (used when -conf is not given)");
  fs.addString("kubednscm", &o.kubednscm, "", "Path where the kube-dns configmap will be mounted");
  fs.addString("upstreamsvc", &o.upstream_svc, "kube-dns",
               "Service name whose cluster IP is upstream for node-cache");
  fs.addString("health-port", &r.health_port, "8080", "port used by health plugin");
  fs.addBool("skipteardown", &o.skip_teardown, false,
             "indicates whether iptables rules should be torn down on exit");
  fs.addBool("reloadwithsignal", &o.reload_with_signal, false,
             "use SIGUSR1 to reload the Corefile after it is rewritten");
  fs.addString("conf", &o.conf, "", "Corefile to load (default \"Corefile\")");
  fs.addString("pidfile", &o.pidfile, "", "Path to write pid file");
  fs.addString("dns.port", &r.dns_port, "53", "Default port");
  fs.alias("p", "dns.port");
  fs.addBool("version", &o.version, false, "Show version");
  fs.addBool("quiet", &o.quiet, false, "Quiet mode (no initialization output)");
  fs.addBool("plugins", &o.plugins, false, "List installed plugins");
  fs.addBool("default-config", &o.default_config, false,
             "serve the embedded default Corefile on 127.0.0.1:5353 (no interface, no iptables)");
  fs.addInt("workers", &o.workers, 0, "number of DNS worker threads (0 = one per CPU)");
  fs.addString("statedir", &o.statedir, "/var/run/node-local-dns",
               "directory for the handover socket and locks and the cache snapshot (\"\" = none)");
  fs.addDuration("snapshotinterval", &o.snapshot_interval, std::chrono::seconds(60),
                 "how often the cache snapshot in -statedir is rewritten");
  fs.addString("probe-ready", &o.probe_ready, "",
               "readiness probe: exit 0 only if the node-cache answering id.server CH TXT on this "
               "ip:port is this pod (POD_UID, else the hostname); starts nothing");
}

uint16_t parsePort(const std::string& text, const char* flag_name) {
  // Go's strconv.Atoi semantics (optional sign, decimal digits), then a port range check.
  size_t i = (!text.empty() && (text[0] == '+' || text[0] == '-')) ? 1 : 0;
  bool ok = i < text.size() && text.size() - i <= 10;
  for (size_t j = i; ok && j < text.size(); ++j) ok = text[j] >= '0' && text[j] <= '9';
  if (!ok) {
    // FlagError: this is the command line itself, whose errors unwind to main (usage + exit 2).
    throw FlagError(std::string("invalid ") + flag_name + " specified - " + flags::goQuote(text) +
                    ": not an integer");
  }
  const long long v = std::stoll(text);
  if (v < 1 || v > 65535) {
    throw FlagError(std::string("invalid ") + flag_name + " specified - " + flags::goQuote(text) +
                    ": port must be in 1-65535");
  }
  return static_cast<uint16_t>(v);
}

std::string joinQuoted(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? " " : "") + v[i];
  return out + "]";
}

}  // namespace

std::string Options::localIpsSpaceSeparated() const {
  std::string out = localip;
  for (char& c : out) {
    if (c == ',') c = ' ';
  }
  return out;
}

Options parseOptions(int argc, const char* const* argv) {
  RawFlags r;
  flags::FlagSet fs(argc > 0 && argv[0] != nullptr ? argv[0] : "node-cache");
  define(fs, r);
  const std::vector<std::string> rest = fs.parse(argc, argv);
  Options o = std::move(r.o);
  if (!rest.empty()) throw FlagError("extra command line arguments: " + joinQuoted(rest));
  o.output_corefile = fs.isSet("conf") ? o.conf : o.corefile;
  if (o.version || o.plugins) return o;  // print and exit; nothing else matters
  if (!o.probe_ready.empty()) return o;  // probe and exit: the serving flags do not apply

  if (o.default_config) {
    o.setup_interface = false;
    o.setup_iptables = false;
    if (!fs.isSet("localip")) o.localip = "127.0.0.1";
    if (!fs.isSet("dns.port")) r.dns_port = "5353";
  }
  if (r.firewall == "iptables") {
    o.firewall = Firewall::kIptables;
  } else if (r.firewall == "nftables") {
    o.firewall = Firewall::kNftables;
  } else if (r.firewall == "auto") {
    o.firewall = Firewall::kAuto;
  } else {
    throw FlagError("invalid firewall specified - " + flags::goQuote(r.firewall) +
                    ": must be iptables, nftables or auto");
  }
  o.health_port = parsePort(r.health_port, "health-port");
  o.dns_port = parsePort(r.dns_port, "dns.port");
  if (o.sync_interval <= std::chrono::nanoseconds::zero()) {
    throw FlagError("invalid syncinterval specified - " + flags::formatGoDuration(o.sync_interval) +
                    ": must be positive");
  }
  if (o.snapshot_interval < std::chrono::milliseconds(100)) {
    throw FlagError("invalid snapshotinterval specified - " +
                    flags::formatGoDuration(o.snapshot_interval) + ": must be at least 100ms");
  }
  if (o.workers < 0 || o.workers > 1024) {
    throw FlagError("invalid workers specified - " + std::to_string(o.workers) +
                    ": must be in 0-1024");
  }
  if (o.interface_name.empty() || o.interface_name.size() > 15 ||
      o.interface_name.find_first_of("/ \t\n:") != std::string::npos || o.interface_name == "." ||
      o.interface_name == "..") {
    throw FlagError("invalid interfacename specified - " + flags::goQuote(o.interface_name) +
                    ": must be 1-15 characters without '/', ':' or whitespace");
  }
  size_t start = 0;
  while (true) {
    const size_t comma = o.localip.find(',', start);
    const std::string part =
        o.localip.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    LocalIp ip;
    if (!parseLocalIp(part, &ip)) {
      throw FlagError("invalid localip specified - " + flags::goQuote(part));
    }
    // IPv4 and IPv6 may be mixed (dual-stack in one process, issue 12; upstream refuses it): each
    // address goes on the interface and gets its rules through its own family's tools.
    o.local_ips.push_back(std::move(ip));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return o;
}

std::string optionsUsage(const std::string& program) {
  RawFlags r;
  flags::FlagSet fs(program);
  define(fs, r);
  return fs.usage();
}

}  // namespace nld::node
