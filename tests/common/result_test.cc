// nld::Result: the value-or-Error type of fallible calls below the command line.
#include "common/result.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace nld {
namespace {

Result<int> half(int n) {
  if (n % 2 != 0) return fail("odd: " + std::to_string(n));
  return n / 2;
}

Result<int> quarter(int n) {
  auto h = half(n);
  if (!h) return fail(h.error());  // passes the callee's message up unchanged
  return half(*h);
}

Result<void> check(bool good) {
  if (!good) return fail("not good");
  return {};
}

TEST(Result, ValueOrError) {
  auto r = half(8);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(static_cast<bool>(r));
  EXPECT_EQ(r.value(), 4);
  EXPECT_EQ(*r, 4);

  auto e = half(7);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().message(), "odd: 7");
  EXPECT_EQ(e.value_or(-1), -1);
}

TEST(Result, PropagatesTheCalleesMessage) {
  EXPECT_EQ(*quarter(8), 2);
  EXPECT_EQ(quarter(6).error().message(), "odd: 3");
  EXPECT_EQ(quarter(5).error().message(), "odd: 5");
}

TEST(Result, Void) {
  EXPECT_TRUE(check(true).ok());
  auto e = check(false);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().message(), "not good");
}

TEST(Result, ConvertsLikeTheValueType) {
  // A string literal and a braced list become the value, as they would for a plain return.
  auto s = []() -> Result<std::string> { return "text"; }();
  EXPECT_EQ(*s, "text");
  auto v = []() -> Result<std::vector<std::string>> {
    return std::vector<std::string>{"a", "b"};
  }();
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->size(), 2u);
  // Move-only values move through.
  auto p = []() -> Result<std::unique_ptr<int>> { return std::make_unique<int>(3); }();
  ASSERT_TRUE(p.ok());
  std::unique_ptr<int> owned = std::move(p).value();
  EXPECT_EQ(*owned, 3);
}

TEST(Result, ErrorMessageMovesOut) {
  auto e = half(1);
  std::string m = std::move(e).error().message();
  EXPECT_EQ(m, "odd: 1");
}

TEST(Result, ValueOfAnErrorThrows) {
  // A programming error (reading a failed call's value) is loud, never undefined behaviour.
  auto e = half(3);
  EXPECT_THROW((void)e.value(), tl::bad_expected_access<Error>);
}

}  // namespace
}  // namespace nld
