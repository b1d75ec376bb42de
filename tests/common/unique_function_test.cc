// UniqueFunction: move-only callables kept inline when they fit, on the heap otherwise; every
// stored callable is destroyed exactly once (moved-from objects included).
#include "common/unique_function.h"

#include <gtest/gtest.h>

#include <array>
#include <memory>
#include <string>

namespace nld {
namespace {

struct Tracker {
  int* alive;
  explicit Tracker(int* a) : alive(a) { ++*alive; }
  Tracker(const Tracker& o) : alive(o.alive) { ++*alive; }
  Tracker(Tracker&& o) noexcept : alive(o.alive) { ++*alive; }
  ~Tracker() { --*alive; }
};

TEST(UniqueFunction, EmptyAndNull) {
  UniqueFunction<int()> f;
  EXPECT_FALSE(f);
  f = [] { return 7; };
  ASSERT_TRUE(f);
  EXPECT_EQ(f(), 7);
  f = nullptr;
  EXPECT_FALSE(f);
}

TEST(UniqueFunction, HoldsMoveOnlyStateInline) {
  auto p = std::make_unique<int>(41);
  UniqueFunction<int(int), 32> f = [p = std::move(p)](int d) { return *p + d; };
  EXPECT_EQ(f(1), 42);
  UniqueFunction<int(int), 32> g = std::move(f);
  EXPECT_FALSE(f);  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  EXPECT_EQ(g(2), 43);
}

TEST(UniqueFunction, MutableCallableKeepsItsStateBetweenCalls) {
  UniqueFunction<int()> f = [n = 0]() mutable { return ++n; };
  EXPECT_EQ(f(), 1);
  EXPECT_EQ(f(), 2);
}

TEST(UniqueFunction, DestroysInlineAndHeapCallablesExactlyOnce) {
  int alive = 0;
  {
    UniqueFunction<void(), 48> small = [t = Tracker(&alive)] { (void)t; };
    std::array<char, 200> big_state{};
    UniqueFunction<void(), 48> big = [t = Tracker(&alive), big_state] {
      (void)t;
      (void)big_state;
    };
    EXPECT_EQ(alive, 2);
    UniqueFunction<void(), 48> small2 = std::move(small);
    UniqueFunction<void(), 48> big2 = std::move(big);
    EXPECT_EQ(alive, 2);
    small2();
    big2();
    small2 = std::move(big2);  // destroys small2's callable, takes big2's
    EXPECT_EQ(alive, 1);
  }
  EXPECT_EQ(alive, 0);
}

TEST(UniqueFunction, ForwardsArgumentsAndResult) {
  UniqueFunction<std::string(const std::string&, std::string)> f =
      [](const std::string& a, std::string b) { return a + b; };
  EXPECT_EQ(f("ab", "cd"), "abcd");
}

}  // namespace
}  // namespace nld
