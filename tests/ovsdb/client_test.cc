// Client protocol handling against the scripted in-memory server (tests/ovsdb/scripted_stream.h):
// the connect sequence, notifications, echo, transaction outcomes, and malformed server replies
// (which must be reported as errors, never thrown). The same client against a real ovsdb-server
// is covered by tests/ovn/ovn_controller_test.py.
#include "ovsdb/client.h"

#include <gtest/gtest.h>

#include "ovsdb/scripted_stream.h"

namespace nld::ovsdb {
namespace {

using testing::ServerScript;

constexpr const char* kSchemaReply =
    R"({"id":$ID,"error":null,"result":{"name":"OVN_Northbound","tables":{
  "Logical_Router":{"columns":{"name":{"type":"string"},
    "policies":{"type":{"key":{"type":"uuid"},"min":0,"max":"unlimited"}}}}}}})";
constexpr const char* kLeaderReply =
    R"({"id":$ID,"error":null,"result":[{"rows":[{"leader":true,"model":"clustered","connected":true}]}]})";
constexpr const char* kMonitorReply =
    R"({"id":$ID,"error":null,"result":{"Logical_Router":{"r1":{"initial":{
  "name":"ovn-cluster","policies":["set",[["uuid","p1"]]]}}}}})";

ClientOptions options(ServerScript& script) {
  auto o = testing::scriptedOptions(script);
  o.monitor = {{"Logical_Router", {}}};
  return o;
}

// The update2 in the same read as the monitor_cond reply used to be applied first and then wiped
// by the replica reset for the reply: the replica missed that change until the next reconnect.
TEST(ClientScripted, ConnectMonitorNotifyEchoTransact) {
  ServerScript script;
  script.chunk = 7;  // messages arrive in pieces
  script.turns = {kLeaderReply, kSchemaReply,
                  std::string(kMonitorReply) +
                      R"({"method":"update2","params":["nld",{"Logical_Router":{"r1":{"modify":{
                         "policies":["uuid","p2"]}}}}]})" +
                      R"({"method":"echo","params":["x"],"id":"e1"})",
                  R"({"id":$ID,"error":null,"result":[{"error":"timed out"}]})"};
  Client c(options(script));
  auto connected = c.connect();
  ASSERT_TRUE(connected) << connected.error().message();
  EXPECT_TRUE(c.usingMonitorCond());
  const auto* row = c.replica().row("Logical_Router", "r1");
  ASSERT_NE(row, nullptr);
  EXPECT_EQ(uuidSet(column(*row, "policies")), (std::vector<std::string>{"p1", "p2"}));
  const Json wait = Json::array({{{"op", "wait"}, {"table", "Logical_Router"}}});
  auto res = c.transact(wait, std::chrono::hours(1));
  EXPECT_EQ(res.status, TxnResult::Status::kConflict) << res.error;
  // The echo request was answered with its own params and id.
  bool echoed = false;
  for (const auto& r : script.requests) {
    Json m = Json::parse(r);
    if (m["id"] == "e1" && m["result"] == Json::array({"x"})) echoed = true;
  }
  EXPECT_TRUE(echoed);
}

TEST(ClientScripted, FollowerIsSkipped) {
  ServerScript script;
  script.turns = {
      R"({"id":$ID,"error":null,"result":[{"rows":[{"leader":false,"model":"clustered"}]}]})"};
  Client c(options(script));
  auto connected = c.connect();
  ASSERT_FALSE(connected);
  const std::string& err = connected.error().message();
  EXPECT_NE(err.find("not leader"), std::string::npos) << err;
}

// Found by fuzz/ovsdb_client: a _Server row that is not an object, or whose "model" is not a
// string, made nlohmann::json::value() throw out of connect().
TEST(ClientScripted, MalformedServerRowIsAnError) {
  for (const char* row : {R"(5)", R"({"model":7,"leader":true})", R"(["x"])"}) {
    ServerScript script;
    script.turns = {std::string(R"({"id":$ID,"error":null,"result":[{"rows":[)") + row + "]}]}",
                    kSchemaReply, kMonitorReply};
    Client c(options(script));
    EXPECT_NO_THROW((void)c.connect()) << row;
  }
}

// Found by fuzz/ovsdb_client: an error object whose "error" member is not a string made
// describeError() throw.
TEST(ClientScripted, NonStringErrorMemberIsReported) {
  ServerScript script;
  script.turns = {kLeaderReply, R"({"id":$ID,"result":null,"error":{"error":42,"details":"d"}})"};
  Client c(options(script));
  Result<void> connected;
  EXPECT_NO_THROW(connected = c.connect());
  ASSERT_FALSE(connected);
  const std::string& err = connected.error().message();
  EXPECT_NE(err.find("get_schema"), std::string::npos) << err;
}

TEST(ClientScripted, MonitorFallbackAndBadNotificationDisconnects) {
  ServerScript script;
  script.turns = {
      kSchemaReply, R"({"id":$ID,"result":null,"error":"unknown method"})",
      R"({"id":$ID,"error":null,"result":{"Logical_Router":{"r1":{"new":{"name":"a"}}}}})"
      R"({"method":"update","params":["nld",{"Logical_Router":{"r2":{"new":{"name":"b"}}}}]})",
      R"({"method":"update","params":["nld",{"Logical_Router":7}]})"
      R"({"id":$ID,"error":null,"result":[{}]})"};
  auto o = options(script);
  o.leader_only = false;
  Client c(o);
  auto connected = c.connect();
  ASSERT_TRUE(connected) << connected.error().message();
  EXPECT_FALSE(c.usingMonitorCond());
  EXPECT_NE(c.replica().row("Logical_Router", "r1"), nullptr);
  EXPECT_NE(c.replica().row("Logical_Router", "r2"), nullptr);
  // A malformed notification drops the connection (the next connect resyncs).
  auto res = c.transact(Json::array(), std::chrono::hours(1));
  EXPECT_EQ(res.status, TxnResult::Status::kDisconnected);
  EXPECT_FALSE(c.connected());
  EXPECT_NE(c.lastError().find("bad update notification"), std::string::npos) << c.lastError();
}

}  // namespace
}  // namespace nld::ovsdb
