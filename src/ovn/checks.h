#pragma once
// Health checks of the NB for NodeLocal DNS (used by `check`, and logged + exported as metrics
// by `run`): missing router/switch, missing node port groups (reported, never created),
// policies missing or wrong, underlay switches not connected to the cluster router (no U2O), and
// higher-priority router policies that steer a node's pods elsewhere (EIP/SNAT, kube-ovn issues
// 1277/1934/2595).
//
// Thread affinity: pure functions.
#include <string>
#include <vector>

#include "ovn/desired_state.h"
#include "ovn/nb_snapshot.h"

namespace nld::ovn {

struct Finding {
  enum class Kind {
    kRouterMissing,
    kNodeSwitchMissing,
    kPortGroupMissing,
    kPolicyMissing,
    kPolicyWrong,  ///< an owned policy that would be deleted (stale, edited, duplicate)
    kOptionWrong,
    kUnderlayUnconnected,
    kShadowingPolicy,
  };
  Kind kind;
  std::string subject;  ///< node, switch, policy uuid ...
  std::string message;  ///< one line, human-readable
};

/// Short stable name of a kind ("port_group_missing", ...), used as a metric label.
const char* kindName(Finding::Kind kind);

/// Every problem found; empty = healthy.
std::vector<Finding> runChecks(const NbSnapshot& nb, const ReconcileConfig& config,
                               const Plan& plan);

/// The source (`*.src == X`) or destination operands of a match: "$name" references and IP/CIDR
/// literals, for `==` comparisons with a single value or a `{a, b}` set. Exposed for tests.
std::vector<std::string> matchOperands(const std::string& match, const std::string& field);

/// Human-readable report for `check`: nodes, their policies, then findings.
std::string formatReport(const NbSnapshot& nb, const ReconcileConfig& config,
                         const std::vector<Finding>& findings);

}  // namespace nld::ovn
