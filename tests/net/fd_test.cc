#include "net/fd.h"

#include <fcntl.h>
#include <sys/eventfd.h>

#include <utility>

#include "gtest/gtest.h"

namespace nld::net {
namespace {

// True while `fd` names an open descriptor of this process.
bool isOpen(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

int newFd() {
  const int fd = ::eventfd(0, EFD_CLOEXEC);
  EXPECT_GE(fd, 0);
  return fd;
}

TEST(Fd, EmptyByDefault) {
  Fd f;
  EXPECT_FALSE(f);
  EXPECT_EQ(f.get(), -1);
  EXPECT_EQ(f.close(), 0);
  Fd neg(-1);
  EXPECT_FALSE(neg);
}

TEST(Fd, DestructorCloses) {
  const int raw = newFd();
  {
    Fd f(raw);
    EXPECT_TRUE(f);
    EXPECT_EQ(f.get(), raw);
    EXPECT_TRUE(isOpen(raw));
  }
  EXPECT_FALSE(isOpen(raw));
}

TEST(Fd, ReleaseGivesUpOwnership) {
  const int raw = newFd();
  {
    Fd f(raw);
    EXPECT_EQ(f.release(), raw);
    EXPECT_FALSE(f);
    EXPECT_EQ(f.get(), -1);
  }
  EXPECT_TRUE(isOpen(raw));
  ::close(raw);  // on purpose by hand: release() handed ownership back to the raw int
}

TEST(Fd, ResetClosesTheOldAndTakesTheNew) {
  const int a = newFd();
  const int b = newFd();
  Fd f(a);
  f.reset(b);
  EXPECT_FALSE(isOpen(a));
  EXPECT_TRUE(isOpen(b));
  EXPECT_EQ(f.get(), b);
  f.reset();
  EXPECT_FALSE(isOpen(b));
  EXPECT_FALSE(f);
}

TEST(Fd, MoveTransfersOwnership) {
  const int a = newFd();
  const int b = newFd();
  Fd f(a);
  Fd g(std::move(f));
  EXPECT_FALSE(f);  // NOLINT(bugprone-use-after-move): the moved-from state is specified
  EXPECT_EQ(g.get(), a);
  Fd h(b);
  h = std::move(g);  // closes b, takes a
  EXPECT_FALSE(isOpen(b));
  EXPECT_TRUE(isOpen(a));
  EXPECT_EQ(h.get(), a);
  EXPECT_FALSE(g);  // NOLINT(bugprone-use-after-move)
  auto& self = h;
  h = std::move(self);  // self-move keeps the descriptor
  EXPECT_TRUE(isOpen(a));
  EXPECT_EQ(h.get(), a);
}

TEST(Fd, CloseReportsAndEmpties) {
  const int raw = newFd();
  Fd f(raw);
  EXPECT_EQ(f.close(), 0);
  EXPECT_FALSE(f);
  EXPECT_FALSE(isOpen(raw));
}

}  // namespace
}  // namespace nld::net
