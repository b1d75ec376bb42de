#pragma once
// net::Fd: the one owner of a file descriptor. Sockets, epoll/event/timer fds and files that a
// class keeps, or that a set-up function must close on every early error return, live in an Fd
// so the close happens exactly once and cannot be forgotten on a new error path.
//
// A raw int is still right where ownership leaves the process's C++ objects: an fd handed to
// another process (handover, inherited sockets) or to the kernel's accept queue bookkeeping is
// `release()`d, and code that only borrows a descriptor (the event loop, sendmsg calls) takes
// `get()`.
#include <unistd.h>

#include <utility>

namespace nld::net {

class Fd {
 public:
  Fd() = default;
  /// Takes ownership of `fd` (negative = empty).
  explicit Fd(int fd) noexcept : fd_(fd) {}
  ~Fd() { reset(); }

  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;

  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }

  /// Gives up ownership without closing; the Fd is empty afterwards.
  [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }

  /// Closes the owned descriptor (if any) and takes `fd` instead. The close's result is ignored:
  /// on Linux the descriptor is gone even when close() reports an error, and a retry could close
  /// a descriptor another thread just got. Code that must see write-back errors (a file it
  /// wrote) calls close() instead.
  void reset(int fd = -1) noexcept {
    const int old = std::exchange(fd_, fd);
    if (old >= 0) ::close(old);
  }

  /// Closes now and returns close()'s result (0, or -1 with errno set); the Fd is empty after.
  /// For files whose last write errors surface only at close (config_sync, snapshots).
  int close() noexcept {
    const int old = std::exchange(fd_, -1);
    return old >= 0 ? ::close(old) : 0;
  }

 private:
  int fd_ = -1;
};

}  // namespace nld::net
