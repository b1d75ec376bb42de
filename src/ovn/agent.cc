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
      trackers_(options_.config.reconcile.dns_ips.size(), HealthTracker(options_.health)),
      last_why_(options_.config.reconcile.dns_ips.size()) {}

void Agent::probeRound() {
  const auto results = prober_.probe();
  const auto now = Clock::now();
  const auto& ips = options_.config.reconcile.dns_ips;
  for (std::size_t i = 0; i < ips.size() && i < results.size(); ++i) {
    if (!results[i].ok) last_why_[i] = results[i].why;
    if (!trackers_[i].observe(now, results[i].ok)) continue;
    dirty_ = true;
    if (trackers_[i].state() == Health::kUnhealthy) {
      log::warn(
          "plugin/ovn: agent: node-local DNS {} on node {} is unhealthy ({} failed probes: {}); "
          "failing over (hold {} ms)",
          ips[i], options_.config.node, options_.health.fall, last_why_[i],
          trackers_[i].hold().count());
    } else {
      log::info("plugin/ovn: agent: node-local DNS {} on node {} is {}", ips[i],
                options_.config.node, healthName(trackers_[i].state()));
    }
  }
}

bool Agent::reconcile() {
  const auto& cfg = options_.config;
  const NbSnapshot nb =
      buildSnapshot(client_.replica(), cfg.reconcile.router, cfg.reconcile.node_switch);
  std::map<std::string, Health> health;
  for (std::size_t i = 0; i < cfg.reconcile.dns_ips.size(); ++i)
    health[cfg.reconcile.dns_ips[i]] = trackers_[i].state();
  AgentPlan plan = planAgent(nb, cfg, health);
  if (plan.notes != last_notes_) {
    for (const auto& n : plan.notes) log::warn("plugin/ovn: agent: {}", n);
    last_notes_ = plan.notes;
  }
  if (plan.updates.empty()) return true;
  auto res = client_.transact(buildAgentTransaction(plan.updates), options_.transaction_timeout);
  switch (res.status) {
    case ovsdb::TxnResult::Status::kOk:
      for (const auto& u : plan.updates)
        log::info("plugin/ovn: agent: policy {} of node {}: {}", u.current.uuid, cfg.node,
                  u.describe);
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
  auto next_connect = Clock::now();
  auto next_probe = Clock::now();
  auto retry_at = Clock::now();
  uint64_t last_seq = 0;
  while (!stop.load()) {
    auto now = Clock::now();
    if (now >= next_probe) {
      probeRound();
      now = Clock::now();
      // Fixed rate; a round that ran into its timeout (a hung cache) is followed at once, never
      // by a burst of catch-up rounds.
      next_probe = std::max(next_probe + options_.probe_interval, now);
    }
    if (!client_.connected() && now >= next_connect) {
      if (auto connected = client_.connect()) {
        backoff.reset();
        log::info("plugin/ovn: agent: connected to {} ({} rows)", client_.currentRemote(),
                  client_.replica().rowCount());
        dirty_ = true;
        retry_at = now;
        last_seq = client_.replica().seqno();
      } else {
        const auto d = backoff.next();
        log::error("plugin/ovn: agent: cannot connect to OVN NB: {}; retrying in {} ms",
                   connected.error().message(), d.count());
        next_connect = Clock::now() + d;
      }
      continue;  // the connect may have taken a while: probe first if due
    }
    const auto until_probe = std::chrono::duration_cast<milliseconds>(next_probe - Clock::now());
    const auto wait = std::clamp(until_probe, milliseconds(0), options_.probe_interval);
    if (!client_.connected()) {
      std::this_thread::sleep_for(
          std::min<Clock::duration>(wait, std::max<Clock::duration>(next_connect - now, {})));
      continue;
    }
    if (!client_.poll(wait)) {
      log::warn("plugin/ovn: agent: lost connection to {}: {}", client_.currentRemote(),
                client_.lastError());
      next_connect = Clock::now() + backoff.next();
      continue;
    }
    if (client_.replica().seqno() != last_seq) {
      last_seq = client_.replica().seqno();
      dirty_ = true;  // a neighbour's row, a join IP or our own row changed: recompute
    }
    if (dirty_ && Clock::now() >= retry_at) {
      if (reconcile()) {
        dirty_ = false;
      } else {
        // Let the other writer's update arrive; jitter so two writers do not collide again.
        retry_at = Clock::now() + milliseconds(50 + static_cast<int64_t>(randomBelow(200)));
      }
    }
  }
  client_.disconnect("shutting down");
  return 0;
}

}  // namespace nld::ovn
