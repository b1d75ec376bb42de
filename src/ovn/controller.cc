#include "ovn/controller.h"

#include <algorithm>
#include <ctime>
#include <ostream>

#include "common/log.h"
#include "common/random.h"
#include "ovn/failover.h"

namespace nld::ovn {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Findings that the reconciler cannot fix itself (they are logged when they change).
bool reportOnly(Finding::Kind k) {
  return k != Finding::Kind::kPolicyMissing && k != Finding::Kind::kPolicyWrong &&
         k != Finding::Kind::kOptionWrong;
}

}  // namespace

Controller::Controller(ControllerOptions options, Metrics& metrics)
    : options_(std::move(options)), metrics_(metrics), client_([this] {
        auto c = options_.client;
        c.monitor = monitoredTables();
        return c;
      }()) {}

bool Controller::connectLogged() {
  if (auto connected = client_.connect(); !connected) {
    metrics_.errors.inc();
    metrics_.connected.set(0);
    log::error("plugin/ovn: cannot connect to OVN NB: {}", connected.error().message());
    return false;
  }
  metrics_.connects.inc();
  metrics_.connected.set(1);
  log::info("plugin/ovn: connected to {} ({} rows, {})", client_.currentRemote(),
            client_.replica().rowCount(), client_.usingMonitorCond() ? "monitor_cond" : "monitor");
  return true;
}

void Controller::publish(const NbSnapshot& nb, const std::vector<Finding>& findings) {
  uint64_t pg = 0;
  uint64_t underlay = 0;
  uint64_t shadow = 0;
  std::vector<std::string> reported;
  for (const auto& f : findings) {
    if (f.kind == Finding::Kind::kPortGroupMissing) ++pg;
    if (f.kind == Finding::Kind::kUnderlayUnconnected) ++underlay;
    if (f.kind == Finding::Kind::kShadowingPolicy) ++shadow;
    if (reportOnly(f.kind)) reported.push_back(f.message);
  }
  metrics_.nodes.set(static_cast<double>(nb.nodes.size()));
  metrics_.desired_policies.set(static_cast<double>(desiredPolicies(nb, options_.config).size()));
  metrics_.missing_port_groups.set(static_cast<double>(pg));
  metrics_.unconnected_underlay_switches.set(static_cast<double>(underlay));
  metrics_.shadowing_policies.set(static_cast<double>(shadow));
  uint64_t failed_over = 0;
  for (const auto& p : nb.policies) {
    const auto it = p.external_ids.find(kFailoverStateKey);
    if (it != p.external_ids.end() && it->second == kFailoverStateUnhealthy) ++failed_over;
  }
  metrics_.failed_over_policies.set(static_cast<double>(failed_over));
  if (reported != last_reported_) {
    for (const auto& m : reported) log::warn("plugin/ovn: {}", m);
    last_reported_ = std::move(reported);
  }
}

Controller::Pass Controller::reconcileOnce() {
  metrics_.reconciliations.inc();
  const auto& cfg = options_.config;
  const NbSnapshot nb = buildSnapshot(client_.replica(), cfg.router, cfg.node_switch);
  const Plan plan = computePlan(nb, cfg);
  publish(nb, runChecks(nb, cfg, plan));
  if (plan.empty()) {
    metrics_.last_success_unix.set(static_cast<double>(std::time(nullptr)));
    return Pass::kConverged;
  }
  auto ops = buildTransaction(plan, nb, cfg);
  if (!ops) {
    metrics_.errors.inc();
    log::error("plugin/ovn: cannot reconcile: {}", ops.error().message());
    return Pass::kFailed;
  }
  auto res = client_.transact(*ops, options_.transaction_timeout);
  switch (res.status) {
    case ovsdb::TxnResult::Status::kOk:
      metrics_.transactions.inc();
      metrics_.changes_applied.add(plan.changeCount());
      log::info("plugin/ovn: applied {} policy insert(s), {} delete(s){}", plan.inserts.size(),
                plan.deletes.size(),
                plan.option_change ? ", NB_Global option node_local_dns_ip=" +
                                         plan.option_value.value_or("<removed>")
                                   : "");
      return Pass::kChanged;
    case ovsdb::TxnResult::Status::kConflict:
      metrics_.conflicts.inc();
      log::info("plugin/ovn: concurrent NB change, recomputing");
      return Pass::kRetry;
    default:
      metrics_.errors.inc();
      log::error("plugin/ovn: transaction failed: {}", res.error);
      return Pass::kFailed;
  }
}

int Controller::run(const std::atomic<bool>& stop) {
  ovsdb::Backoff backoff;
  auto next_connect = Clock::now();
  bool dirty = true;
  auto due_at = Clock::now();
  auto first_dirty = Clock::now();
  uint64_t last_seq = 0;
  auto last_resync = Clock::now();
  while (!stop.load()) {
    auto now = Clock::now();
    if (!client_.connected()) {
      metrics_.connected.set(0);
      if (now < next_connect) {
        client_.poll(milliseconds(0));
        auto wait = std::min<Clock::duration>(milliseconds(100), next_connect - now);
        std::this_thread::sleep_for(wait);
        continue;
      }
      if (!connectLogged()) {
        auto d = backoff.next();
        log::info("plugin/ovn: retrying in {} ms", d.count());
        next_connect = Clock::now() + d;
        continue;
      }
      backoff.reset();
      dirty = true;
      due_at = first_dirty = Clock::now();
      last_seq = client_.replica().seqno();
    }
    if (!client_.poll(milliseconds(100))) {
      metrics_.connected.set(0);
      metrics_.errors.inc();
      log::warn("plugin/ovn: lost connection to {}: {}", client_.currentRemote(),
                client_.lastError());
      next_connect = Clock::now() + backoff.next();
      continue;
    }
    now = Clock::now();
    if (client_.replica().seqno() != last_seq) {
      last_seq = client_.replica().seqno();
      if (!dirty) first_dirty = now;
      dirty = true;
      // Trailing debounce, but never postpone a pass by more than 10 debounce periods.
      due_at = std::min(now + options_.debounce, first_dirty + 10 * options_.debounce);
    }
    if (now - last_resync >= options_.resync_interval) {
      last_resync = now;
      if (!dirty) first_dirty = now;
      dirty = true;
      due_at = now;
    }
    if (!dirty || now < due_at) continue;
    switch (reconcileOnce()) {
      case Pass::kConverged:
      case Pass::kChanged:
        dirty = false;
        break;
      case Pass::kRetry:
        // Let the other writer's update arrive; jitter so racing controllers do not collide again.
        due_at = Clock::now() + milliseconds(100 + static_cast<int64_t>(randomBelow(400)));
        break;
      case Pass::kFailed:
        due_at = Clock::now() + milliseconds(2000);
        break;
    }
  }
  client_.disconnect("shutting down");
  metrics_.connected.set(0);
  return 0;
}

int Controller::check(std::ostream& out) {
  if (!connectLogged()) return 1;
  const auto& cfg = options_.config;
  const NbSnapshot nb = buildSnapshot(client_.replica(), cfg.router, cfg.node_switch);
  const Plan plan = computePlan(nb, cfg);
  const auto findings = runChecks(nb, cfg, plan);
  out << formatReport(nb, cfg, findings);
  out.flush();
  return findings.empty() ? 0 : 1;
}

int Controller::dryRun(std::ostream& out) {
  if (!connectLogged()) return 1;
  const auto& cfg = options_.config;
  const NbSnapshot nb = buildSnapshot(client_.replica(), cfg.router, cfg.node_switch);
  const Plan plan = computePlan(nb, cfg);
  publish(nb, runChecks(nb, cfg, plan));
  if (plan.empty()) {
    log::info("plugin/ovn: dry run: NB already converged, nothing to write");
    return 0;
  }
  auto ops = buildTransaction(plan, nb, cfg);
  if (!ops) {
    log::error("plugin/ovn: dry run: cannot reconcile: {}", ops.error().message());
    return 1;
  }
  ovsdb::Json params = ovsdb::Json::array(
      {client_.schema().name().empty() ? "OVN_Northbound" : client_.schema().name()});
  for (auto& op : *ops) params.push_back(op);
  out << params.dump() << "\n";
  out.flush();
  return 0;
}

}  // namespace nld::ovn
