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
