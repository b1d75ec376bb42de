#pragma once
// Per-node fail-over of NodeLocal DNS (issue 10 §3): the pure logic of
// `ovn-localdns-controller agent`. See docs/ovn-controller.md "Fail-over agent".
//
// Row protocol. Each node's local-DNS policy (one per DNS IP, written by `run` or kube-ovn) is in
// one of two shapes:
//   * healthy: exactly Kube-OVN's row (priority, match, reroute, nexthops = [own join IP], the four
//     external_ids) and neither marker key below;
//   * failed over: same priority, match, action and external_ids, plus
//     localDnsCacheState=unhealthy and localDnsCacheFailoverTo=<node,node,...> (empty when no
//     neighbour is healthy), nexthops = the join IPs of those neighbours (own join IP if none).
// Only the node's own agent writes that node's row (update in place, guarded by a "wait" on the
// row's previous nexthops/external_ids). `run` accepts a failed-over row as long as every nexthop
// is a current node's join IP of the row's family (it never "fixes" it back), so the two never
// fight. A neighbour is healthy iff its row for the same DNS IP has the healthy shape: the NB is
// the only channel between agents.
//
// Thread affinity: pure functions and a plain state machine (fed by the agent's thread).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "ovn/desired_state.h"
#include "ovn/nb_snapshot.h"
#include "ovsdb/datum.h"

namespace nld::ovn {

/// external_ids key and value marking a row the agent failed over.
inline constexpr const char* kFailoverStateKey = "localDnsCacheState";
inline constexpr const char* kFailoverStateUnhealthy = "unhealthy";
/// external_ids key listing the neighbour nodes the row points to (comma-separated, rank order).
inline constexpr const char* kFailoverToKey = "localDnsCacheFailoverTo";

/// True if the policy carries the agent's fail-over marker.
bool isFailedOver(const Policy& policy);

/// True if `existing` is a fail-over variant of `desired` that `run` and `check` must accept:
/// marker present, priority/action/match/external_ids as desired, no deprecated nexthop, and a
/// non-empty nexthops set whose every element is the join IP (of desired.family) of a node in `nb`.
bool failoverAcceptable(const Policy& existing, const DesiredPolicy& desired, int64_t priority,
                        const NbSnapshot& nb);

// ---------------------------------------------------------------------------------------------
// Health state machine with hysteresis

enum class Health { kUnknown, kHealthy, kUnhealthy };

const char* healthName(Health h);

struct HealthOptions {
  int fall = 3;                                   ///< consecutive failed rounds → unhealthy
  int rise = 4;                                   ///< consecutive good rounds → healthy ...
  std::chrono::milliseconds rise_min_span{1000};  ///< ... spanning at least this long
  std::chrono::milliseconds hold_base{3000};      ///< minimum time unhealthy before healthy again
  std::chrono::milliseconds hold_max{60000};      ///< cap of the doubling hold (flap damping)
  /// A healthy period shorter than this counts as a flap: the next hold doubles. Longer: the hold
  /// returns to hold_base.
  std::chrono::milliseconds stable_period{30000};
};

/// Turns a stream of probe-round results into Unknown → Healthy/Unhealthy decisions. Going
/// unhealthy is fast (`fall` rounds, availability first); going healthy needs `rise` good rounds
/// over `rise_min_span` and the hold time to have passed since the node went unhealthy. The hold
/// doubles (up to hold_max) each time the cache fails again within `stable_period` of recovering,
/// so a flapping cache produces at most two NB writes per hold period.
class HealthTracker {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  explicit HealthTracker(HealthOptions options = {})
      : options_(options), hold_(options.hold_base) {}

  /// Feeds the result of one probe round observed at `now`. @return true if state() changed.
  bool observe(TimePoint now, bool ok);

  Health state() const { return state_; }
  /// When the current state was entered (meaningless while kUnknown).
  TimePoint since() const { return since_; }
  /// The hold that applies to the current (or next) unhealthy period.
  std::chrono::milliseconds hold() const { return hold_; }

 private:
  HealthOptions options_;
  Health state_ = Health::kUnknown;
  TimePoint since_{};
  TimePoint first_ok_{};
  int oks_ = 0;
  int fails_ = 0;
  bool recovered_ = false;  ///< the current healthy period followed an unhealthy one
  std::chrono::milliseconds hold_;
};

// ---------------------------------------------------------------------------------------------
// Neighbour choice

/// Rendezvous (highest-random-weight) score of `candidate` for the failing node `self`: a fixed
/// 64-bit hash (FNV-1a + splitmix64 finaliser), stable across builds and hosts.
uint64_t rendezvousScore(std::string_view self, std::string_view candidate);

/// The up to `k` candidates with the highest scores for `self` (ties by name), best first. Each
/// failing node gets its own ranking, so the load of several failing nodes spreads over the
/// healthy ones, and one neighbour's change moves only the nodes that ranked it.
std::vector<std::string> rendezvousPick(std::string_view self, std::vector<std::string> candidates,
                                        std::size_t k);

/// Nodes (other than `self`) whose row for `dns_ip` has the healthy shape (the node's own join IP
/// as the only nexthop, no fail-over marker), in name order.
std::vector<std::string> healthyNeighbours(const NbSnapshot& nb, const ReconcileConfig& config,
                                           const std::string& self, const std::string& dns_ip);

// ---------------------------------------------------------------------------------------------
// What the agent writes

struct AgentConfig {
  std::string node;
  ReconcileConfig reconcile;
  std::size_t max_neighbours = 3;
};

/// One in-place update of an own row.
struct RowUpdate {
  Policy current;
  std::vector<std::string> nexthops;  ///< sorted
  std::map<std::string, std::string> external_ids;
  std::string describe;  ///< for the log: "healthy" / "failed over to a,b"
};

struct AgentPlan {
  std::vector<RowUpdate> updates;
  std::vector<std::string> notes;  ///< why a DNS IP's row is not handled (logged when they change)
};

/// The own rows whose nexthops/external_ids must change for the given per-DNS-IP health (IPs in
/// kUnknown state or absent from `health` are left alone). Own rows = owned policies with
/// external_ids node=<self> and the node's match for that DNS IP; the agent never inserts or
/// deletes rows (that is `run`'s / kube-ovn's job).
AgentPlan planAgent(const NbSnapshot& nb, const AgentConfig& config,
                    const std::map<std::string, Health>& health);

/// The transact operations for `updates`: per row a "wait" on its current nexthops and
/// external_ids (so a concurrent writer makes the transaction fail instead of being overwritten)
/// and an "update".
ovsdb::Json buildAgentTransaction(const std::vector<RowUpdate>& updates);

}  // namespace nld::ovn
