#pragma once
// Zero-loss handover of a node's DNS listeners from a running node-cache (the owner) to a new
// one (the successor), e.g. during a DaemonSet rollout with maxSurge 1 (docs/availability.md).
//
// Why passing the sockets (SCM_RIGHTS) rather than binding a second SO_REUSEPORT group member:
// a UDP datagram or TCP connection sits in the queue of one particular socket; when the owner
// closes its sockets, whatever they hold is lost. Passed sockets are the *same* kernel sockets,
// so nothing queued is lost, the successor serves them the moment it has them, and the owner can
// stop reading at any time after that. The query-name steering program stays attached to the
// group; the successor re-attaches it for its own worker count.
//
// The state directory (-statedir) holds:
//   owner.lock      flock'ed by the process that owns the listeners, for as long as it lives: the
//                   kernel releases it however the process ends, so a stale file is no obstacle.
//   successor.lock  flock'ed by every starting process before it looks at owner.lock, held until
//                   it owns and listens (becomeOwner): the one taking over, or a first process;
//                   further candidates queue on it (never two successors, never two owners, also
//                   when one arrives between the predecessor's exit and its successor's flock).
//   handover.sock   the owner's unix socket (SOCK_SEQPACKET, mode 0600 in a 0700 directory),
//                   bound under a temporary name and renamed into place, so a candidate never
//                   sees a half-set-up socket; a stale file from a dead owner is unlinked.
//
// Protocol on handover.sock, one JSON object per SOCK_SEQPACKET message:
//   successor → owner  {"hello":1,"pid":P,"pod_uid":U}
//   owner → successor  {"sockets":[{"kind":"dns-udp","address":A,"port":N},..],"more":B} with the
//                      sockets as SCM_RIGHTS (≤ kMaxFdsPerMessage per message; "more" true until
//                      the last), the last also {"snapshot":PATH,"pid":P,"pod_uid":U}
//                  or  {"refused":"why"}
//   successor → owner  {"ready":1}    — it serves from the passed sockets now.
// The owner then stops reading, answers everything it already accepted and exits by itself
// (the caller does that; see daemon::Daemon). The connection stays open until one of them ends: if
// the successor dies before the owner has decided to exit (commitExit), the owner resumes reading
// (it still holds every socket) and keeps serving successors.
//
// Failure half-way: owner dies before its reply → the successor finds owner.lock free and starts
// fresh (binds); owner dies after its reply → the successor serves and takes owner.lock when it
// is released; successor dies before "ready" → the owner never stopped reading; owner hung → the
// successor gives up after the timeout, binds its own sockets into the SO_REUSEPORT group and
// takes over the group when the owner is gone.
//
// Pods: a DaemonSet pod whose container exits is restarted by the kubelet until the pod is
// deleted. A predecessor that exits by itself after a handover would then come back and take the
// listeners back from its successor. With POD_UID (downward API, metadata.uid) set, an owner
// refuses a candidate from the pod it replaced; such a candidate idles until SIGTERM.
//
// Thread affinity: begin() on the main thread before anything binds; serve() starts one
// background thread; the state accessors are atomics readable from any thread.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "common/inherited_sockets.h"
#include "net/fd.h"

namespace nld::node {

class Handover {
 public:
  static constexpr size_t kMaxFdsPerMessage = 200;  // SCM_MAX_FD is 253

  struct Hooks {
    /// Owner side, on the handover thread when a successor asks: writes a cache snapshot for it
    /// and returns the path ("" for none).
    std::function<std::string()> snapshot;
    /// Owner side: the listening sockets to pass (they stay open here too).
    std::function<std::vector<PassedSocket>()> sockets;
  };
  enum class Start {
    kFresh,      // no predecessor handed sockets over: bind as usual
    kInherited,  // the predecessor's sockets are in inheritedSockets()
    kRefused,    // the owner refused us (we are the pod it replaced): do not serve
  };
  struct Peer {
    int pid = 0;
    std::string pod_uid;
    std::string snapshot;  // path written for us, or ""
  };

  /// @param dir the state directory (created 0700 if missing); @param pod_uid this process's
  /// pod (may be empty); @param timeout how long one exchange with the other side may take.
  Handover(std::string dir, std::string pod_uid,
           std::chrono::milliseconds timeout = std::chrono::seconds(30));
  ~Handover();  // stops the thread; locks are released when the fds close
  Handover(const Handover&) = delete;
  Handover& operator=(const Handover&) = delete;

  /// First thing at startup. Becomes the owner at once if none is alive, otherwise queues behind
  /// other candidates and asks the owner for its sockets. Throws std::runtime_error if the state
  /// directory cannot be used (the caller runs without handover then).
  Start begin();
  const Peer& predecessor() const { return predecessor_; }

  /// Once serving: tells the predecessor (if any) that we serve, waits in the background until
  /// we own the listeners (the predecessor has exited), then serves successors with `hooks`.
  void serve(Hooks hooks);

  /// Owner side: a successor serves from our sockets; drain and exit. Turns false again if the
  /// successor dies before commitExit(): this process must then resume reading. Any thread.
  bool handedOver() const { return phaseOf(state_.load()) != Phase::kServing; }
  /// Owner side, when drained: decides to exit. False if the successor died first (handedOver()
  /// is false then: resume reading instead). After true, a successor that dies no longer brings
  /// this process back (it is exiting); that is logged. The decision and the successor's death
  /// race on one atomic, so exactly one of "exit" and "resume" happens. Any thread.
  bool commitExit();
  /// Owner side: how many successors died after "ready" and before commitExit() (each one made
  /// handedOver() false again), whether or not this process had started draining. The caller
  /// restores what such a successor may have left behind (pidfile, interface, rules). Any thread.
  unsigned successorsLost() const { return unsigned(state_.load() >> 2); }
  /// True once this process holds owner.lock. Any thread.
  bool owner() const { return owner_.load(); }

  /// Stops the background thread (the owner is exiting). Idempotent.
  void stop();

 private:
  void run(Hooks hooks);
  bool tryOwner();
  void becomeOwner();
  void serveOne(int conn, const Hooks& hooks);
  net::Fd connectOwner();

  std::string dir_;
  std::string pod_uid_;
  std::chrono::milliseconds timeout_;
  net::Fd owner_fd_;        // owner.lock
  net::Fd successor_fd_;    // successor.lock (held while taking over)
  net::Fd listen_fd_;       // handover.sock (owner)
  net::Fd predecessor_fd_;  // our connection to the predecessor (successor side)
  Peer predecessor_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> owner_{false};
  // kServing → kHandedOver (the successor said "ready") → kExiting (commitExit) or back to
  // kServing (the successor died first).
  // One atomic word holds the phase (low 2 bits) and the successors lost (the rest), so a reader
  // that sees the phase back at kServing also sees the loss counted.
  enum class Phase : uint64_t { kServing = 0, kHandedOver = 1, kExiting = 2 };
  static Phase phaseOf(uint64_t state) { return Phase(state & 3); }
  static uint64_t withPhase(uint64_t state, Phase p) {
    return (state & ~uint64_t(3)) | uint64_t(p);
  }
  /// Moves the phase from `from` to `to` (adding `lost` to the count) if it is `from`.
  bool transition(Phase from, Phase to, uint64_t lost = 0);
  std::atomic<uint64_t> state_{0};
};

}  // namespace nld::node
