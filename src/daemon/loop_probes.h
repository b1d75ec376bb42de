#pragma once
// The `loop` plugin's active half (CoreDNS plugin/loop), in one place. The passive half is the
// pipeline counting its own probe name coming back (plan::LoopDetector::seen, plan/plan.h).
//
// For every block with `loop`, LoopProbes sends `HINFO <rand>.<rand>.<zone>` to the block's own
// listener until one exchange completes: an answer means the query left and came back without
// passing us again, so probing ends (LoopDetector::active = false) and the pipeline stops
// counting. If the forward path loops back to us, the pipeline sees the probe again on every
// turn; once a detector counted it more than twice, detected() returns the fatal line and the
// daemon exits 1 (daemon.h).
//
// Schedule per block (as CoreDNS, and as node-cache did with one thread per block): up to
// kAttempts sends; after a send, wait up to kAnswerWait for the answer; without one (timeout or
// a socket error such as ICMP port unreachable), pause kPause and send again. Driven by tick()
// on the daemon's control thread against a net::TimeSource, with non-blocking sockets: no
// threads, no sleeps, so tests move a fake clock through the schedule.
//
// Thread affinity: one thread (the daemon's control thread) calls every method.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "net/event_loop.h"
#include "net/fd.h"
#include "plan/plan.h"

namespace nld::daemon {

class LoopProbes {
 public:
  static constexpr int kAttempts = 30;
  static constexpr std::chrono::seconds kAnswerWait{2};
  static constexpr std::chrono::seconds kPause{1};

  /// One block to probe: its detector (shared with the pipeline) and its first zone (the log
  /// line names it).
  struct Target {
    std::shared_ptr<plan::LoopDetector> detector;
    std::string zone;
  };
  /// The blocks of `plan` with `loop`, in block order.
  static std::vector<Target> targetsOf(const plan::Plan& plan);

  explicit LoopProbes(net::TimeSource& time = net::systemTime());
  ~LoopProbes();
  LoopProbes(const LoopProbes&) = delete;
  LoopProbes& operator=(const LoopProbes&) = delete;

  /// Probes `targets` from now on (the first probes leave at once), replacing the targets of a
  /// previous plan: only the loaded plan's detectors count queries.
  void start(std::vector<Target> targets);
  /// Reads answers that arrived, ends exchanges that timed out and sends the probes that are
  /// due. Call it often (the daemon: every 100 ms); its resolution is the schedule's.
  void tick();
  /// Closes every probe socket and ends probing (detectors are deactivated). Idempotent.
  void stop();

  /// The fatal log line if a detector counted its probe more than twice (CoreDNS: "seen > 2"),
  /// else nullopt. Checks every target, also those that finished probing.
  std::optional<std::string> detected() const;
  /// Targets still probing (sending or waiting).
  size_t probing() const;

 private:
  struct Probe {
    Target target;
    net::Fd fd;        // the exchange in flight, empty between exchanges
    int attempts = 0;  // sends so far
    net::Clock::time_point sent_at{};
    net::Clock::time_point next_send{};
    bool done = false;
  };
  void send(Probe& p, net::Clock::time_point now);
  static void finish(Probe& p, bool deactivate);

  net::TimeSource& time_;
  std::vector<Probe> probes_;
};

}  // namespace nld::daemon
