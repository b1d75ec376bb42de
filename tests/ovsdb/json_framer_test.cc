#include "ovsdb/json_framer.h"

#include <gtest/gtest.h>

namespace nld::ovsdb {
namespace {

TEST(JsonFramer, SplitsConcatenatedObjects) {
  JsonFramer f;
  std::vector<std::string> out;
  ASSERT_EQ(f.feed(R"({"id":1}{"id":2} [1,2])", out), JsonFramer::Status::kOk);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0], R"({"id":1})");
  EXPECT_EQ(out[1], R"({"id":2})");
  EXPECT_EQ(out[2], "[1,2]");
  EXPECT_EQ(f.buffered(), 0u);
}

TEST(JsonFramer, HandlesByteByByteAndBracesInStrings) {
  const std::string msg = R"({"a":"}{\"]","b":[{"c":"\\"}]})";
  JsonFramer f;
  std::vector<std::string> out;
  for (char c : msg + "\n" + msg) {
    ASSERT_EQ(f.feed(std::string_view(&c, 1), out), JsonFramer::Status::kOk);
  }
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0], msg);
  EXPECT_EQ(out[1], msg);
}

TEST(JsonFramer, KeepsPartialMessage) {
  JsonFramer f;
  std::vector<std::string> out;
  ASSERT_EQ(f.feed(R"({"method":"upd)", out), JsonFramer::Status::kOk);
  EXPECT_TRUE(out.empty());
  EXPECT_GT(f.buffered(), 0u);
  ASSERT_EQ(f.feed(R"(ate"})", out), JsonFramer::Status::kOk);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], R"({"method":"update"})");
}

TEST(JsonFramer, RejectsGarbageBetweenMessages) {
  JsonFramer f;
  std::vector<std::string> out;
  EXPECT_EQ(f.feed("{}x{}", out), JsonFramer::Status::kSyntax);
  EXPECT_EQ(out.size(), 1u);
  EXPECT_EQ(f.feed("{}", out), JsonFramer::Status::kSyntax);  // sticky until reset
  f.reset();
  EXPECT_EQ(f.feed("{}", out), JsonFramer::Status::kOk);
}

TEST(JsonFramer, EnforcesSizeCap) {
  JsonFramer f(16);
  std::vector<std::string> out;
  EXPECT_EQ(f.feed(R"({"k":"0123456789abcdef"})", out), JsonFramer::Status::kTooLarge);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(f.buffered(), 0u);
}

}  // namespace
}  // namespace nld::ovsdb
