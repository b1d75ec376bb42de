#include "ovsdb/replica.h"

#include <gtest/gtest.h>

namespace nld::ovsdb {
namespace {

Schema testSchema() {
  auto j = Json::parse(R"({"name":"T","tables":{
    "R":{"columns":{"name":{"type":"string"},
                    "policies":{"type":{"key":{"type":"uuid"},"min":0,"max":"unlimited"}},
                    "options":{"type":{"key":"string","value":"string","min":0,"max":"unlimited"}},
                    "nexthop":{"type":{"key":"string","min":0,"max":1}}}}}})");
  auto s = Schema::fromJson(j);
  EXPECT_TRUE(s) << s.error().message();
  return *s;
}

TEST(Schema, ColumnKinds) {
  auto s = testSchema();
  EXPECT_EQ(s.kind("R", "name"), ColumnKind::kScalar);
  EXPECT_EQ(s.kind("R", "policies"), ColumnKind::kSet);
  EXPECT_EQ(s.kind("R", "options"), ColumnKind::kMap);
  EXPECT_EQ(s.kind("R", "nexthop"), ColumnKind::kSet);
  EXPECT_TRUE(s.hasTable("R"));
  EXPECT_FALSE(s.hasTable("X"));
  auto bad = Schema::fromJson(Json::parse("[1]"));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(), "schema has no \"tables\" object");
}

TEST(Replica, Update2InitialInsertModifyDelete) {
  auto schema = testSchema();
  Replica r;
  auto applied = r.applyUpdate2(Json::parse(R"({"R":{"u1":{"initial":{"name":"a",
      "policies":["set",[["uuid","p1"],["uuid","p2"]]],"options":["map",[["k","v"]]]}}}})"),
                                schema);
  ASSERT_TRUE(applied) << applied.error().message();
  const auto seq1 = r.seqno();
  ASSERT_NE(r.row("R", "u1"), nullptr);
  applied = r.applyUpdate2(Json::parse(R"({"R":{"u1":{"modify":{"name":"b",
      "policies":["set",[["uuid","p1"],["uuid","p3"]]],"options":["map",[["k","v"],["n","m"]]],
      "nexthop":"10.0.0.1"}},
      "u2":{"insert":{"name":"c"}}}})"),
                           schema);
  ASSERT_TRUE(applied) << applied.error().message();
  EXPECT_GT(r.seqno(), seq1);
  const auto& row = *r.row("R", "u1");
  EXPECT_EQ(column(row, "name"), Json("b"));
  EXPECT_EQ(uuidSet(column(row, "policies")), (std::vector<std::string>{"p2", "p3"}));
  EXPECT_EQ(stringMap(column(row, "options")), (std::map<std::string, std::string>{{"n", "m"}}));
  EXPECT_EQ(optionalString(column(row, "nexthop")), "10.0.0.1");
  EXPECT_EQ(r.table("R").size(), 2u);
  applied = r.applyUpdate2(Json::parse(R"({"R":{"u2":{"delete":null}}})"), schema);
  ASSERT_TRUE(applied) << applied.error().message();
  EXPECT_EQ(r.table("R").size(), 1u);
  EXPECT_EQ(r.row("R", "u2"), nullptr);
}

TEST(Replica, Update2RejectsMalformed) {
  auto schema = testSchema();
  Replica r;
  auto expect_error = [&](const char* update, const std::string& message) {
    auto applied = r.applyUpdate2(Json::parse(update), schema);
    ASSERT_FALSE(applied) << update;
    EXPECT_EQ(applied.error().message(), message) << update;
  };
  expect_error("[]", "table-updates2 is not an object");
  expect_error(R"({"R":{"u1":{"bogus":{}}}})", "unknown row-update2 member \"bogus\"");
  expect_error(R"({"R":{"u1":{"insert":{},"delete":null}}})",
               "row-update2 u1 must have exactly one member");
  expect_error(R"({"R":{"u1":{"modify":{"options":"notamap"}}}})",
               "bad modify difference for R.options");
}

TEST(Replica, Version1Update) {
  Replica r;
  ASSERT_TRUE(
      r.applyUpdate(Json::parse(R"({"R":{"u1":{"new":{"name":"a","options":["map",[]]}}}})")));
  ASSERT_TRUE(
      r.applyUpdate(Json::parse(R"({"R":{"u1":{"old":{"name":"a"},"new":{"name":"b"}}}})")));
  EXPECT_EQ(column(*r.row("R", "u1"), "name"), Json("b"));
  ASSERT_TRUE(r.applyUpdate(Json::parse(R"({"R":{"u1":{"old":{"name":"b"}}}})")));
  EXPECT_TRUE(r.table("R").empty());
  auto bad = r.applyUpdate(Json::parse(R"({"R":5})"));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(), "table-update for R is not an object");
  r.clear();
  EXPECT_EQ(r.rowCount(), 0u);
}

}  // namespace
}  // namespace nld::ovsdb
