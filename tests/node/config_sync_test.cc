#include "node/config_sync.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/eventually.h"
#include "support/temp_dir.h"

namespace nld::node {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

void writeFile(const fs::path& p, const std::string& s) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << s;
}

std::string readFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

constexpr const char* kBase =
    ".:53 {\n    bind __PILLAR__LOCAL__DNS__\n    forward . __PILLAR__UPSTREAM__SERVERS__\n}\n";

struct Fixture {
  test::TempDir tmp{"nld-sync-test-"};
  fs::path base_dir = fs::path(tmp.path()) / "coredns";
  fs::path kube_dir = fs::path(tmp.path()) / "kube-dns";
  fs::path out = fs::path(tmp.path()) / "Corefile";
  std::vector<std::string> errors;
  std::vector<std::string> written;

  Fixture() {
    fs::create_directory(base_dir);
    fs::create_directory(kube_dir);
    writeFile(base_dir / "Corefile.base", kBase);
  }
  ConfigSyncSettings settings() const {
    ConfigSyncSettings s;
    s.base_corefile = (base_dir / "Corefile.base").string();
    s.kube_dns_dir = kube_dir.string();
    s.output_path = out.string();
    s.local_ips = "169.254.20.10";
    s.poll_interval = 50ms;
    return s;
  }
  ConfigSync make() {
    return ConfigSync(
        settings(),
        [this](const std::string&, const std::string& text) { written.push_back(text); },
        [this](std::string_view type) { errors.emplace_back(type); });
  }
};

TEST(ConfigSync, InitialRenderWritesAtomicallyWithMode0644) {
  Fixture f;
  const mode_t old_umask = ::umask(077);
  ConfigSync sync = f.make();
  EXPECT_TRUE(sync.initialSync());
  ::umask(old_umask);
  EXPECT_EQ(readFile(f.out), ".:53 {\n    bind 169.254.20.10\n    forward . /etc/resolv.conf\n}\n");
  struct stat st {};
  ASSERT_EQ(::stat(f.out.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  EXPECT_EQ(f.written.size(), 1u);
  EXPECT_TRUE(f.errors.empty());
  // No temp files left behind.
  int entries = 0;
  for (const auto& e : fs::directory_iterator(fs::path(f.tmp.path()))) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 3);  // coredns/, kube-dns/, Corefile
  // Nothing changed: no rewrite.
  EXPECT_FALSE(sync.pollOnce());
  EXPECT_EQ(sync.writes(), 1u);
}

TEST(ConfigSync, ReRendersOnConfigMapAndBaseChange) {
  Fixture f;
  ConfigSync sync = f.make();
  ASSERT_TRUE(sync.initialSync());
  writeFile(f.kube_dir / "upstreamNameservers", R"(["1.1.1.1"])");
  EXPECT_TRUE(sync.pollOnce());
  EXPECT_NE(readFile(f.out).find("forward . 1.1.1.1\n"), std::string::npos);
  writeFile(f.base_dir / "Corefile.base", std::string(kBase) + "# edited\n");
  EXPECT_TRUE(sync.pollOnce());
  EXPECT_NE(readFile(f.out).find("# edited\n"), std::string::npos);
  EXPECT_NE(readFile(f.out).find("forward . 1.1.1.1\n"), std::string::npos);
  EXPECT_EQ(sync.writes(), 3u);
  EXPECT_TRUE(f.errors.empty());
}

TEST(ConfigSync, InvalidConfigMapKeepsLastGoodAndIsRetried) {
  Fixture f;
  writeFile(f.kube_dir / "stubDomains", R"({"acme.local":["1.2.3.4"]})");
  ConfigSync sync = f.make();
  ASSERT_TRUE(sync.initialSync());
  const std::string good = readFile(f.out);
  EXPECT_NE(good.find("acme.local:53 {"), std::string::npos);
  writeFile(f.kube_dir / "stubDomains", "{not json");
  EXPECT_FALSE(sync.pollOnce());
  EXPECT_EQ(readFile(f.out), good);
  ASSERT_EQ(f.errors.size(), 1u);
  EXPECT_EQ(f.errors[0], "configmap");
  EXPECT_EQ(sync.currentKubeDns().stub_domains.size(), 1u);
  EXPECT_FALSE(sync.pollOnce());  // same bad content: not counted again
  EXPECT_EQ(f.errors.size(), 1u);
  writeFile(f.kube_dir / "stubDomains", R"({"other.local":["5.6.7.8"]})");
  EXPECT_TRUE(sync.pollOnce());  // not given up on (upstream node-cache stops watching)
  EXPECT_NE(readFile(f.out).find("other.local:53 {"), std::string::npos);
  EXPECT_EQ(readFile(f.out).find("acme.local"), std::string::npos);
}

TEST(ConfigSync, InvalidConfigMapAtStartupIsRetried) {
  Fixture f;
  writeFile(f.kube_dir / "upstreamNameservers", R"(["a","b"])");
  ConfigSync sync = f.make();
  EXPECT_TRUE(sync.initialSync());  // renders with the empty default config
  EXPECT_EQ(f.errors.size(), 1u);
  EXPECT_NE(readFile(f.out).find("/etc/resolv.conf"), std::string::npos);
  writeFile(f.kube_dir / "upstreamNameservers", R"(["9.9.9.9"])");
  EXPECT_TRUE(sync.pollOnce());
  EXPECT_NE(readFile(f.out).find("forward . 9.9.9.9\n"), std::string::npos);
}

TEST(ConfigSync, MissingUpstreamIpIsCountedAndRetried) {
  Fixture f;
  writeFile(f.base_dir / "Corefile.base",
            "cluster.local:53 {\n    forward . __PILLAR__CLUSTER__DNS__\n}\n");
  ConfigSyncSettings s = f.settings();
  s.upstream_env_name = "KUBE_DNS_UPSTREAM_SERVICE_HOST";
  ConfigSync sync(s, nullptr, [&](std::string_view t) { f.errors.emplace_back(t); });
  EXPECT_FALSE(sync.initialSync());
  EXPECT_FALSE(fs::exists(f.out));
  EXPECT_EQ(f.errors.size(), 1u);
  EXPECT_FALSE(sync.pollOnce());  // render failed before → retried, fails again
  EXPECT_EQ(f.errors.size(), 2u);
  writeFile(f.base_dir / "Corefile.base", "cluster.local:53 {\n    forward . 10.96.0.10\n}\n");
  EXPECT_TRUE(sync.pollOnce());
  EXPECT_EQ(readFile(f.out), "cluster.local:53 {\n    forward . 10.96.0.10\n}\n");
}

TEST(ConfigSync, MissingBaseFileAndUnwritableOutputAreErrors) {
  Fixture f;
  ConfigSyncSettings s = f.settings();
  s.base_corefile = (f.base_dir / "nope").string();
  std::vector<std::string> errors;
  ConfigSync sync(s, nullptr, [&](std::string_view t) { errors.emplace_back(t); });
  EXPECT_FALSE(sync.initialSync());
  EXPECT_EQ(errors.size(), 1u);
  ConfigSyncSettings s2 = f.settings();
  s2.output_path = (fs::path(f.tmp.path()) / "no-such-dir" / "Corefile").string();
  ConfigSync sync2(s2, nullptr, [&](std::string_view t) { errors.emplace_back(t); });
  EXPECT_FALSE(sync2.initialSync());
  EXPECT_EQ(errors.size(), 2u);
  ConfigSyncSettings s3 = f.settings();
  s3.output_path = "";
  ConfigSync sync3(s3, nullptr, [&](std::string_view t) { errors.emplace_back(t); });
  EXPECT_FALSE(sync3.initialSync());
  EXPECT_EQ(errors.size(), 3u);
}

TEST(ConfigSync, PollThreadPicksUpChangesAndStopsPromptly) {
  Fixture f;
  std::atomic<int> writes{0};
  ConfigSync sync(
      f.settings(), [&](const std::string&, const std::string&) { ++writes; }, nullptr);
  ASSERT_TRUE(sync.initialSync());
  sync.start();
  sync.start();  // idempotent
  writeFile(f.kube_dir / "upstreamNameservers", R"(["1.0.0.1"])");
  test::eventually([&] { return writes.load() >= 2; }, 2000ms, 10ms);
  EXPECT_EQ(writes.load(), 2);
  EXPECT_NE(readFile(f.out).find("forward . 1.0.0.1\n"), std::string::npos);
  const auto t0 = std::chrono::steady_clock::now();
  sync.stop();
  sync.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
}

TEST(ConfigSync, NoKubeDnsDir) {
  Fixture f;
  ConfigSyncSettings s = f.settings();
  s.kube_dns_dir.clear();
  ConfigSync sync(s, nullptr, nullptr);
  EXPECT_TRUE(sync.initialSync());
  EXPECT_FALSE(sync.pollOnce());
}

}  // namespace
}  // namespace nld::node
