#include "ovsdb/datum.h"

#include <gtest/gtest.h>

namespace nld::ovsdb {
namespace {

TEST(Datum, SetAndMapAccessors) {
  EXPECT_EQ(stringSet(Json("a")), std::vector<std::string>{"a"});
  EXPECT_EQ(stringSet(Json::parse(R"(["set",["a","b"]])")), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(stringSet(Json::parse(R"(["set",[]])")).empty());
  EXPECT_EQ(uuidSet(Json::parse(R"(["uuid","u1"])")), std::vector<std::string>{"u1"});
  EXPECT_EQ(uuidSet(Json::parse(R"(["set",[["uuid","u1"],["uuid","u2"]]])")),
            (std::vector<std::string>{"u1", "u2"}));
  auto m = stringMap(Json::parse(R"(["map",[["k","v"],["x","y"]]])"));
  EXPECT_EQ(m.size(), 2u);
  EXPECT_EQ(m["x"], "y");
  EXPECT_TRUE(stringMap(Json::parse(R"(["set",[]])")).empty());
  EXPECT_EQ(integerOf(Json(30000)), 30000);
  EXPECT_EQ(optionalString(Json::parse(R"(["set",[]])")), std::nullopt);
  EXPECT_EQ(optionalString(Json("x")), "x");
}

TEST(Datum, MalformedInputIsEmptyNotACrash) {
  EXPECT_TRUE(stringSet(Json::parse(R"(["set",5])")).empty());
  EXPECT_TRUE(stringMap(Json::parse(R"(["map",[["k"]]])")).empty());
  EXPECT_TRUE(uuidSet(Json::parse(R"({"a":1})")).empty());
  EXPECT_TRUE(stringSet(Json::parse(R"([1,2,3])")).empty());
}

TEST(Datum, SetDiffIsSymmetricDifference) {
  auto next = applyDiff(Json::parse(R"(["set",[["uuid","a"],["uuid","b"]]])"),
                        Json::parse(R"(["set",[["uuid","b"],["uuid","c"]]])"), ColumnKind::kSet);
  ASSERT_TRUE(next);
  EXPECT_EQ(uuidSet(*next), (std::vector<std::string>{"a", "c"}));
  // A single-atom diff on an optional column: old {x} → diff "x" removes it.
  auto opt = applyDiff(Json("x"), Json("x"), ColumnKind::kSet);
  ASSERT_TRUE(opt);
  EXPECT_TRUE(stringSet(*opt).empty());
  // From a default (absent) value.
  auto from_null = applyDiff(Json(), Json("y"), ColumnKind::kSet);
  ASSERT_TRUE(from_null);
  EXPECT_EQ(stringSet(*from_null), std::vector<std::string>{"y"});
}

TEST(Datum, MapDiffAddsRemovesAndUpdates) {
  auto old = Json::parse(R"(["map",[["keep","1"],["drop","2"],["change","3"]]])");
  auto diff = Json::parse(R"(["map",[["drop","2"],["change","4"],["add","5"]]])");
  auto next = applyDiff(old, diff, ColumnKind::kMap);
  ASSERT_TRUE(next);
  auto m = stringMap(*next);
  EXPECT_EQ(m, (std::map<std::string, std::string>{{"keep", "1"}, {"change", "4"}, {"add", "5"}}));
  EXPECT_FALSE(applyDiff(old, Json("x"), ColumnKind::kMap));
}

TEST(Datum, ScalarDiffIsNewValue) {
  auto next = applyDiff(Json("old"), Json("new"), ColumnKind::kScalar);
  ASSERT_TRUE(next);
  EXPECT_EQ(*next, Json("new"));
}

}  // namespace
}  // namespace nld::ovsdb
