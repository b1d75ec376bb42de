#include "net/event_loop.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "net/fd.h"
#include "support/fake_time.h"

namespace nld::net {
namespace {

TEST(EventLoop, TimersFireInOrderAndCancelledOnesDoNot) {
  EventLoop loop;
  std::vector<int> fired;
  loop.addTimer(std::chrono::milliseconds(20), [&] { fired.push_back(2); });
  loop.addTimer(std::chrono::milliseconds(5), [&] { fired.push_back(1); });
  auto id = loop.addTimer(std::chrono::milliseconds(10), [&] { fired.push_back(99); });
  loop.cancelTimer(id);
  loop.addTimer(std::chrono::milliseconds(30), [&] { loop.stop(); });
  loop.run();
  EXPECT_EQ(fired, (std::vector<int>{1, 2}));
}

TEST(EventLoop, OnFakeTimeTimersFireExactlyWhenTheTimeIsAdvancedPastThem) {
  test::FakeTime time;
  EventLoop loop(time);
  std::vector<int> fired;
  const auto t0 = time.now();
  loop.addTimer(std::chrono::seconds(30), [&] { fired.push_back(30); });
  loop.addTimer(std::chrono::seconds(10), [&] { fired.push_back(10); });
  loop.runOnce(std::chrono::milliseconds(0));
  EXPECT_TRUE(fired.empty());
  EXPECT_EQ(loop.now(), t0);
  time.advance(std::chrono::milliseconds(9999));
  loop.runOnce(std::chrono::milliseconds(0));
  EXPECT_TRUE(fired.empty());  // 1 ms early
  time.advance(std::chrono::milliseconds(1));
  loop.runOnce(std::chrono::milliseconds(0));
  EXPECT_EQ(fired, (std::vector<int>{10}));
  EXPECT_EQ(loop.now(), t0 + std::chrono::seconds(10));
  EXPECT_EQ(loop.clockNow(), t0 + std::chrono::seconds(10));
  time.advance(std::chrono::seconds(60));
  loop.runOnce(std::chrono::milliseconds(0));
  EXPECT_EQ(fired, (std::vector<int>{10, 30}));
}

TEST(EventLoop, PostFromAnotherThreadRunsOnLoopThread) {
  EventLoop loop;
  std::thread::id ran_on;
  std::thread t([&] {
    while (!loop.running()) std::this_thread::yield();
    loop.post([&] {
      ran_on = std::this_thread::get_id();
      loop.stop();
    });
  });
  loop.run();
  t.join();
  EXPECT_EQ(ran_on, std::this_thread::get_id());
}

// post() writes the wakeup eventfd only for the first task of a batch (the queue was drained);
// the rest ride on that wakeup. Rounds of 1-5 posts, each round waiting until the loop ran them,
// so every round starts with a drained queue and a loop that may be blocked in epoll_wait: a
// lost wakeup would leave the loop asleep (up to a second per round, 400 rounds: the test would
// hit ctest's timeout instead of finishing in milliseconds).
TEST(EventLoop, BatchedPostsFromAnotherThreadAlwaysWakeTheLoop) {
  EventLoop loop;
  std::atomic<int> ran{0};
  std::thread t([&] {
    while (!loop.running()) std::this_thread::yield();
    int expected = 0;
    for (int round = 0; round < 400; ++round) {
      const int k = 1 + round % 5;
      for (int i = 0; i < k; ++i) loop.post([&] { ran.fetch_add(1); });
      expected += k;
      while (ran.load() < expected) std::this_thread::yield();
    }
    loop.post([&] { loop.stop(); });
  });
  loop.run();
  t.join();
  EXPECT_EQ(ran.load(), 400 / 5 * 15);
}

class CountingHook final : public RoundEndHook {
 public:
  explicit CountingHook(EventLoop& loop) : loop_(loop) {}
  ~CountingHook() { loop_.cancelRoundEnd(this); }
  void onRoundEnd() override {
    ++runs;
    if (again > 0) {
      --again;
      loop_.requestRoundEnd(this);  // next round
    }
  }
  int runs = 0;
  int again = 0;

 private:
  EventLoop& loop_;
};

TEST(EventLoop, RoundEndHooksRunOncePerRequestRoundAndCancelledOnesDoNot) {
  EventLoop loop;
  CountingHook a(loop), b(loop), c(loop);
  b.again = 2;
  loop.post([&] {
    loop.requestRoundEnd(&a);
    loop.requestRoundEnd(&a);  // merged
    loop.requestRoundEnd(&b);
    loop.requestRoundEnd(&c);
    loop.cancelRoundEnd(&c);
  });
  // Requests made by hooks keep the loop from blocking: all of b's rounds finish long before
  // this timer (the loop would otherwise sleep up to a second per round).
  const auto start = std::chrono::steady_clock::now();
  loop.addTimer(std::chrono::milliseconds(50), [&] { loop.stop(); });
  loop.run();
  EXPECT_EQ(a.runs, 1);
  EXPECT_EQ(b.runs, 3);
  EXPECT_EQ(c.runs, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(900));
}

class Reader final : public IoHandler {
 public:
  Reader(EventLoop& loop, int fd) : loop_(loop), fd_(fd) {}
  void onEvents(uint32_t) override {
    char buf[16];
    n = ::read(fd_, buf, sizeof(buf));
    loop_.stop();
  }
  ssize_t n = -1;

 private:
  EventLoop& loop_;
  int fd_;
};

TEST(EventLoop, DispatchesReadableSocket) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, sv), 0);
  const Fd reader_end(sv[0]);
  const Fd writer_end(sv[1]);
  EventLoop loop;
  Reader r(loop, reader_end.get());
  loop.add(reader_end.get(), EPOLLIN, &r);
  ASSERT_EQ(::write(writer_end.get(), "hello", 5), 5);
  loop.run();
  EXPECT_EQ(r.n, 5);
  loop.remove(reader_end.get());
}

}  // namespace
}  // namespace nld::net
