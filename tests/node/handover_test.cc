// The handover protocol between two Handover objects of this process (flock locks belong to open
// file descriptions, so two objects on one state directory contend exactly like two processes).
// The "listening sockets" passed are socketpair ends: what matters is that the successor gets
// the same kernel socket (a byte written to the peer is readable from the received fd).
#include "node/handover.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <string>
#include <thread>

#include "common/inherited_sockets.h"
#include "net/fd.h"
#include "support/capture_stdout.h"
#include "support/eventually.h"
#include "support/temp_dir.h"

namespace nld::node {
namespace {

using namespace std::chrono_literals;
using nld::test::eventually;

class HandoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0);
    pair_[0].reset(sv[0]);
    pair_[1].reset(sv[1]);
    inheritedSockets().closeUnclaimed();
  }
  void TearDown() override { inheritedSockets().closeUnclaimed(); }

  Handover::Hooks hooks(std::string snapshot = "") {
    Handover::Hooks h;
    h.snapshot = [snapshot] { return snapshot; };
    h.sockets = [this] {
      return std::vector<PassedSocket>{{SocketKind::kDnsUdp, "169.254.20.10", 53, pair_[0].get()}};
    };
    return h;
  }

  /// `successor` takes the sockets from the running `owner` and says it serves.
  ::testing::AssertionResult takesOver(Handover& successor, const Handover& owner) {
    if (successor.begin() != Handover::Start::kInherited) {
      return ::testing::AssertionFailure() << "not handed over";
    }
    inheritedSockets().closeUnclaimed();
    successor.serve(hooks());
    if (!eventually([&] { return owner.handedOver(); })) {
      return ::testing::AssertionFailure() << "the owner never saw ready";
    }
    return ::testing::AssertionSuccess();
  }

  test::TempDir tmp_{"nld-handover-"};
  std::string dir_ = tmp_.path() + "/state";
  net::Fd pair_[2];
};

TEST_F(HandoverTest, FirstProcessOwnsAtOnce) {
  Handover a(dir_, "");
  EXPECT_EQ(a.begin(), Handover::Start::kFresh);
  EXPECT_TRUE(a.owner());
  EXPECT_EQ(inheritedSockets().size(), 0u);
}

TEST_F(HandoverTest, SuccessorTakesTheSameSocketsAndTheSnapshotPath) {
  auto a = std::make_unique<Handover>(dir_, "pod-a");
  ASSERT_EQ(a->begin(), Handover::Start::kFresh);
  a->serve(hooks("/state/cache.snapshot"));

  Handover b(dir_, "pod-b");
  ASSERT_EQ(b.begin(), Handover::Start::kInherited);
  EXPECT_FALSE(b.owner());
  EXPECT_EQ(b.predecessor().pid, int(::getpid()));
  EXPECT_EQ(b.predecessor().pod_uid, "pod-a");
  EXPECT_EQ(b.predecessor().snapshot, "/state/cache.snapshot");
  net::Fd fd(inheritedSockets().take(SocketKind::kDnsUdp, "169.254.20.10", 53));
  ASSERT_TRUE(fd);
  EXPECT_NE(fd.get(), pair_[0].get());
  EXPECT_EQ(inheritedSockets().take(SocketKind::kDnsUdp, "169.254.20.10", 53), -1);
  // The same kernel socket: a datagram sent to the old end is read from the new fd.
  ASSERT_EQ(::send(pair_[1].get(), "q", 1, 0), 1);
  char c = 0;
  EXPECT_EQ(::recv(fd.get(), &c, 1, 0), 1);
  EXPECT_EQ(c, 'q');
  fd.reset();

  EXPECT_FALSE(a->handedOver());  // not before the successor says it serves
  b.serve(hooks());
  EXPECT_TRUE(eventually([&] { return a->handedOver(); }));
  a.reset();  // the predecessor exits: the successor becomes the owner
  EXPECT_TRUE(eventually([&] { return b.owner(); }));
  b.stop();
}

TEST_F(HandoverTest, CandidateArrivingAsThePredecessorExitsAsksTheSuccessor) {
  // The window between the predecessor's exit (owner.lock free) and its successor taking
  // owner.lock: a candidate arriving then (e.g. the old pod's container, restarted by the
  // kubelet) must queue behind the successor and ask it, not become a second owner.
  test::CaptureStdout cap;
  auto a = std::make_unique<Handover>(dir_, "pod-a");
  ASSERT_EQ(a->begin(), Handover::Start::kFresh);
  a->serve(hooks());
  Handover b(dir_, "pod-b");
  ASSERT_EQ(b.begin(), Handover::Start::kInherited);  // holds successor.lock, not yet serving
  inheritedSockets().closeUnclaimed();
  a.reset();  // the predecessor exits: owner.lock is free, b has not taken it yet
  Handover c(dir_, "pod-c");
  auto started = std::async(std::launch::async, [&] { return c.begin(); });
  ASSERT_TRUE(eventually([&] {
    return started.wait_for(0ms) == std::future_status::ready ||
           cap.peek().find("waiting for it") != std::string::npos;
  }));
  b.serve(hooks());  // b takes owner.lock, listens, releases successor.lock
  EXPECT_EQ(started.get(), Handover::Start::kInherited) << cap.peek();
  EXPECT_TRUE(b.owner());
  EXPECT_FALSE(c.owner());
  EXPECT_EQ(c.predecessor().pod_uid, "pod-b");
}

TEST_F(HandoverTest, OwnerRefusesThePodItReplaced) {
  auto a = std::make_unique<Handover>(dir_, "pod-old");
  ASSERT_EQ(a->begin(), Handover::Start::kFresh);
  a->serve(hooks());
  Handover b(dir_, "pod-new");
  ASSERT_EQ(b.begin(), Handover::Start::kInherited);
  inheritedSockets().closeUnclaimed();
  b.serve(hooks());
  ASSERT_TRUE(eventually([&] { return a->handedOver(); }));
  a.reset();
  ASSERT_TRUE(eventually([&] { return b.owner(); }));
  // The old pod's container, restarted by the kubelet, must not take the node back...
  Handover again(dir_, "pod-old");
  EXPECT_EQ(again.begin(), Handover::Start::kRefused);
  EXPECT_FALSE(b.handedOver());
  // ...and does not block a real successor (it released successor.lock).
  Handover next(dir_, "pod-next");
  EXPECT_EQ(next.begin(), Handover::Start::kInherited);
}

TEST_F(HandoverTest, SuccessorDeathBeforeReadyLeavesTheOwnerServing) {
  Handover a(dir_, "");
  ASSERT_EQ(a.begin(), Handover::Start::kFresh);
  a.serve(hooks());
  {
    Handover b(dir_, "");
    ASSERT_EQ(b.begin(), Handover::Start::kInherited);
    inheritedSockets().closeUnclaimed();
  }  // gone without serve(): no "ready"
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(a.handedOver());
  // And the next candidate is served normally.
  Handover c(dir_, "");
  EXPECT_EQ(c.begin(), Handover::Start::kInherited);
}

TEST_F(HandoverTest, SuccessorDeathAfterReadyMakesTheOwnerResume) {
  Handover a(dir_, "");
  ASSERT_EQ(a.begin(), Handover::Start::kFresh);
  a.serve(hooks());
  {
    Handover b(dir_, "");
    ASSERT_TRUE(takesOver(b, a));
  }
  EXPECT_TRUE(eventually([&] { return !a.handedOver(); }));
  EXPECT_FALSE(a.commitExit());  // too late to exit: resume instead
  EXPECT_FALSE(a.handedOver());
  EXPECT_EQ(a.successorsLost(), 1u);
  // And the next candidate is served normally.
  Handover c(dir_, "");
  EXPECT_TRUE(takesOver(c, a));
}

TEST_F(HandoverTest, SuccessorDeathAfterTheExitDecisionDoesNotResume) {
  test::CaptureStdout cap;
  Handover a(dir_, "");
  ASSERT_EQ(a.begin(), Handover::Start::kFresh);
  a.serve(hooks());
  {
    Handover b(dir_, "");
    ASSERT_TRUE(takesOver(b, a));
    EXPECT_TRUE(a.commitExit());   // drained: a decides to exit
    EXPECT_FALSE(a.commitExit());  // once
  }                                // the successor dies before a has stopped
  EXPECT_TRUE(eventually([&] {
    return cap.peek().find("after this one had drained") != std::string::npos;
  })) << cap.peek();
  EXPECT_TRUE(a.handedOver());  // still exiting: no "resuming service"
  EXPECT_EQ(a.successorsLost(), 0u);
  EXPECT_EQ(cap.peek().find("resuming service"), std::string::npos) << cap.peek();
}

TEST_F(HandoverTest, GarbageOnTheSocketIsIgnored) {
  Handover a(dir_, "");
  ASSERT_EQ(a.begin(), Handover::Start::kFresh);
  a.serve(hooks());
  ASSERT_TRUE(eventually([&] { return std::filesystem::exists(dir_ + "/handover.sock"); }));
  const std::vector<std::string> junks = {"", "{", "[1,2]", "{\"hello\":\"x\",\"pid\":\"nope\"}",
                                          std::string(70000, 'x')};
  for (const auto& junk : junks) {
    net::Fd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::string path = dir_ + "/handover.sock";
    std::copy(path.begin(), path.end(), addr.sun_path);
    ASSERT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    (void)::send(fd.get(), junk.data(), junk.size(), MSG_NOSIGNAL);
  }
  Handover b(dir_, "");
  EXPECT_EQ(b.begin(), Handover::Start::kInherited);
  EXPECT_FALSE(a.handedOver());
}

TEST_F(HandoverTest, StaleSocketFileIsNoObstacle) {
  std::filesystem::create_directories(dir_);
  {
    std::FILE* f = std::fopen((dir_ + "/handover.sock").c_str(), "w");
    std::fclose(f);
  }
  Handover a(dir_, "");
  EXPECT_EQ(a.begin(), Handover::Start::kFresh);
  a.serve(hooks());
  Handover b(dir_, "");
  EXPECT_EQ(b.begin(), Handover::Start::kInherited);
}

TEST_F(HandoverTest, UnusableStateDirectoryIsAClearError) {
  Handover a("/proc/nld-no-such/state", "");
  EXPECT_THROW(a.begin(), std::runtime_error);
}

}  // namespace
}  // namespace nld::node
