#include "net/event_loop.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>
#include <vector>

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
    n_ = ::read(fd_, buf, sizeof(buf));
    loop_.stop();
  }
  ssize_t n_ = -1;

 private:
  EventLoop& loop_;
  int fd_;
};

TEST(EventLoop, DispatchesReadableSocket) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, sv), 0);
  EventLoop loop;
  Reader r(loop, sv[0]);
  loop.add(sv[0], EPOLLIN, &r);
  ASSERT_EQ(::write(sv[1], "hello", 5), 5);
  loop.run();
  EXPECT_EQ(r.n_, 5);
  loop.remove(sv[0]);
  ::close(sv[0]);
  ::close(sv[1]);
}

}  // namespace
}  // namespace nld::net
