#pragma once
// One epoll event loop per worker thread (muduo's "one loop per thread"): every socket, timer and
// upstream exchange of a worker lives on its loop and is touched only from that thread, so the
// query path needs no locks. Other threads hand work over with post().
//
// Hand-written over epoll instead of using libevent/asio: the loop is a few hundred lines, sits
// on the hot path, and we want batching (recvmmsg) and allocation behaviour under our control.
#include <sys/epoll.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <queue>
#include <thread>
#include <unordered_map>
#include <vector>

#include "net/fd.h"

namespace nld::net {

using Clock = std::chrono::steady_clock;

/// Where a loop reads the time. The process uses systemTime() (the monotonic clock); tests give
/// a loop a fake (tests/support/fake_time.h) and move time by hand, so timeouts, expiry and
/// budgets are tested without sleeping. Everything on a loop reads the time through it
/// (EventLoop::now() / clockNow()), never from steady_clock directly.
class TimeSource {
 public:
  virtual Clock::time_point now() const = 0;

 protected:
  ~TimeSource() = default;
};
/// The monotonic clock (std::chrono::steady_clock).
TimeSource& systemTime();

/// Something that owns a file descriptor registered with a loop.
class IoHandler {
 public:
  virtual ~IoHandler() = default;
  /// Called on the loop thread with the epoll event bits (EPOLLIN, EPOLLOUT, EPOLLERR, ...).
  virtual void onEvents(uint32_t events) = 0;
};

/// Work deferred to the end of the current loop round (e.g. flushing a batch of datagrams
/// produced by many events with one sendmmsg).
class RoundEndHook {
 public:
  /// Called on the loop thread once per requestRoundEnd(), after the round's events, posted
  /// tasks and timers.
  virtual void onRoundEnd() = 0;

 protected:
  ~RoundEndHook() = default;
};

class EventLoop {
 public:
  using TimerId = uint64_t;
  using Task = std::function<void()>;

  explicit EventLoop(TimeSource& time = systemTime());
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  /// Registers fd (loop thread only, or before run()). The handler must outlive the registration.
  void add(int fd, uint32_t events, IoHandler* handler);
  /// Changes the event mask (loop thread only).
  void modify(int fd, uint32_t events, IoHandler* handler);
  /// Unregisters fd (loop thread only). Events for it already fetched in the current dispatch
  /// round may still be delivered, so a handler must not be destroyed synchronously from inside
  /// any onEvents/timer/task: destroy it with post() (deferred deletion, one round later).
  void remove(int fd);

  /// Runs `fn` once after `delay` on the loop thread (loop thread only). Returns an id for
  /// cancelTimer. Timers fire in deadline order; a cancelled timer never fires.
  TimerId addTimer(std::chrono::nanoseconds delay, Task fn);
  void cancelTimer(TimerId id);

  /// Runs hook->onRoundEnd() at the end of this round (loop thread only; no allocation once
  /// warm). Requests of a hook already pending are merged. A hook requested from inside an
  /// onRoundEnd runs in the next round (which then does not block). A hook must call
  /// cancelRoundEnd before it is destroyed.
  void requestRoundEnd(RoundEndHook* hook);
  void cancelRoundEnd(RoundEndHook* hook);

  /// Queues `fn` to run on the loop thread and wakes the loop. Thread-safe.
  void post(Task fn);

  /// Runs until stop(). Must be called from the thread that will own the loop.
  void run();
  /// One round, on the calling thread (which then owns the loop): waits up to `max_wait` for
  /// events (less if a timer is due sooner by the loop's time source), then runs the events,
  /// posted tasks, due timers and round-end hooks. For tests that drive a loop on fake time:
  /// advance the fake, then runOnce(0ms) fires what became due.
  void runOnce(std::chrono::milliseconds max_wait);
  /// Makes run() return after the current iteration. Thread-safe.
  void stop();

  /// Time at the start of the current loop iteration (cheap; loop thread only).
  Clock::time_point now() const { return now_; }
  /// The time now, read from the loop's time source (a clock read; for durations and deadlines
  /// that must not include the rest of the round).
  Clock::time_point clockNow() const { return time_->now(); }
  bool inLoopThread() const { return std::this_thread::get_id() == owner_.load(); }
  bool running() const { return running_.load(); }

 private:
  struct Timer {
    Clock::time_point deadline;
    TimerId id;
    bool operator>(const Timer& o) const {
      return deadline != o.deadline ? deadline > o.deadline : id > o.id;
    }
  };

  int nextTimeoutMs() const;
  void round(int timeout_ms);
  void runTimers();
  void runPosted();
  void runRoundEnd();

  Fd epfd_;
  Fd wakefd_;
  std::atomic<bool> running_{false};
  std::atomic<bool> stop_{false};
  std::atomic<std::thread::id> owner_{};
  TimeSource* time_;
  Clock::time_point now_;

  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers_;
  std::unordered_map<TimerId, Task> timer_tasks_;
  TimerId next_timer_ = 1;

  std::vector<RoundEndHook*> round_end_;
  std::vector<RoundEndHook*> running_round_end_;

  std::atomic<bool> has_posted_{false};
  std::mutex posted_mu_;
  std::vector<Task> posted_;
  std::vector<Task> running_posted_;
};

}  // namespace nld::net
