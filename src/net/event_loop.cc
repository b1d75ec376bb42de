#include "net/event_loop.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace nld::net {
namespace {

// Exception, not Result: epoll_create1/epoll_ctl/eventfd fail only when the process is out of
// descriptors or memory; start-up cannot go on, and the few callers that can (tcp_pool,
// forwarder) catch it where they say why.
[[noreturn]] void fail(const char* what) {
  throw std::runtime_error(std::string(what) + ": " + std::strerror(errno));
}

// The wakeup eventfd is registered with a sentinel handler pointer.
class WakeHandler final : public IoHandler {
 public:
  void onEvents(uint32_t) override {}
};
WakeHandler g_wake_sentinel;

class SystemTime final : public TimeSource {
 public:
  Clock::time_point now() const override { return Clock::now(); }
};

}  // namespace

TimeSource& systemTime() {
  static SystemTime t;
  return t;
}

EventLoop::EventLoop(TimeSource& time) : time_(&time), now_(time.now()) {
  epfd_.reset(epoll_create1(EPOLL_CLOEXEC));
  if (!epfd_) fail("epoll_create1");
  wakefd_.reset(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wakefd_) fail("eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = &g_wake_sentinel;
  if (epoll_ctl(epfd_.get(), EPOLL_CTL_ADD, wakefd_.get(), &ev) < 0) fail("epoll_ctl(wakefd)");
}

EventLoop::~EventLoop() = default;  // wakefd_ and epfd_ close themselves

void EventLoop::add(int fd, uint32_t events, IoHandler* handler) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = handler;
  if (epoll_ctl(epfd_.get(), EPOLL_CTL_ADD, fd, &ev) < 0) fail("epoll_ctl(ADD)");
}

void EventLoop::modify(int fd, uint32_t events, IoHandler* handler) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = handler;
  if (epoll_ctl(epfd_.get(), EPOLL_CTL_MOD, fd, &ev) < 0) fail("epoll_ctl(MOD)");
}

void EventLoop::remove(int fd) {
  epoll_event ev{};
  epoll_ctl(epfd_.get(), EPOLL_CTL_DEL, fd, &ev);
}

EventLoop::TimerId EventLoop::addTimer(std::chrono::nanoseconds delay, Task fn) {
  TimerId id = next_timer_++;
  timers_.push(Timer{now_ + delay, id});
  timer_tasks_.emplace(id, std::move(fn));
  return id;
}

void EventLoop::cancelTimer(TimerId id) { timer_tasks_.erase(id); }

void EventLoop::post(Task fn) {
  bool first = false;
  {
    std::lock_guard<std::mutex> lock(posted_mu_);
    posted_.push_back(std::move(fn));
    first = !has_posted_.exchange(true, std::memory_order_acq_rel);
  }
  // One wakeup per batch: only the post that found the queue drained (runPosted clears the flag
  // under the same lock) writes the eventfd; later ones ride on it, since the loop runs the whole
  // queue when it wakes. TCP queries handed to another worker cost a write(2) and a cross-thread
  // wakeup per batch instead of per query. From the loop's own thread no wakeup is needed:
  // run() checks has_posted_ before it blocks (this saves a write per deferred deletion).
  if (!first || inLoopThread()) return;
  uint64_t one = 1;
  ssize_t n = ::write(wakefd_.get(), &one, sizeof(one));
  (void)n;  // EAGAIN means the counter is already non-zero: the loop will wake anyway.
}

void EventLoop::requestRoundEnd(RoundEndHook* hook) {
  // Rarely more than a handful of hooks per round: a linear check keeps it allocation-free.
  if (std::find(round_end_.begin(), round_end_.end(), hook) == round_end_.end()) {
    round_end_.push_back(hook);
  }
}

void EventLoop::cancelRoundEnd(RoundEndHook* hook) {
  round_end_.erase(std::remove(round_end_.begin(), round_end_.end(), hook), round_end_.end());
  std::replace(running_round_end_.begin(), running_round_end_.end(), hook,
               static_cast<RoundEndHook*>(nullptr));
}

void EventLoop::runRoundEnd() {
  if (round_end_.empty()) return;
  running_round_end_.swap(round_end_);
  // By index: a hook may cancel a later one (cancelRoundEnd nulls it here).
  for (size_t i = 0; i < running_round_end_.size(); ++i) {
    if (RoundEndHook* h = running_round_end_[i]) h->onRoundEnd();
  }
  running_round_end_.clear();
}

void EventLoop::stop() {
  stop_ = true;
  uint64_t one = 1;
  ssize_t n = ::write(wakefd_.get(), &one, sizeof(one));
  (void)n;
}

int EventLoop::nextTimeoutMs() const {
  // Skip cancelled timers lazily in runTimers; here an upper bound is enough.
  if (timers_.empty()) return 1000;
  auto d = timers_.top().deadline - time_->now();
  if (d <= std::chrono::nanoseconds::zero()) return 0;
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count() + 1;
  return static_cast<int>(std::min<int64_t>(ms, 1000));
}

void EventLoop::runTimers() {
  while (!timers_.empty() && timers_.top().deadline <= now_) {
    TimerId id = timers_.top().id;
    timers_.pop();
    auto it = timer_tasks_.find(id);
    if (it == timer_tasks_.end()) continue;  // cancelled
    Task task = std::move(it->second);
    timer_tasks_.erase(it);
    task();
  }
}

void EventLoop::runPosted() {
  if (!has_posted_.load(std::memory_order_acquire)) return;
  {
    std::lock_guard<std::mutex> lock(posted_mu_);
    running_posted_.swap(posted_);
    has_posted_.store(false, std::memory_order_relaxed);
  }
  for (auto& t : running_posted_) t();
  running_posted_.clear();
}

void EventLoop::round(int timeout_ms) {
  constexpr int kMaxEvents = 128;
  epoll_event events[kMaxEvents];
  const int timeout = has_posted_.load(std::memory_order_acquire) || !round_end_.empty()
                          ? 0
                          : std::min(timeout_ms, nextTimeoutMs());
  int n = epoll_wait(epfd_.get(), events, kMaxEvents, timeout);
  now_ = time_->now();
  if (n < 0) {
    if (errno == EINTR) return;
    fail("epoll_wait");
  }
  for (int i = 0; i < n; ++i) {
    auto* h = static_cast<IoHandler*>(events[i].data.ptr);
    if (h == &g_wake_sentinel) {
      uint64_t v;
      while (::read(wakefd_.get(), &v, sizeof(v)) > 0) {
      }
      continue;
    }
    h->onEvents(events[i].events);
  }
  runPosted();
  runTimers();
  runRoundEnd();
}

void EventLoop::run() {
  owner_ = std::this_thread::get_id();
  running_ = true;
  while (!stop_) round(1000);
  // Drain tasks posted right before stop so no promise is left hanging.
  runPosted();
  runRoundEnd();
  running_ = false;
}

void EventLoop::runOnce(std::chrono::milliseconds max_wait) {
  owner_ = std::this_thread::get_id();
  round(static_cast<int>(std::clamp<int64_t>(max_wait.count(), 0, 1000)));
}

}  // namespace nld::net
