// node-cache: a drop-in replacement for Kubernetes' k8s-dns-node-cache. main only turns flags
// into objects: the process itself (startup, signals, reload, teardown) is daemon::Daemon
// (src/daemon/daemon.h).
#include <sys/resource.h>

#include <cstdio>

#include "cmd/node-cache/ready_probe.h"
#include "common/log.h"
#include "daemon/daemon.h"
#include "flags/flag_set.h"

namespace {

// The soft RLIMIT_NOFILE up to the hard limit, as Go's runtime does at start (since Go 1.19),
// so the reference binary gets it too: with a container's usual 1024 soft limit, a thousand
// TCP clients would otherwise use up the descriptors the upstream sockets need.
void raiseFileLimit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max) return;
  rl.rlim_cur = rl.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &rl);  // best effort, like Go
}

}  // namespace

int main(int argc, char** argv) {
  raiseFileLimit();
  nld::node::Options opt;
  try {
    opt = nld::node::parseOptions(argc, argv);
  } catch (const nld::flags::HelpRequested&) {
    std::fputs(nld::node::optionsUsage(argc > 0 ? argv[0] : "node-cache").c_str(), stderr);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "node-cache: %s\n", e.what());
    return 1;
  }
  if (opt.version) {
    std::printf("nodelocaldns node-cache %s (%s)\n", NLD_VERSION, NLD_REVISION);
    return 0;
  }
  if (opt.plugins) {
    std::printf(
        "Server types:\n  dns\n\nCaddyfile loaders:\n  flag\n\nOther plugins:\n"
        "  dns.bind\n  dns.cache\n  dns.errors\n  dns.forward\n  dns.health\n"
        "  dns.log\n  dns.loop\n  dns.prometheus\n  dns.reload\n");
    return 0;
  }
  if (!opt.probe_ready.empty()) return nld::cmd::probeReady(opt.probe_ready);
  nld::log::init(opt.quiet);
  nld::log::info("Starting node-cache image: nodelocaldns-{}", NLD_VERSION);
  try {
    nld::daemon::Env env;
    env.identity = nld::cmd::processIdentity();
    env.version = NLD_VERSION;
    env.revision = NLD_REVISION;
    nld::daemon::Daemon daemon(std::move(opt), std::move(env));
    return daemon.run();
  } catch (const std::exception& e) {
    nld::log::error("fatal: {}", e.what());
    return 1;
  }
}
