// Fuzz target: ovsdb::Client against a server whose every byte comes from the input — the
// _Server leader query, get_schema (Schema::fromJson), monitor_cond / monitor fallback replies
// (Replica), update/update2/echo notifications arriving at any point (JSON-RPC dispatch), and
// transaction replies (conflict / not-leader / error classification). The server is the
// in-memory ScriptedStream (tests/ovsdb/scripted_stream.h): no sockets, no clocks.
//
// Input layout: byte 0 selects the read chunk (1..4096 bytes per read: partial messages),
// byte 1 flags (bit 0: leader_only); the rest is the server's turns separated by NUL bytes, one
// turn answering each client request, with "$ID" replaced by the request's id.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "ovsdb/client.h"
#include "ovsdb/scripted_stream.h"

namespace {

using nld::ovsdb::Json;

void touchReplica(const nld::ovsdb::Replica& replica) {
  for (const char* table :
       {"NB_Global", "Logical_Router", "Logical_Router_Policy", "Logical_Switch_Port"}) {
    for (const auto& [uuid, row] : replica.table(table)) {
      if (!row.is_object()) continue;
      for (const auto& [column, value] : row.items()) {
        (void)nld::ovsdb::stringSet(value);
        (void)nld::ovsdb::stringMap(value);
        (void)nld::ovsdb::uuidSet(value);
        (void)nld::ovsdb::integerOf(value);
        (void)nld::ovsdb::optionalString(value);
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  nld::ovsdb::testing::ServerScript script;
  script.chunk = 1 + static_cast<std::size_t>(data[0]) * 16;
  const bool leader_only = (data[1] & 1) != 0;
  std::string_view rest(static_cast<const char*>(static_cast<const void*>(data + 2)), size - 2);
  for (;;) {
    const std::size_t nul = rest.find('\0');
    script.turns.emplace_back(rest.substr(0, nul));
    if (nul == std::string_view::npos) break;
    rest.remove_prefix(nul + 1);
  }

  auto options = nld::ovsdb::testing::scriptedOptions(script);
  options.leader_only = leader_only;
  options.monitor = {{"NB_Global", {}},
                     {"Logical_Router", {"name", "policies"}},
                     {"Logical_Router_Policy", {}},
                     {"Logical_Switch_Port", {"name", "addresses", "missing"}}};
  nld::ovsdb::Client client(options);
  // A failed connect leaves the rest of the script to the next attempt, as a reconnect would.
  for (int attempt = 0; attempt < 3 && !client.connect(); ++attempt) {
  }
  touchReplica(client.replica());
  const Json ops = Json::parse(R"([
    {"op":"wait","table":"Logical_Router_Policy","timeout":0,"where":[["priority","==",30000]],
     "columns":["match"],"until":"==","rows":[{"match":"m"}]},
    {"op":"insert","table":"Logical_Router_Policy","row":{"priority":30000},"uuid-name":"p"}])");
  for (int txn = 0; txn < 3 && client.connected(); ++txn) {
    auto result = client.transact(ops, std::chrono::hours(1));
    (void)result.error.size();
  }
  client.poll(std::chrono::milliseconds(0));
  touchReplica(client.replica());
  (void)client.replica().rowCount();
  return 0;
}
