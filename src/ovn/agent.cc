#include "ovn/agent.h"

#include <algorithm>
#include <thread>

#include "common/log.h"
#include "common/random.h"

namespace nld::ovn {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

}  // namespace

Agent::Agent(AgentOptions options, Prober& prober)
    : options_(std::move(options)),
      prober_(prober),
      client_([this] {
        auto c = options_.client;
        c.monitor = monitoredTables();
        return c;
      }()),
      trackers_(options_.config.reconcile.dnsIps.size(), HealthTracker(options_.health)),
      lastWhy_(options_.config.reconcile.dnsIps.size()) {}

void Agent::probeRound() {
  const auto results = prober_.probe();
  const auto now = Clock::now();
  const auto& ips = options_.config.reconcile.dnsIps;
  for (std::size_t i = 0; i < ips.size() && i < results.size(); ++i) {
    if (!results[i].ok) lastWhy_[i] = results[i].why;
    if (!trackers_[i].observe(now, results[i].ok)) continue;
    dirty_ = true;
    if (trackers_[i].state() == Health::kUnhealthy) {
      log::warn("plugin/ovn: agent: node-local DNS {} on node {} is unhealthy ({} failed probes: {}); "
                "failing over (hold {} ms)",
                ips[i], options_.config.node, options_.health.fall, lastWhy_[i], trackers_[i].hold().count());
    } else {
      log::info("plugin/ovn: agent: node-local DNS {} on node {} is {}", ips[i], options_.config.node,
                healthName(trackers_[i].state()));
    }
  }
}

bool Agent::reconcile() {
  const auto& cfg = options_.config;
  const NbSnapshot nb = buildSnapshot(client_.replica(), cfg.reconcile.router, cfg.reconcile.nodeSwitch);
  std::map<std::string, Health> health;
  for (std::size_t i = 0; i < cfg.reconcile.dnsIps.size(); ++i) health[cfg.reconcile.dnsIps[i]] = trackers_[i].state();
  AgentPlan plan = planAgent(nb, cfg, health);
  if (plan.notes != lastNotes_) {
    for (const auto& n : plan.notes) log::warn("plugin/ovn: agent: {}", n);
    lastNotes_ = plan.notes;
  }
  if (plan.updates.empty()) return true;
  auto res = client_.transact(buildAgentTransaction(plan.updates), options_.transactionTimeout);
  switch (res.status) {
    case ovsdb::TxnResult::Status::kOk:
      for (const auto& u : plan.updates) log::info("plugin/ovn: agent: policy {} of node {}: {}", u.current.uuid, cfg.node, u.describe);
      return true;
    case ovsdb::TxnResult::Status::kConflict:
      log::info("plugin/ovn: agent: concurrent change of node {}'s policy, recomputing", cfg.node);
      return false;
    default:
      log::error("plugin/ovn: agent: transaction failed: {}", res.error);
      return false;
  }
}

int Agent::run(const std::atomic<bool>& stop) {
  // Short reconnect backoff: while the NB is away the node's state may change, and the write that
  // follows a reconnect is what makes the fail-over (or the return) effective.
  ovsdb::Backoff backoff(milliseconds(250), milliseconds(2000));
  auto nextConnect = Clock::now();
  auto nextProbe = Clock::now();
  auto retryAt = Clock::now();
  uint64_t lastSeq = 0;
  while (!stop.load()) {
    auto now = Clock::now();
    if (now >= nextProbe) {
      probeRound();
      now = Clock::now();
      // Fixed rate; a round that ran into its timeout (a hung cache) is followed at once, never
      // by a burst of catch-up rounds.
      nextProbe = std::max(nextProbe + options_.probeInterval, now);
    }
    if (!client_.connected() && now >= nextConnect) {
      std::string err;
      if (client_.connect(&err)) {
        backoff.reset();
        log::info("plugin/ovn: agent: connected to {} ({} rows)", client_.currentRemote(), client_.replica().rowCount());
        dirty_ = true;
        retryAt = now;
        lastSeq = client_.replica().seqno();
      } else {
        const auto d = backoff.next();
        log::error("plugin/ovn: agent: cannot connect to OVN NB: {}; retrying in {} ms", err, d.count());
        nextConnect = Clock::now() + d;
      }
      continue;  // the connect may have taken a while: probe first if due
    }
    const auto untilProbe = std::chrono::duration_cast<milliseconds>(nextProbe - Clock::now());
    const auto wait = std::clamp(untilProbe, milliseconds(0), options_.probeInterval);
    if (!client_.connected()) {
      std::this_thread::sleep_for(std::min<Clock::duration>(wait, std::max<Clock::duration>(nextConnect - now, {})));
      continue;
    }
    if (!client_.poll(wait)) {
      log::warn("plugin/ovn: agent: lost connection to {}: {}", client_.currentRemote(), client_.lastError());
      nextConnect = Clock::now() + backoff.next();
      continue;
    }
    if (client_.replica().seqno() != lastSeq) {
      lastSeq = client_.replica().seqno();
      dirty_ = true;  // a neighbour's row, a join IP or our own row changed: recompute
    }
    if (dirty_ && Clock::now() >= retryAt) {
      if (reconcile()) {
        dirty_ = false;
      } else {
        // Let the other writer's update arrive; jitter so two writers do not collide again.
        retryAt = Clock::now() + milliseconds(50 + static_cast<int64_t>(randomBelow(200)));
      }
    }
  }
  client_.disconnect("shutting down");
  return 0;
}

}  // namespace nld::ovn
