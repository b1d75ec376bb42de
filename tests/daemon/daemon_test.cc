// Daemon: node-cache's process logic without a process. A real Server serves on loopback ports;
// the host side is a journal of fakes (node/backends.h); the reload poll and the snapshot period
// run on a fake clock; signals are onSignal() calls. Nothing here needs root or sleeps on a
// schedule (the only waits are eventually() for the server's worker threads).
#include "daemon/daemon.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "dns/message.h"
#include "net/fd.h"
#include "node/options.h"
#include "support/capture_stdout.h"
#include "support/eventually.h"
#include "support/fake_time.h"
#include "support/temp_dir.h"
#include "support/udp_peer.h"

namespace nld::daemon {
namespace {

using namespace std::chrono_literals;

/// Every call of the fake host side, in order, with what the test wants to know at that moment.
struct Journal {
  std::vector<std::string> calls;
  std::function<std::string()> state;  // appended to teardown entries
};

class FakeLinks final : public node::InterfaceManager {
 public:
  explicit FakeLinks(Journal* j) : j_(j) {}
  bool ensureInterface(const std::string& name, const std::vector<node::LocalIp>&) override {
    j_->calls.push_back("link.ensure " + name);
    return true;
  }
  bool teardown(const std::string& name, const std::vector<node::LocalIp>&) override {
    j_->calls.push_back("link.teardown " + name + (j_->state ? " " + j_->state() : ""));
    return true;
  }

 private:
  Journal* j_;
};

class FakeRules final : public node::RuleBackend {
 public:
  explicit FakeRules(Journal* j) : j_(j) {}
  int ensure() override {
    j_->calls.push_back("rules.ensure");
    return 0;
  }
  bool teardown() override {
    j_->calls.push_back("rules.teardown" + (j_->state ? " " + j_->state() : ""));
    return true;
  }

 private:
  Journal* j_;
};

/// `id.server. CH TXT` to 127.0.0.1:port over UDP: the identity that answered, or "" if none
/// answered within a second.
std::string askIdentity(uint16_t port) {
  test::UdpPeer client;
  std::vector<uint8_t> q(512);
  q.resize(dns::buildQuery(0x1234, *dns::Name::fromString("id.server."), dns::type::TXT,
                           dns::cls::CH, dns::flag::RD, false, 0, false, dns::MutableBytes(q)));
  client.sendTo(port, q);
  auto r = client.receive(1000);
  if (!r) return "";
  dns::Response resp;
  if (dns::parseResponse(dns::ByteView(*r), resp) != dns::Error::kNone) return "?";
  for (const auto& rr : resp.rrs) {
    if (rr.section != 0 || rr.type != dns::type::TXT) continue;
    const uint8_t* base = r->data() + rr.ttl_offset;
    return std::string(reinterpret_cast<const char*>(base + 7), base[6]);
  }
  return "?";
}

class DaemonTest : public ::testing::Test {
 protected:
  DaemonTest()
      : dns_port_(test::freePort()),
        corefile_(dir_.file("Corefile")),
        pidfile_(dir_.file("node-cache.pid")) {}

  ~DaemonTest() override {
    daemon_.reset();  // before the journal the fakes write to
  }

  /// A Corefile serving `zone` on 127.0.0.1:dns_port_ with `extra` plugin lines.
  std::string corefileText(const std::string& zone, const std::string& extra = "") const {
    return zone + ":" + std::to_string(dns_port_) +
           " {\n  bind 127.0.0.1\n  cache 30\n  forward . 127.0.0.1:9\n" + extra + "}\n";
  }
  void writeCorefile(const std::string& text) const {
    std::ofstream(corefile_, std::ios::trunc) << text;
  }

  /// The daemon for node-cache's flags `extra` (+ the test's paths and ports).
  void make(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"node-cache",
                                     "-localip",
                                     "127.0.0.1",
                                     "-conf",
                                     corefile_,
                                     "-basecorefile",
                                     dir_.file("absent.base"),
                                     "-pidfile",
                                     pidfile_,
                                     "-statedir=",
                                     "-workers",
                                     "1",
                                     "-metrics-listen-address",
                                     "127.0.0.1:" + std::to_string(test::freePort()),
                                     "-setupinterface=false",
                                     "-setupiptables=false"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());
    node::Options opt = node::parseOptions(int(argv.size()), argv.data());
    Env env;
    env.registry = &registry_;
    env.time = &time_;
    env.identity = "daemon-test";
    env.raise_signal = [this](int signo) {
      std::lock_guard<std::mutex> lock(raised_mu_);
      raised_.push_back(signo);
    };
    env.host_backends = [this](const node::HostSetupSettings&,
                               const node::HostSetup::ErrorCallback&) {
      node::HostBackends b;
      b.links = std::make_unique<FakeLinks>(&journal_);
      b.rules.push_back(std::make_unique<FakeRules>(&journal_));
      return b;
    };
    daemon_ = std::make_unique<Daemon>(std::move(opt), std::move(env));
  }

  bool serving() { return askIdentity(dns_port_) == "daemon-test"; }

  test::TempDir dir_{"nld-daemon-test-"};
  uint16_t dns_port_;
  std::string corefile_;
  std::string pidfile_;
  test::FakeTime time_;
  observability::Registry registry_;
  Journal journal_;
  std::mutex raised_mu_;
  std::vector<int> raised_;  // Env::raise_signal calls (the config sync thread may make them)
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(DaemonTest, StartsServingWritesThePidfileAndHandlesNoSignalItDoesNotKnow) {
  writeCorefile(corefileText("a.test"));
  make();
  ASSERT_EQ(daemon_->start(), Daemon::Started::kServing);
  EXPECT_TRUE(serving());
  std::ifstream pid(pidfile_);
  long n = 0;
  EXPECT_TRUE(pid >> n);
  EXPECT_EQ(n, long(::getpid()));
  // SIGHUP and SIGUSR2 are taken and ignored: no exit, no reload.
  const auto plan = daemon_->plan();
  EXPECT_FALSE(daemon_->onSignal(SIGHUP).has_value());
  EXPECT_FALSE(daemon_->onSignal(SIGUSR2).has_value());
  EXPECT_EQ(daemon_->plan(), plan);
  EXPECT_TRUE(journal_.calls.empty()) << "no -setupinterface/-setupiptables: host untouched";
}

TEST_F(DaemonTest, BrokenCorefileAtStartFailsAfterUndoingTheInterface) {
  writeCorefile("a.test:" + std::to_string(dns_port_) + " {\n  forward\n}\n");
  make({"-setupinterface=true"});
  test::CaptureStdout out;
  EXPECT_EQ(daemon_->start(), Daemon::Started::kFailed);
  const std::string log = out.text();
  EXPECT_NE(log.find("[ERROR] " + corefile_ + ":2"), std::string::npos) << log;
  EXPECT_EQ(journal_.calls,
            (std::vector<std::string>{"link.ensure nodelocaldns", "link.teardown nodelocaldns"}))
      << "no rules were set up yet (they follow the listeners)";
  EXPECT_FALSE(std::filesystem::exists(pidfile_));
}

TEST_F(DaemonTest, ServesTheRenderedBaseCorefileAndAsksForAReloadPerRender) {
  const std::string base = dir_.write(
      "base/Corefile.base", "a.test:" + std::to_string(dns_port_) +
                                " {\n  bind __PILLAR__LOCAL__DNS__\n  forward . 127.0.0.1:9\n}\n");
  make({"-basecorefile", base, "-kubednscm", dir_.file("no-kube-dns"), "-reloadwithsignal"});
  ASSERT_EQ(daemon_->start(), Daemon::Started::kServing);
  std::string text;
  if (std::FILE* f = std::fopen(corefile_.c_str(), "rb")) {
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof(buf), f)) > 0;) text.append(buf, n);
    std::fclose(f);
  }
  EXPECT_NE(text.find("bind 127.0.0.1\n"), std::string::npos) << text;
  EXPECT_TRUE(serving());
  std::lock_guard<std::mutex> lock(raised_mu_);
  EXPECT_EQ(raised_, std::vector<int>{SIGUSR1}) << "-reloadwithsignal: one SIGUSR1 per render";
}

TEST_F(DaemonTest, WithoutReloadWithSignalARenderRaisesNothing) {
  const std::string base = dir_.write(
      "base/Corefile.base", "a.test:" + std::to_string(dns_port_) +
                                " {\n  bind __PILLAR__LOCAL__DNS__\n  forward . 127.0.0.1:9\n}\n");
  make({"-basecorefile", base, "-kubednscm", dir_.file("no-kube-dns")});
  ASSERT_EQ(daemon_->start(), Daemon::Started::kServing);
  EXPECT_TRUE(serving());
  std::lock_guard<std::mutex> lock(raised_mu_);
  EXPECT_TRUE(raised_.empty());
}

TEST_F(DaemonTest, ReloadPluginAppliesAChangedCorefileOnItsPeriod) {
  writeCorefile(corefileText("a.test", "  reload 2s 1s\n"));
  make();
  ASSERT_EQ(daemon_->start(), Daemon::Started::kServing);
  const auto before = daemon_->plan();
  writeCorefile(corefileText("b.test", "  reload 2s 1s\n"));
  // interval 2 s, jitter 1 s: the poll comes between 1.5 s and 2.5 s.
  time_.advance(1499ms);
  EXPECT_FALSE(daemon_->tick().has_value());
  EXPECT_EQ(daemon_->plan(), before) << "not yet due";
  test::CaptureStdout out;
  time_.advance(1001ms);
  EXPECT_FALSE(daemon_->tick().has_value());
  const std::string log = out.text();
  ASSERT_NE(daemon_->plan(), before);
  EXPECT_EQ(daemon_->plan()->corefile.blocks.at(0).keys.at(0).zone, "b.test.");
  EXPECT_NE(log.find("[INFO] Reloading\n"), std::string::npos) << log;
  EXPECT_NE(log.find("[INFO] Reloading complete (reload plugin: Corefile changed)"),
            std::string::npos)
      << log;
  EXPECT_TRUE(serving());
}

TEST_F(DaemonTest, UnchangedCorefileIsNotReloaded) {
  writeCorefile(corefileText("a.test", "  reload 2s 1s\n"));
  make();
  ASSERT_EQ(daemon_->start(), Daemon::Started::kServing);
  const auto before = daemon_->plan();
  test::CaptureStdout out;
  time_.advance(3s);
  daemon_->tick();
  // Comments and whitespace only: the same fingerprint, no reload either.
  writeCorefile("# a comment\n" + corefileText("a.test", "    reload   2s 1s\n"));
  time_.advance(3s);
  daemon_->tick();
  EXPECT_FALSE(daemon_->onSignal(SIGUSR1).has_value());
  EXPECT_EQ(daemon_->plan(), before);
  EXPECT_EQ(out.text().find("Reloading"), std::string::npos);
}

TEST_F(DaemonTest, BrokenCorefileIsRefusedWithFileAndLineAndTheOldPlanKeepsServing) {
  writeCorefile(corefileText("a.test", "  reload 2s 1s\n"));
  make();
  ASSERT_EQ(daemon_->start(), Daemon::Started::kServing);
  const auto before = daemon_->plan();
  writeCorefile("a.test:" + std::to_string(dns_port_) + " {\n  reload 2s 1s\n  forward\n}\n");
  test::CaptureStdout out;
  time_.advance(3s);
  EXPECT_FALSE(daemon_->tick().has_value());
  // The same broken content is tried once: the next polls neither log nor count it again.
  time_.advance(3s);
  daemon_->tick();
  EXPECT_FALSE(daemon_->onSignal(SIGUSR1).has_value());
  const std::string log = out.text();
  EXPECT_EQ(daemon_->plan(), before);
  const std::string failed = "[ERROR] Corefile changed but reload failed: " + corefile_ + ":3";
  const size_t at = log.find(failed);
  EXPECT_NE(at, std::string::npos) << log;
  EXPECT_EQ(log.find(failed, at + 1), std::string::npos) << "logged once per content\n" << log;
  EXPECT_NE(registry_.render().find("coredns_reload_failed_total 1\n"), std::string::npos)
      << registry_.render();
  EXPECT_TRUE(serving());
  // Fixed: the next poll loads it.
  writeCorefile(corefileText("c.test", "  reload 2s 1s\n"));
  time_.advance(3s);
  daemon_->tick();
  EXPECT_EQ(daemon_->plan()->corefile.blocks.at(0).keys.at(0).zone, "c.test.");
}

TEST_F(DaemonTest, Sigusr1ReloadsAtOnce) {
  writeCorefile(corefileText("a.test"));
  make();
  ASSERT_EQ(daemon_->start(), Daemon::Started::kServing);
  writeCorefile(corefileText("b.test"));
  time_.advance(1h);
  daemon_->tick();
  EXPECT_EQ(daemon_->plan()->corefile.blocks.at(0).keys.at(0).zone, "a.test.")
      << "without the reload plugin nothing polls";
  test::CaptureStdout out;
  EXPECT_FALSE(daemon_->onSignal(SIGUSR1).has_value());
  EXPECT_EQ(daemon_->plan()->corefile.blocks.at(0).keys.at(0).zone, "b.test.");
  EXPECT_NE(out.text().find("[INFO] Reloading complete (SIGUSR1)"), std::string::npos);
}

/// True if something accepts TCP connections on 127.0.0.1:port.
bool listening(uint16_t port) {
  const net::Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return ::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
}

TEST_F(DaemonTest, ReloadRestartsOnlyTheHttpEndpointsThatChanged) {
  auto line = [](const char* plugin, uint16_t port) {
    return std::string("  ") + plugin + " 127.0.0.1:" + std::to_string(port) + "\n";
  };
  auto server = [&](uint16_t port) {
    return daemon_->httpEndpoints()->find("127.0.0.1:" + std::to_string(port));
  };
  const std::vector<uint16_t> ports = test::freePorts(4, {dns_port_});
  const uint16_t h1 = ports[0], h2 = ports[1], m1 = ports[2], m2 = ports[3];
  writeCorefile(corefileText("a.test", line("health", h1) + line("prometheus", m1)));
  make();
  ASSERT_EQ(daemon_->start(), Daemon::Started::kServing);
  ASSERT_NE(daemon_->httpEndpoints(), nullptr);
  const auto* endpoints = daemon_->httpEndpoints();
  EXPECT_TRUE(listening(h1));
  EXPECT_TRUE(listening(m1));
  // Another zone, the same endpoints: the running set stays as it is.
  writeCorefile(corefileText("b.test", line("health", h1) + line("prometheus", m1)));
  daemon_->onSignal(SIGUSR1);
  EXPECT_EQ(daemon_->plan()->corefile.blocks.at(0).keys.at(0).zone, "b.test.");
  EXPECT_EQ(daemon_->httpEndpoints(), endpoints);
  // The health endpoint moves: only it restarts; metrics keeps its server and socket.
  observability::HttpServer* metrics = server(m1);
  ASSERT_NE(metrics, nullptr);
  const int metrics_fd = metrics->listeningFd();
  writeCorefile(corefileText("b.test", line("health", h2) + line("prometheus", m1)));
  daemon_->onSignal(SIGUSR1);
  EXPECT_NE(daemon_->httpEndpoints(), endpoints);
  EXPECT_EQ(server(m1), metrics);
  EXPECT_EQ(metrics->listeningFd(), metrics_fd);
  EXPECT_EQ(server(h1), nullptr);
  EXPECT_FALSE(listening(h1));
  EXPECT_TRUE(listening(h2));
  // A second metrics endpoint: it starts; both others go on untouched.
  observability::HttpServer* health = server(h2);
  ASSERT_NE(health, nullptr);
  const int health_fd = health->listeningFd();
  writeCorefile(corefileText("b.test", line("health", h2) + line("prometheus", m1)) +
                "c.test:" + std::to_string(dns_port_) + " {\n  bind 127.0.0.1\n" +
                line("prometheus", m2) + "}\n");
  daemon_->onSignal(SIGUSR1);
  EXPECT_EQ(daemon_->httpEndpoints()->size(), 3u);
  EXPECT_EQ(server(h2), health);
  EXPECT_EQ(health->listeningFd(), health_fd);
  EXPECT_EQ(server(m1), metrics);
  EXPECT_EQ(metrics->listeningFd(), metrics_fd);
  EXPECT_TRUE(listening(m2));
}

TEST_F(DaemonTest, SnapshotIsWrittenOnItsPeriodAndAtShutdown) {
  const std::string state = dir_.file("state");
  writeCorefile(corefileText("a.test"));
  make({"-statedir", state, "-snapshotinterval", "10s"});
  ASSERT_EQ(daemon_->start(), Daemon::Started::kServing);
  const std::string snapshot = state + "/cache.snapshot";
  EXPECT_EQ(daemon_->snapshotPath(), snapshot);
  EXPECT_EQ(std::filesystem::status(state).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_all);
  time_.advance(10s - 1ns);
  daemon_->tick();
  EXPECT_FALSE(std::filesystem::exists(snapshot)) << "not yet due";
  time_.advance(1ns);
  daemon_->tick();
  EXPECT_TRUE(std::filesystem::exists(snapshot));
  std::filesystem::remove(snapshot);
  time_.advance(9s);
  daemon_->tick();
  EXPECT_FALSE(std::filesystem::exists(snapshot)) << "the period starts again at each write";
  time_.advance(1s);
  daemon_->tick();
  EXPECT_TRUE(std::filesystem::exists(snapshot));
  std::filesystem::remove(snapshot);
  test::CaptureStdout out;
  EXPECT_EQ(daemon_->onSignal(SIGTERM), 0);
  EXPECT_TRUE(std::filesystem::exists(snapshot));
  EXPECT_NE(out.text().find("[INFO] Cache snapshot: wrote 0 entries to " + snapshot),
            std::string::npos);
}

TEST_F(DaemonTest, SigtermRemovesThePidfileThenTearsDownThenStopsServing) {
  const std::string state = dir_.file("state");
  writeCorefile(corefileText("a.test"));
  make({"-setupinterface=true", "-setupiptables=true", "-statedir", state});
  ASSERT_EQ(daemon_->start(), Daemon::Started::kServing);
  EXPECT_EQ(journal_.calls, (std::vector<std::string>{"link.ensure nodelocaldns", "rules.ensure"}))
      << "interface before the listeners, rules after the pidfile";
  ASSERT_TRUE(std::filesystem::exists(pidfile_));
  // What is true at each teardown step: the pidfile, the final snapshot, the server.
  journal_.state = [&] {
    return std::string(std::filesystem::exists(pidfile_) ? "pidfile" : "no-pidfile") +
           (std::filesystem::exists(state + "/cache.snapshot") ? " snapshot" : " no-snapshot") +
           (serving() ? " serving" : " stopped");
  };
  journal_.calls.clear();
  test::CaptureStdout out;
  EXPECT_EQ(daemon_->onSignal(SIGTERM), 0);
  const std::string log = out.text();
  EXPECT_EQ(journal_.calls, (std::vector<std::string>{
                                "rules.teardown no-pidfile no-snapshot serving",
                                "link.teardown nodelocaldns no-pidfile no-snapshot serving"}));
  EXPECT_NE(log.find("[INFO] Received SIGTERM, shutting down"), std::string::npos) << log;
  EXPECT_NE(log.find("[INFO] Tearing down"), std::string::npos) << log;
  EXPECT_FALSE(std::filesystem::exists(pidfile_));
  EXPECT_TRUE(std::filesystem::exists(state + "/cache.snapshot"));
  EXPECT_FALSE(serving());
}

TEST_F(DaemonTest, SigquitTearsDownWithoutTheFinalSnapshot) {
  const std::string state = dir_.file("state");
  writeCorefile(corefileText("a.test"));
  make({"-setupinterface=true", "-setupiptables=true", "-statedir", state});
  ASSERT_EQ(daemon_->start(), Daemon::Started::kServing);
  journal_.calls.clear();
  test::CaptureStdout out;
  EXPECT_EQ(daemon_->onSignal(SIGQUIT), 0);
  EXPECT_NE(out.text().find("[INFO] Received SIGQUIT, shutting down"), std::string::npos);
  EXPECT_EQ(journal_.calls,
            (std::vector<std::string>{"rules.teardown", "link.teardown nodelocaldns"}));
  EXPECT_FALSE(std::filesystem::exists(state + "/cache.snapshot")) << "SIGQUIT: no graceful part";
  EXPECT_FALSE(std::filesystem::exists(pidfile_));
  EXPECT_FALSE(serving());
}

TEST_F(DaemonTest, SkipTeardownLeavesTheHostSideAlone) {
  writeCorefile(corefileText("a.test"));
  make({"-setupinterface=true", "-setupiptables=true", "-skipteardown"});
  ASSERT_EQ(daemon_->start(), Daemon::Started::kServing);
  journal_.calls.clear();
  test::CaptureStdout out;
  EXPECT_EQ(daemon_->onSignal(SIGINT), 0);
  EXPECT_TRUE(journal_.calls.empty());
  EXPECT_EQ(out.text().find("Tearing down"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(pidfile_));
  EXPECT_FALSE(serving());
}

TEST_F(DaemonTest, LoopIsDetectedTornDownAndExitsOne) {
  // The block forwards to the test, and the test sends whatever comes back to the block's
  // listener: the probe goes round. The pipeline counts it on each arrival.
  test::UdpPeer upstream;
  writeCorefile("loop.test:" + std::to_string(dns_port_) +
                " {\n  bind 127.0.0.1\n  loop\n  forward . 127.0.0.1:" +
                std::to_string(upstream.port()) + "\n}\n");
  make({"-setupinterface=true", "-setupiptables=true"});
  ASSERT_EQ(daemon_->start(), Daemon::Started::kServing);
  journal_.calls.clear();
  auto probe = upstream.receive(5000);
  ASSERT_TRUE(probe.has_value()) << "the probe was forwarded";
  test::CaptureStdout out;
  upstream.sendTo(dns_port_, *probe);  // seen twice
  EXPECT_FALSE(daemon_->tick().has_value());
  upstream.sendTo(dns_port_, *probe);  // three times: a loop
  std::optional<int> code;
  EXPECT_TRUE(test::eventually([&] {
    code = daemon_->tick();
    return code.has_value();
  }));
  EXPECT_EQ(code, 1);
  const std::string log = out.text();
  const auto plan = daemon_->plan();
  const auto& ld = *plan->blocks.at(0).loop;
  const std::string where = "127.0.0.1:" + std::to_string(dns_port_);
  EXPECT_NE(log.find("[ERROR] plugin/loop: Loop (" + where + " -> " + where +
                     ") detected for zone \"loop.test.\", see "
                     "https://coredns.io/plugins/loop#troubleshooting. Query: \"HINFO " +
                     ld.probe_text + "\"\n"),
            std::string::npos)
      << log;
  EXPECT_EQ(journal_.calls,
            (std::vector<std::string>{"rules.teardown", "link.teardown nodelocaldns"}));
  EXPECT_FALSE(std::filesystem::exists(pidfile_));
}

}  // namespace
}  // namespace nld::daemon
