// LoopProbes (the loop plugin's active half): what it sends, its schedule on a fake clock, when
// it stops, and the fatal line. The block's "listener" is a loopback UDP socket of the test.
#include "daemon/loop_probes.h"

#include <gtest/gtest.h>

#include <string>

#include "config/corefile.h"
#include "dns/message.h"
#include "plan/plan.h"
#include "support/fake_time.h"
#include "support/udp_peer.h"

namespace nld::daemon {
namespace {

using namespace std::chrono_literals;

class LoopProbesTest : public ::testing::Test {
 protected:
  LoopProbesTest()
      : plan_(plan::buildPlan(
            config::parseCorefile("example.test:" + std::to_string(listener_.port()) +
                                      " {\n  loop\n  bind 127.0.0.1\n  forward . 127.0.0.1:9\n}\n"
                                      "other.test:" +
                                      std::to_string(listener_.port()) +
                                      " {\n  bind 127.0.0.1\n  forward . 127.0.0.1:9\n}\n",
                                  "Corefile"),
            1, nullptr)),
        probes_(time_) {}

  plan::LoopDetector& detector() { return *plan_->blocks[0].loop; }

  /// The probe the listener received now, parsed (fails the test if none or not a probe).
  void expectProbe() {
    auto pkt = listener_.receive();
    ASSERT_TRUE(pkt.has_value()) << "no probe sent";
    dns::Query q;
    ASSERT_EQ(dns::parseQuery(dns::ByteView(*pkt), q), dns::QueryStatus::kOk);
    EXPECT_EQ(q.question.qtype, dns::type::HINFO);
    EXPECT_EQ(q.question.qclass, dns::cls::IN);
    EXPECT_TRUE(q.question.name.equalsIgnoreCase(detector().probe));
    last_probe_ = *pkt;
  }

  test::UdpPeer listener_;
  std::shared_ptr<const plan::Plan> plan_;
  test::FakeTime time_;
  LoopProbes probes_;
  std::vector<uint8_t> last_probe_;
};

TEST_F(LoopProbesTest, TargetsAreTheBlocksWithLoop) {
  auto targets = LoopProbes::targetsOf(*plan_);
  ASSERT_EQ(targets.size(), 1u);
  EXPECT_EQ(targets[0].zone, "example.test.");
  EXPECT_EQ(targets[0].detector->target_ip, "127.0.0.1");
  EXPECT_EQ(targets[0].detector->target_port, listener_.port());
  // HINFO <rand>.<rand>.<zone>
  EXPECT_TRUE(targets[0].detector->probe_text.ends_with(".example.test."));
}

TEST_F(LoopProbesTest, FirstProbeLeavesAtStartAndAnAnswerEndsProbing) {
  probes_.start(LoopProbes::targetsOf(*plan_));
  expectProbe();
  EXPECT_EQ(probes_.probing(), 1u);
  EXPECT_TRUE(detector().active.load());
  // The exchange completes: the path does not loop; the pipeline stops counting.
  auto answer = last_probe_;
  answer[2] |= 0x80;  // QR
  listener_.reply(answer);
  probes_.tick();
  EXPECT_EQ(probes_.probing(), 0u);
  EXPECT_FALSE(detector().active.load());
  time_.advance(1h);
  probes_.tick();
  EXPECT_FALSE(listener_.receive().has_value()) << "no probe after an answer";
}

TEST_F(LoopProbesTest, UnansweredProbeIsSentAgainAfterTheWaitAndThePause) {
  probes_.start(LoopProbes::targetsOf(*plan_));
  expectProbe();
  time_.advance(LoopProbes::kAnswerWait - 1ns);
  probes_.tick();
  EXPECT_FALSE(listener_.receive().has_value()) << "still waiting for the answer";
  time_.advance(1ns);
  probes_.tick();  // the wait is over: pause
  EXPECT_FALSE(listener_.receive().has_value());
  time_.advance(LoopProbes::kPause - 1ns);
  probes_.tick();
  EXPECT_FALSE(listener_.receive().has_value()) << "pausing";
  time_.advance(1ns);
  probes_.tick();
  expectProbe();
}

TEST_F(LoopProbesTest, GivesUpAfterThirtyAttempts) {
  probes_.start(LoopProbes::targetsOf(*plan_));
  int sent = 0;
  for (int round = 0; round < 200 && probes_.probing() > 0; ++round) {
    while (listener_.receive().has_value()) ++sent;
    time_.advance(500ms);
    probes_.tick();
  }
  while (listener_.receive().has_value()) ++sent;
  EXPECT_EQ(sent, LoopProbes::kAttempts);
  EXPECT_EQ(probes_.probing(), 0u);
  EXPECT_FALSE(detector().active.load());
}

TEST_F(LoopProbesTest, StopEndsProbingAndDeactivates) {
  probes_.start(LoopProbes::targetsOf(*plan_));
  expectProbe();
  probes_.stop();
  EXPECT_EQ(probes_.probing(), 0u);
  EXPECT_FALSE(detector().active.load());
  time_.advance(1h);
  probes_.tick();
  EXPECT_FALSE(listener_.receive().has_value());
}

TEST_F(LoopProbesTest, ARestartReplacesThePreviousPlansTargets) {
  probes_.start(LoopProbes::targetsOf(*plan_));
  expectProbe();
  auto old_detector = plan_->blocks[0].loop;
  probes_.start({});  // a reload to a plan without loop
  EXPECT_EQ(probes_.probing(), 0u);
  EXPECT_FALSE(old_detector->active.load());
  old_detector->seen = 10;
  EXPECT_FALSE(probes_.detected().has_value()) << "only the loaded plan's detectors count";
}

TEST_F(LoopProbesTest, ProbeSeenMoreThanTwiceIsTheFatalLine) {
  probes_.start(LoopProbes::targetsOf(*plan_));
  detector().seen = 2;
  EXPECT_FALSE(probes_.detected().has_value()) << "CoreDNS: fatal only when seen > 2";
  detector().seen = 3;
  auto line = probes_.detected();
  ASSERT_TRUE(line.has_value());
  const std::string port = std::to_string(listener_.port());
  EXPECT_EQ(*line, "plugin/loop: Loop (127.0.0.1:" + port + " -> 127.0.0.1:" + port +
                       ") detected for zone \"example.test.\", see "
                       "https://coredns.io/plugins/loop#troubleshooting. Query: \"HINFO " +
                       detector().probe_text + "\"");
}

}  // namespace
}  // namespace nld::daemon
