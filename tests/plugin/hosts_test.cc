// The hosts-file parser and the plugin's verdicts (CoreDNS 1.10 plugin/hosts semantics). The
// answers themselves are compared with the reference binary in tests/integration/test_hosts.py.
#include "plugin/hosts.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "config/corefile.h"
#include "support/temp_dir.h"

namespace nld::plugin {
namespace {

dns::Name name(const char* s) { return *dns::Name::fromString(s); }
std::string v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return std::string({char(a), char(b), char(c), char(d)});
}

TEST(HostsParse, FieldsCommentsAndFamilies) {
  const HostsMap m = parseHostsText(
      "# comment\n"
      "10.0.0.1 A.Example.org b.example.org # trailing\r\n"
      "fd00::1\ta.example.org\n"
      "::ffff:10.0.0.7 mapped.example.org\n"
      "10.0.0.2%eth0 zoned.example.org\n"
      "10.0.0.3 outside.other.net\n"
      "not-an-ip x.example.org\n"
      "010.0.0.4 leading-zero.example.org\n"
      "10.0.0.5\n"
      "10.0.0.6 a.example.org",  // no final newline
      {name("example.org.")}, true);
  ASSERT_EQ(m.name4.count("a.example.org."), 1u);
  EXPECT_EQ(m.name4.at("a.example.org."),
            (std::vector<std::string>{v4(10, 0, 0, 1), v4(10, 0, 0, 6)}));
  EXPECT_EQ(m.name6.at("a.example.org.").size(), 1u);
  EXPECT_EQ(m.name6.at("a.example.org.")[0].size(), 16u);
  EXPECT_EQ(m.name4.at("mapped.example.org."), (std::vector<std::string>{v4(10, 0, 0, 7)}));
  EXPECT_EQ(m.name4.at("zoned.example.org."), (std::vector<std::string>{v4(10, 0, 0, 2)}));
  EXPECT_EQ(m.name4.count("outside.other.net."), 0u);  // outside the zones
  EXPECT_EQ(m.name4.count("x.example.org."), 0u);
  EXPECT_EQ(m.name4.count("leading-zero.example.org."), 0u);  // Go rejects 010.x
  EXPECT_EQ(m.addr.at(v4(10, 0, 0, 1)),
            (std::vector<std::string>{"a.example.org.", "b.example.org."}));
  EXPECT_EQ(parseHostsText("10.0.0.1 a.example.org\n", {name(".")}, false).addr.size(), 0u);
}

TEST(HostsParse, StopsAtAnOverlongLine) {
  std::string text =
      "10.0.0.1 a.example.org\n" + std::string(70000, 'x') + "\n10.0.0.2 b.example.org\n";
  const HostsMap m = parseHostsText(text, {name(".")}, true);
  EXPECT_EQ(m.name4.count("a.example.org."), 1u);
  EXPECT_EQ(m.name4.count("b.example.org."), 0u);  // bufio.Scanner gives up there
}

TEST(HostsParse, ReverseNames) {
  EXPECT_EQ(addressFromReverse(name("1.0.0.10.IN-ADDR.arpa.")), v4(10, 0, 0, 1));
  EXPECT_EQ(addressFromReverse(name("0.0.10.in-addr.arpa.")), "");
  EXPECT_EQ(addressFromReverse(name("example.org.")), "");
  const std::string v6 = addressFromReverse(
      name("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa."));
  ASSERT_EQ(v6.size(), 16u);
  EXPECT_EQ(uint8_t(v6[0]), 0xfd);
  EXPECT_EQ(uint8_t(v6[15]), 0x01);
  EXPECT_EQ(addressFromReverse(
                name("x.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.")),
            "");
}

class HostsPluginTest : public ::testing::Test {
 protected:
  test::TempDir dir_;
  std::string path_ = dir_.path() + "/hosts";
  std::vector<uint8_t> out_ = std::vector<uint8_t>(65535);
  net::Clock::time_point now_{};  // the calling loop's time handed to lookup()

  void write(const std::string& text) {
    std::ofstream f(path_, std::ios::trunc);
    f << text;
  }
  config::HostsConfig cfg() {
    config::HostsConfig c;
    c.file = path_;
    c.zones = {"example.org."};
    c.reload = std::chrono::seconds(0);
    return c;
  }
  HostsPlugin::Verdict ask(HostsPlugin& p, const char* qname, uint16_t qtype,
                           size_t* ancount = nullptr) {
    std::vector<uint8_t> pkt(512);
    pkt.resize(dns::buildQuery(0x1234, name(qname), qtype, dns::cls::IN, dns::flag::RD, false, 0,
                               false, dns::MutableBytes(pkt)));
    dns::Query q;
    EXPECT_EQ(dns::parseQuery(dns::ByteView(pkt), q), dns::QueryStatus::kOk);
    size_t len = 0;
    const auto v = p.lookup(dns::ByteView(pkt), q, dns::MutableBytes(out_), len, now_);
    if (v == HostsPlugin::Verdict::kAnswer) {
      dns::Response r;
      EXPECT_EQ(dns::parseResponse(dns::ByteView(out_.data(), len), r), dns::Error::kNone);
      EXPECT_TRUE(r.header.aa());
      if (ancount != nullptr) *ancount = r.header.ancount;
    }
    return v;
  }
};

TEST_F(HostsPluginTest, Verdicts) {
  write("10.0.0.1 a.example.org\n");
  auto c = cfg();
  c.inline_lines = {"10.0.0.9 a.example.org inline.example.org"};
  HostsPlugin p(c, "Corefile:2");
  size_t n = 0;
  EXPECT_EQ(ask(p, "A.example.org.", dns::type::A, &n), HostsPlugin::Verdict::kAnswer);
  EXPECT_EQ(n, 2u);  // file, then inline
  EXPECT_EQ(ask(p, "a.example.org.", dns::type::MX, &n), HostsPlugin::Verdict::kAnswer);
  EXPECT_EQ(n, 0u);  // NODATA
  EXPECT_EQ(ask(p, "b.example.org.", dns::type::A), HostsPlugin::Verdict::kServFail);
  EXPECT_EQ(ask(p, "a.other.net.", dns::type::A), HostsPlugin::Verdict::kNext);
  EXPECT_EQ(ask(p, "9.0.0.10.in-addr.arpa.", dns::type::PTR, &n), HostsPlugin::Verdict::kAnswer);
  EXPECT_EQ(n, 2u);
  EXPECT_EQ(ask(p, "7.0.0.10.in-addr.arpa.", dns::type::PTR), HostsPlugin::Verdict::kNext);
  c.fallthrough = true;
  c.fallthrough_zones = {"sub.example.org."};
  HostsPlugin f(c, "Corefile:2");
  EXPECT_EQ(ask(f, "x.sub.example.org.", dns::type::A), HostsPlugin::Verdict::kNext);
  EXPECT_EQ(ask(f, "b.example.org.", dns::type::A), HostsPlugin::Verdict::kServFail);
}

TEST_F(HostsPluginTest, ReloadOnChangeAndMissingFile) {
  write("10.0.0.1 a.example.org\n");
  HostsPlugin p(cfg(), "Corefile:2");
  EXPECT_EQ(p.entries(), 1u);
  write("10.0.0.1 a.example.org\n10.0.0.2 b.example.org\n");
  p.reloadIfChanged();
  EXPECT_EQ(p.entries(), 2u);
  EXPECT_EQ(ask(p, "b.example.org.", dns::type::A), HostsPlugin::Verdict::kAnswer);
  std::remove(path_.c_str());
  p.reloadIfChanged();
  EXPECT_EQ(p.entries(), 2u);  // kept, as CoreDNS
  auto c = cfg();
  c.file = dir_.path() + "/absent";
  HostsPlugin empty(c, "Corefile:2");  // a warning, not an error
  EXPECT_EQ(empty.entries(), 0u);
}

TEST_F(HostsPluginTest, TheReloadPeriodRunsOnTheWorkersLoopTime) {
  write("10.0.0.1 a.example.org\n");
  auto c = cfg();
  c.reload = std::chrono::seconds(5);
  HostsPlugin p(c, "Corefile:2");
  now_ = net::Clock::time_point(std::chrono::hours(1000));  // a fake loop clock
  EXPECT_EQ(ask(p, "a.example.org.", dns::type::A), HostsPlugin::Verdict::kAnswer);  // arms
  write("10.0.0.2 b.example.org\n# another size\n");
  now_ += std::chrono::milliseconds(4999);
  EXPECT_EQ(ask(p, "b.example.org.", dns::type::A), HostsPlugin::Verdict::kServFail);  // not yet
  now_ += std::chrono::milliseconds(1);
  EXPECT_EQ(ask(p, "b.example.org.", dns::type::A), HostsPlugin::Verdict::kAnswer);  // re-read
  EXPECT_EQ(ask(p, "a.example.org.", dns::type::A), HostsPlugin::Verdict::kServFail);
}

}  // namespace
}  // namespace nld::plugin
