// Fuzz target: a byte stream from an OVSDB server → JsonFramer → JSON parse → update/update2 (and
// monitor replies) applied to a Replica with an NB-like schema → the local-DNS snapshot, plan,
// checks and transaction built from whatever the replica now holds.
//
// Input layout: byte 0 selects the chunk size (1..256) used to feed the framer (exercises partial
// messages); the rest is the stream.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ovn/checks.h"
#include "ovn/desired_state.h"
#include "ovn/nb_snapshot.h"
#include "ovsdb/json_framer.h"
#include "ovsdb/replica.h"
#include "ovsdb/schema.h"

namespace {

using nld::ovsdb::Json;

const nld::ovsdb::Schema& fuzzSchema() {
  static const nld::ovsdb::Schema kSchema = [] {
    const char* text = R"({"name":"OVN_Northbound","tables":{
      "NB_Global":{"columns":{"options":{"type":{"key":"string","value":"string","min":0,"max":"unlimited"}}}},
      "Logical_Router":{"columns":{"name":{"type":"string"},
        "policies":{"type":{"key":{"type":"uuid"},"min":0,"max":"unlimited"}},
        "ports":{"type":{"key":{"type":"uuid"},"min":0,"max":"unlimited"}}}},
      "Logical_Router_Policy":{"columns":{"priority":{"type":"integer"},"match":{"type":"string"},
        "action":{"type":"string"},"nexthops":{"type":{"key":"string","min":0,"max":"unlimited"}},
        "nexthop":{"type":{"key":"string","min":0,"max":1}},
        "external_ids":{"type":{"key":"string","value":"string","min":0,"max":"unlimited"}}}},
      "Logical_Router_Port":{"columns":{"name":{"type":"string"}}},
      "Logical_Switch":{"columns":{"name":{"type":"string"},
        "ports":{"type":{"key":{"type":"uuid"},"min":0,"max":"unlimited"}}}},
      "Logical_Switch_Port":{"columns":{"name":{"type":"string"},"type":{"type":"string"},
        "addresses":{"type":{"key":"string","min":0,"max":"unlimited"}},
        "options":{"type":{"key":"string","value":"string","min":0,"max":"unlimited"}}}},
      "Port_Group":{"columns":{"name":{"type":"string"},
        "ports":{"type":{"key":{"type":"uuid"},"min":0,"max":"unlimited"}}}},
      "Address_Set":{"columns":{"name":{"type":"string"},
        "addresses":{"type":{"key":"string","min":0,"max":"unlimited"}}}}}})";
    return *nld::ovsdb::Schema::fromJson(Json::parse(text));
  }();
  return kSchema;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::size_t chunk = 1 + data[0];
  std::string_view stream(static_cast<const char*>(static_cast<const void*>(data + 1)), size - 1);
  nld::ovsdb::JsonFramer framer(1 << 16);
  nld::ovsdb::Replica replica;
  std::vector<std::string> messages;
  for (std::size_t off = 0; off < stream.size(); off += chunk) {
    if (framer.feed(stream.substr(off, chunk), messages) != nld::ovsdb::JsonFramer::Status::kOk)
      break;
  }
  for (const auto& m : messages) {
    Json j = Json::parse(m, nullptr, false);
    if (j.is_discarded() || !j.is_object()) continue;
    auto method = j.find("method");
    auto params = j.find("params");
    if (method != j.end() && params != j.end() && params->is_array() && params->size() == 2) {
      if (*method == "update2") (void)replica.applyUpdate2((*params)[1], fuzzSchema());
      if (*method == "update") (void)replica.applyUpdate((*params)[1]);
    } else if (auto result = j.find("result"); result != j.end()) {
      (void)replica.applyUpdate2(*result, fuzzSchema());
    }
  }
  nld::ovn::ReconcileConfig cfg;
  cfg.dns_ips = {"169.254.20.10", "fd00::a"};
  auto nb = nld::ovn::buildSnapshot(replica, cfg.router, cfg.node_switch);
  auto plan = nld::ovn::computePlan(nb, cfg);
  auto findings = nld::ovn::runChecks(nb, cfg, plan);
  (void)nld::ovn::formatReport(nb, cfg, findings);
  (void)nld::ovn::buildTransaction(plan, nb, cfg);
  return 0;
}
