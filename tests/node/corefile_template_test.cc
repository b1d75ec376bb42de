#include "node/corefile_template.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "node/sha256.h"
#include "support/temp_dir.h"

namespace nld::node {
namespace {

namespace fs = std::filesystem;

// The base Corefile of the upstream manifest (cluster domain already substituted by the deployer).
constexpr const char* kBase =
    "cluster.local:53 {\n"
    "    errors\n"
    "    cache {\n"
    "            success 9984 30\n"
    "            denial 9984 5\n"
    "    }\n"
    "    reload\n"
    "    loop\n"
    "    bind __PILLAR__LOCAL__DNS__ __PILLAR__DNS__SERVER__\n"
    "    forward . __PILLAR__CLUSTER__DNS__ {\n"
    "            force_tcp\n"
    "    }\n"
    "    prometheus :9253\n"
    "    health __PILLAR__LOCAL__DNS__:8080\n"
    "    }\n"
    ".:53 {\n"
    "    errors\n"
    "    cache 30\n"
    "    reload\n"
    "    loop\n"
    "    bind __PILLAR__LOCAL__DNS__ __PILLAR__DNS__SERVER__\n"
    "    forward . __PILLAR__UPSTREAM__SERVERS__\n"
    "    prometheus :9253\n"
    "    }\n";

RenderInput baseInput() {
  RenderInput in;
  in.base = kBase;
  in.local_ips = "169.254.20.10 10.96.0.10";
  in.upstream_ip = "10.96.0.11";
  in.upstream_env_name = "KUBE_DNS_UPSTREAM_SERVICE_HOST";
  return in;
}

TEST(Template, EnvName) {
  EXPECT_EQ(upstreamServiceEnvName("kube-dns-upstream"), "KUBE_DNS_UPSTREAM_SERVICE_HOST");
  EXPECT_EQ(upstreamServiceEnvName("kube-dns"), "KUBE_DNS_SERVICE_HOST");
}

TEST(Template, UpstreamIpFromEnv) {
  std::map<std::string, std::string> env{{"KUBE_DNS_UPSTREAM_SERVICE_HOST", "10.96.0.11"},
                                         {"V6_SERVICE_HOST", "FD00:0::A"},
                                         {"MAPPED_SERVICE_HOST", "::ffff:10.1.2.3"},
                                         {"BAD_SERVICE_HOST", "kube-dns"}};
  auto get = [&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  EXPECT_EQ(upstreamServiceIp("kube-dns-upstream", get), "10.96.0.11");
  EXPECT_EQ(upstreamServiceIp("v6", get), "fd00::a");
  EXPECT_EQ(upstreamServiceIp("mapped", get), "10.1.2.3");
  EXPECT_EQ(upstreamServiceIp("bad", get), std::nullopt);
  EXPECT_EQ(upstreamServiceIp("absent", get), std::nullopt);
  ::setenv("NLD_TEST_SVC_SERVICE_HOST", "192.0.2.1", 1);
  EXPECT_EQ(upstreamServiceIp("nld-test-svc"), "192.0.2.1");
  ::unsetenv("NLD_TEST_SVC_SERVICE_HOST");
}

TEST(Template, EveryPlaceholderDefaultUpstream) {
  RenderOutput out = renderCorefile(baseInput()).value();
  EXPECT_TRUE(out.warnings.empty());
  EXPECT_EQ(out.text.find("__PILLAR__"), std::string::npos);
  EXPECT_NE(out.text.find("    bind 169.254.20.10 10.96.0.10 \n"), std::string::npos);
  EXPECT_NE(out.text.find("    forward . 10.96.0.11 {\n            force_tcp\n    }\n"),
            std::string::npos);
  // Upstream pastes the whole list ("health 169.254.20.10 10.96.0.10:8080", which `health`
  // refuses); in host:port position we put the first local IP.
  EXPECT_NE(out.text.find("    health 169.254.20.10:8080\n"), std::string::npos) << out.text;
  EXPECT_NE(out.text.find("    forward . /etc/resolv.conf\n"), std::string::npos);
}

TEST(Template, DualStackLocalIps) {
  // -localip 169.254.20.10,10.96.0.10,fd00::10,fd00:96::a: `bind` gets every address, the
  // host:port uses (health, a prometheus address) the first one.
  RenderInput in = baseInput();
  in.base = replaceAll(kBase, "prometheus :9253", "prometheus __PILLAR__LOCAL__DNS__:9253");
  in.local_ips = "169.254.20.10 10.96.0.10 fd00::10 fd00:96::a";
  std::string text = renderCorefile(in).value().text;
  EXPECT_NE(text.find("    bind 169.254.20.10 10.96.0.10 fd00::10 fd00:96::a \n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("    health 169.254.20.10:8080\n"), std::string::npos) << text;
  EXPECT_NE(text.find("    prometheus 169.254.20.10:9253\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("__PILLAR__"), std::string::npos) << text;

  // IPv6 first: bracketed, whether the template has the brackets or not.
  in.local_ips = "fd00::10 169.254.20.10";
  text = renderCorefile(in).value().text;
  EXPECT_NE(text.find("    health [fd00::10]:8080\n"), std::string::npos) << text;
  EXPECT_NE(text.find("    bind fd00::10 169.254.20.10 \n"), std::string::npos) << text;
  in.base = replaceAll(kBase, "health __PILLAR__LOCAL__DNS__:8080",
                       "health [__PILLAR__LOCAL__DNS__]:8080");
  text = renderCorefile(in).value().text;
  EXPECT_NE(text.find("    health [fd00::10]:8080\n"), std::string::npos) << text;
  // ... and an IPv4 first address loses brackets written for IPv6.
  in.local_ips = "169.254.20.10 fd00::10";
  text = renderCorefile(in).value().text;
  EXPECT_NE(text.find("    health 169.254.20.10:8080\n"), std::string::npos) << text;

  // Stub-domain blocks bind every address too.
  in.kube_dns.stub_domains = {{"acme.local", {"1.2.3.4"}}};
  text = renderCorefile(in).value().text;
  EXPECT_NE(text.find("acme.local:53 {\n    errors\n    cache 30\n"
                      "    bind 169.254.20.10 fd00::10\n"),
            std::string::npos)
      << text;
}

TEST(Template, MissingEnvVarIsAClearError) {
  RenderInput in = baseInput();
  in.upstream_ip.reset();
  const auto failed = renderCorefile(in);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.error().message().find("KUBE_DNS_UPSTREAM_SERVICE_HOST"), std::string::npos);
  // Without the placeholder (IPVS / Kube-OVN mode, deployer substituted it) no IP is needed.
  in.base = replaceAll(kBase, "__PILLAR__CLUSTER__DNS__", "10.96.0.10");
  RenderOutput out = renderCorefile(in).value();
  EXPECT_EQ(out.text.find("<nil>"), std::string::npos);
  EXPECT_NE(out.text.find("forward . 10.96.0.10 {"), std::string::npos);
}

TEST(Template, UpstreamNameserversWithoutForceTcpBlockWarns) {
  RenderInput in = baseInput();
  in.kube_dns.upstream_nameservers = {"1.1.1.1", "8.8.8.8:53"};
  RenderOutput out = renderCorefile(in).value();
  ASSERT_EQ(out.warnings.size(), 1u);
  EXPECT_EQ(out.warnings[0],
            "Did not find TCP upstream block to replace, assuming upstreams already use UDP.");
  EXPECT_NE(out.text.find("    forward . 1.1.1.1 8.8.8.8:53\n"), std::string::npos);
  EXPECT_EQ(out.text.find("/etc/resolv.conf"), std::string::npos);
}

TEST(Template, UpstreamNameserversReplaceForceTcpBlockByteExact) {
  RenderInput in = baseInput();
  in.base = replaceAll(kBase, "    forward . __PILLAR__UPSTREAM__SERVERS__\n",
                       "    forward . __PILLAR__UPSTREAM__SERVERS__ {\n            force_tcp\n"
                       "    }\n");
  in.kube_dns.upstream_nameservers = {"1.1.1.1"};
  RenderOutput out = renderCorefile(in).value();
  EXPECT_TRUE(out.warnings.empty());
  EXPECT_NE(out.text.find("    loop\n    bind 169.254.20.10 10.96.0.10 \n    forward . 1.1.1.1\n"
                          "    prometheus :9253\n"),
            std::string::npos);
  // The cluster block keeps its force_tcp.
  EXPECT_NE(out.text.find("    forward . 10.96.0.11 {\n            force_tcp\n"),
            std::string::npos);
  // Without custom upstreams the same template keeps force_tcp towards /etc/resolv.conf.
  in.kube_dns.upstream_nameservers.clear();
  out = renderCorefile(in).value();
  EXPECT_NE(out.text.find("forward . /etc/resolv.conf {\n            force_tcp\n    }\n"),
            std::string::npos);
  // A differently indented block is not the byte-exact block: plain replacement plus warning.
  in.base = replaceAll(kBase, "    forward . __PILLAR__UPSTREAM__SERVERS__\n",
                       "    forward . __PILLAR__UPSTREAM__SERVERS__ {\n        force_tcp\n    }\n");
  in.kube_dns.upstream_nameservers = {"1.1.1.1"};
  out = renderCorefile(in).value();
  EXPECT_EQ(out.warnings.size(), 1u);
  EXPECT_NE(out.text.find("forward . 1.1.1.1 {\n        force_tcp\n"), std::string::npos);
}

TEST(Template, StubDomainsSortedBlocks) {
  RenderInput in = baseInput();
  in.local_port = 5353;
  in.kube_dns.stub_domains = {{"zeta.local", {"10.0.0.2"}},
                              {"acme.local", {"1.2.3.4", "5.6.7.8:5300"}}};
  RenderOutput out = renderCorefile(in).value();
  const std::string expected_tail =
      "acme.local:5353 {\n    errors\n    cache 30\n    bind 169.254.20.10 10.96.0.10\n"
      "    forward . 1.2.3.4 5.6.7.8:5300\n}\n"
      "zeta.local:5353 {\n    errors\n    cache 30\n    bind 169.254.20.10 10.96.0.10\n"
      "    forward . 10.0.0.2\n}\n";
  ASSERT_GE(out.text.size(), expected_tail.size());
  EXPECT_EQ(out.text.substr(out.text.size() - expected_tail.size()), expected_tail);
  EXPECT_EQ(out.text.substr(0, out.text.size() - expected_tail.size()),
            renderCorefile(baseInput()).value().text);
}

TEST(Template, ParseKubeDnsConfig) {
  KubeDnsConfig c = parseKubeDnsConfig(R"({"acme.local": ["1.2.3.4", "[fd00::1]:53"]})",
                                       R"(["8.8.8.8", "fd00::2", "1.1.1.1:5353"])")
                        .value();
  EXPECT_EQ(c.stub_domains.at("acme.local").size(), 2u);
  EXPECT_EQ(c.upstream_nameservers.size(), 3u);
  auto err = [](const char* stub, const char* up) -> std::string {
    auto parsed = parseKubeDnsConfig(stub, up);
    return parsed ? std::string("<no error>") : parsed.error().message();
  };
  EXPECT_NE(err("{", "").find("invalid stubDomains: bad JSON"), std::string::npos);
  EXPECT_EQ(err("[]", ""), "invalid stubDomains: not a JSON object");
  EXPECT_EQ(err(R"({"Bad_Domain": ["1.2.3.4"]})", ""),
            "invalid stubDomains: domain \"Bad_Domain\" is not a valid DNS-1123 subdomain");
  EXPECT_EQ(err(R"({"a.local": []})", ""),
            "invalid stubDomains: \"a.local\" must map to a non-empty array of nameservers");
  EXPECT_EQ(err(R"({"a.local": ["ns.example.com"]})", ""),
            "invalid stubDomains: nameserver \"ns.example.com\" for \"a.local\" is not an IP or "
            "IP:port");
  EXPECT_EQ(err("", R"(["1.1.1.1","2.2.2.2","3.3.3.3","4.4.4.4"])"),
            "invalid upstreamNameservers: 4 servers given, at most 3 are allowed");
  EXPECT_EQ(err("", R"(["1.1.1.1:0"])"),
            "invalid upstreamNameservers: \"1.1.1.1:0\" is not an IP or IP:port");
  EXPECT_EQ(err("", R"({"a":1})"), "invalid upstreamNameservers: not a JSON array");
  EXPECT_EQ(err("", "[1]"), "invalid upstreamNameservers: 1 is not an IP or IP:port");
}

TEST(Template, NameserverAndDomainValidation) {
  EXPECT_TRUE(isValidNameserver("1.2.3.4"));
  EXPECT_TRUE(isValidNameserver("1.2.3.4:65535"));
  EXPECT_TRUE(isValidNameserver("fd00::1"));
  EXPECT_TRUE(isValidNameserver("[fd00::1]:53"));
  EXPECT_FALSE(isValidNameserver("[fd00::1]"));
  EXPECT_FALSE(isValidNameserver("1.2.3.4:65536"));
  EXPECT_FALSE(isValidNameserver("tls://1.2.3.4"));
  EXPECT_FALSE(isValidNameserver(""));
  EXPECT_TRUE(isDns1123Subdomain("a.b-c.local"));
  EXPECT_FALSE(isDns1123Subdomain("-a.local"));
  EXPECT_FALSE(isDns1123Subdomain("a..local"));
  EXPECT_FALSE(isDns1123Subdomain("A.local"));
}

void writeFile(const fs::path& p, const std::string& s) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << s;
}

TEST(KubeDnsDir, LoadsLikeKubeletMount) {
  const test::TempDir tmp("nld-node-test-");
  const fs::path dir = tmp.path();
  EXPECT_EQ(loadKubeDnsConfigDir((dir / "missing").string()).value().version, "");
  EXPECT_EQ(loadKubeDnsConfigDir(dir.string()).value().version, "");
  // kubelet layout: ..data → ..2026_xx; key files are symlinks into ..data.
  fs::create_directory(dir / "..2026_11_26");
  writeFile(dir / "..2026_11_26" / "upstreamNameservers", R"(["1.1.1.1"])");
  writeFile(dir / "..2026_11_26" / "stubDomains", R"({"acme.local":["1.2.3.4"]})");
  fs::create_directory_symlink("..2026_11_26", dir / "..data");
  fs::create_symlink("..data/upstreamNameservers", dir / "upstreamNameservers");
  fs::create_symlink("..data/stubDomains", dir / "stubDomains");
  writeFile(dir / ".hidden", "not json");
  KubeDnsConfig c = loadKubeDnsConfigDir(dir.string()).value();
  EXPECT_EQ(c.upstream_nameservers, std::vector<std::string>{"1.1.1.1"});
  EXPECT_EQ(c.stub_domains.size(), 1u);
  Sha256 h;
  const std::string nul(1, '\0');
  h.update("stubDomains" + nul + R"({"acme.local":["1.2.3.4"]})" + nul + "upstreamNameservers" +
           nul + R"(["1.1.1.1"])" + nul);
  EXPECT_EQ(c.version, Sha256::toHex(h.finish()));
  writeFile(dir / "federations", "{bad");
  auto bad = loadKubeDnsConfigDir(dir.string());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message().rfind("invalid federations: bad JSON: ", 0), 0u)
      << bad.error().message();
  writeFile(dir / "federations", "[]");
  bad = loadKubeDnsConfigDir(dir.string());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message(), "invalid federations: not a JSON object");
  writeFile(dir / "federations", "{}");
  writeFile(dir / "other", "\xff\xfe");
  bad = loadKubeDnsConfigDir(dir.string());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message(), "kube-dns config file other is not valid UTF-8");
}

TEST(Template, KubeOvnOverlayCorefileRendersWithoutEnv) {
  std::ifstream in(std::string(NLD_TEST_SOURCE_DIR) + "/deploy/kube-ovn/Corefile");
  ASSERT_TRUE(in) << "deploy/kube-ovn/Corefile missing";
  std::ostringstream ss;
  ss << in.rdbuf();
  RenderInput input;
  input.base = ss.str();
  input.local_ips = "169.254.20.10";
  input.upstream_env_name = "KUBE_DNS_UPSTREAM_SERVICE_HOST";  // unset: not needed in this mode
  RenderOutput out = renderCorefile(input).value();
  EXPECT_EQ(out.text.find("__PILLAR__"), std::string::npos);
  EXPECT_NE(out.text.find("    forward . /etc/resolv.conf\n"), std::string::npos);
  input.kube_dns.upstream_nameservers = {"1.1.1.1"};
  out = renderCorefile(input).value();
  EXPECT_NE(out.text.find("    forward . 1.1.1.1\n"), std::string::npos);
  EXPECT_EQ(out.warnings.size(), 1u);  // the manifest has no force_tcp on the upstream line
}

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(Sha256::hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256::hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256::hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(Sha256::hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

}  // namespace
}  // namespace nld::node
