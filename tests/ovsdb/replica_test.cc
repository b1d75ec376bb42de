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
  std::string err;
  auto s = Schema::fromJson(j, &err);
  EXPECT_TRUE(s) << err;
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
  std::string err;
  EXPECT_FALSE(Schema::fromJson(Json::parse("[1]"), &err));
  EXPECT_FALSE(err.empty());
}

TEST(Replica, Update2InitialInsertModifyDelete) {
  auto schema = testSchema();
  Replica r;
  std::string err;
  ASSERT_TRUE(r.applyUpdate2(Json::parse(R"({"R":{"u1":{"initial":{"name":"a",
      "policies":["set",[["uuid","p1"],["uuid","p2"]]],"options":["map",[["k","v"]]]}}}})"), schema, &err))
      << err;
  const auto seq1 = r.seqno();
  ASSERT_NE(r.row("R", "u1"), nullptr);
  ASSERT_TRUE(r.applyUpdate2(Json::parse(R"({"R":{"u1":{"modify":{"name":"b",
      "policies":["set",[["uuid","p1"],["uuid","p3"]]],"options":["map",[["k","v"],["n","m"]]],
      "nexthop":"10.0.0.1"}},
      "u2":{"insert":{"name":"c"}}}})"), schema, &err))
      << err;
  EXPECT_GT(r.seqno(), seq1);
  const auto& row = *r.row("R", "u1");
  EXPECT_EQ(column(row, "name"), Json("b"));
  EXPECT_EQ(uuidSet(column(row, "policies")), (std::vector<std::string>{"p2", "p3"}));
  EXPECT_EQ(stringMap(column(row, "options")), (std::map<std::string, std::string>{{"n", "m"}}));
  EXPECT_EQ(optionalString(column(row, "nexthop")), "10.0.0.1");
  EXPECT_EQ(r.table("R").size(), 2u);
  ASSERT_TRUE(r.applyUpdate2(Json::parse(R"({"R":{"u2":{"delete":null}}})"), schema, &err)) << err;
  EXPECT_EQ(r.table("R").size(), 1u);
  EXPECT_EQ(r.row("R", "u2"), nullptr);
}

TEST(Replica, Update2RejectsMalformed) {
  auto schema = testSchema();
  Replica r;
  std::string err;
  EXPECT_FALSE(r.applyUpdate2(Json::parse("[]"), schema, &err));
  EXPECT_FALSE(r.applyUpdate2(Json::parse(R"({"R":{"u1":{"bogus":{}}}})"), schema, &err));
  EXPECT_FALSE(r.applyUpdate2(Json::parse(R"({"R":{"u1":{"insert":{},"delete":null}}})"), schema, &err));
  EXPECT_FALSE(r.applyUpdate2(Json::parse(R"({"R":{"u1":{"modify":{"options":"notamap"}}}})"), schema, &err));
  EXPECT_FALSE(err.empty());
}

TEST(Replica, Version1Update) {
  Replica r;
  std::string err;
  ASSERT_TRUE(r.applyUpdate(Json::parse(R"({"R":{"u1":{"new":{"name":"a","options":["map",[]]}}}})"), &err));
  ASSERT_TRUE(r.applyUpdate(Json::parse(R"({"R":{"u1":{"old":{"name":"a"},"new":{"name":"b"}}}})"), &err));
  EXPECT_EQ(column(*r.row("R", "u1"), "name"), Json("b"));
  ASSERT_TRUE(r.applyUpdate(Json::parse(R"({"R":{"u1":{"old":{"name":"b"}}}})"), &err));
  EXPECT_TRUE(r.table("R").empty());
  EXPECT_FALSE(r.applyUpdate(Json::parse(R"({"R":5})"), &err));
  r.clear();
  EXPECT_EQ(r.rowCount(), 0u);
}

}  // namespace
}  // namespace nld::ovsdb
