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
  return k != Finding::Kind::kPolicyMissing && k != Finding::Kind::kPolicyWrong && k != Finding::Kind::kOptionWrong;
}

}  // namespace

Controller::Controller(ControllerOptions options, Metrics& metrics)
    : options_(std::move(options)), metrics_(metrics), client_([this] {
        auto c = options_.client;
        c.monitor = monitoredTables();
        return c;
      }()) {}

bool Controller::connectLogged() {
  std::string err;
  if (!client_.connect(&err)) {
    metrics_.errors.inc();
    metrics_.connected.set(0);
    log::error("plugin/ovn: cannot connect to OVN NB: {}", err);
    return false;
  }
  metrics_.connects.inc();
  metrics_.connected.set(1);
  log::info("plugin/ovn: connected to {} ({} rows, {})", client_.currentRemote(), client_.replica().rowCount(),
            client_.usingMonitorCond() ? "monitor_cond" : "monitor");
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
  metrics_.desiredPolicies.set(static_cast<double>(desiredPolicies(nb, options_.config).size()));
  metrics_.missingPortGroups.set(static_cast<double>(pg));
  metrics_.unconnectedUnderlaySwitches.set(static_cast<double>(underlay));
  metrics_.shadowingPolicies.set(static_cast<double>(shadow));
  uint64_t failed_over = 0;
  for (const auto& p : nb.policies) {
    const auto it = p.externalIds.find(kFailoverStateKey);
    if (it != p.externalIds.end() && it->second == kFailoverStateUnhealthy) ++failed_over;
  }
  metrics_.failedOverPolicies.set(static_cast<double>(failed_over));
  if (reported != lastReported_) {
    for (const auto& m : reported) log::warn("plugin/ovn: {}", m);
    lastReported_ = std::move(reported);
  }
}

Controller::Pass Controller::reconcileOnce() {
  metrics_.reconciliations.inc();
  const auto& cfg = options_.config;
  const NbSnapshot nb = buildSnapshot(client_.replica(), cfg.router, cfg.nodeSwitch);
  const Plan plan = computePlan(nb, cfg);
  publish(nb, runChecks(nb, cfg, plan));
  if (plan.empty()) {
    metrics_.lastSuccessUnix.set(static_cast<double>(std::time(nullptr)));
    return Pass::kConverged;
  }
  std::string err;
  auto ops = buildTransaction(plan, nb, cfg, &err);
  if (!ops) {
    metrics_.errors.inc();
    log::error("plugin/ovn: cannot reconcile: {}", err);
    return Pass::kFailed;
  }
  auto res = client_.transact(*ops, options_.transactionTimeout);
  switch (res.status) {
    case ovsdb::TxnResult::Status::kOk:
      metrics_.transactions.inc();
      metrics_.changesApplied.add(plan.changeCount());
      log::info("plugin/ovn: applied {} policy insert(s), {} delete(s){}", plan.inserts.size(), plan.deletes.size(),
                plan.optionChange ? ", NB_Global option node_local_dns_ip=" + plan.optionValue.value_or("<removed>")
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
  auto nextConnect = Clock::now();
  bool dirty = true;
  auto dueAt = Clock::now();
  auto firstDirty = Clock::now();
  uint64_t lastSeq = 0;
  auto lastResync = Clock::now();
  while (!stop.load()) {
    auto now = Clock::now();
    if (!client_.connected()) {
      metrics_.connected.set(0);
      if (now < nextConnect) {
        client_.poll(milliseconds(0));
        auto wait = std::min<Clock::duration>(milliseconds(100), nextConnect - now);
        std::this_thread::sleep_for(wait);
        continue;
      }
      if (!connectLogged()) {
        auto d = backoff.next();
        log::info("plugin/ovn: retrying in {} ms", d.count());
        nextConnect = Clock::now() + d;
        continue;
      }
      backoff.reset();
      dirty = true;
      dueAt = firstDirty = Clock::now();
      lastSeq = client_.replica().seqno();
    }
    if (!client_.poll(milliseconds(100))) {
      metrics_.connected.set(0);
      metrics_.errors.inc();
      log::warn("plugin/ovn: lost connection to {}: {}", client_.currentRemote(), client_.lastError());
      nextConnect = Clock::now() + backoff.next();
      continue;
    }
    now = Clock::now();
    if (client_.replica().seqno() != lastSeq) {
      lastSeq = client_.replica().seqno();
      if (!dirty) firstDirty = now;
      dirty = true;
      // Trailing debounce, but never postpone a pass by more than 10 debounce periods.
      dueAt = std::min(now + options_.debounce, firstDirty + 10 * options_.debounce);
    }
    if (now - lastResync >= options_.resyncInterval) {
      lastResync = now;
      if (!dirty) firstDirty = now;
      dirty = true;
      dueAt = now;
    }
    if (!dirty || now < dueAt) continue;
    switch (reconcileOnce()) {
      case Pass::kConverged:
      case Pass::kChanged:
        dirty = false;
        break;
      case Pass::kRetry:
        // Let the other writer's update arrive; jitter so racing controllers do not collide again.
        dueAt = Clock::now() + milliseconds(100 + static_cast<int64_t>(randomBelow(400)));
        break;
      case Pass::kFailed:
        dueAt = Clock::now() + milliseconds(2000);
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
  const NbSnapshot nb = buildSnapshot(client_.replica(), cfg.router, cfg.nodeSwitch);
  const Plan plan = computePlan(nb, cfg);
  const auto findings = runChecks(nb, cfg, plan);
  out << formatReport(nb, cfg, findings);
  out.flush();
  return findings.empty() ? 0 : 1;
}

int Controller::dryRun(std::ostream& out) {
  if (!connectLogged()) return 1;
  const auto& cfg = options_.config;
  const NbSnapshot nb = buildSnapshot(client_.replica(), cfg.router, cfg.nodeSwitch);
  const Plan plan = computePlan(nb, cfg);
  publish(nb, runChecks(nb, cfg, plan));
  if (plan.empty()) {
    log::info("plugin/ovn: dry run: NB already converged, nothing to write");
    return 0;
  }
  std::string err;
  auto ops = buildTransaction(plan, nb, cfg, &err);
  if (!ops) {
    log::error("plugin/ovn: dry run: cannot reconcile: {}", err);
    return 1;
  }
  ovsdb::Json params = ovsdb::Json::array({client_.schema().name().empty() ? "OVN_Northbound" : client_.schema().name()});
  for (auto& op : *ops) params.push_back(op);
  out << params.dump() << "\n";
  out.flush();
  return 0;
}

}  // namespace nld::ovn
