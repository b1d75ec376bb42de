#include "node/process.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "net/fd.h"

extern char** environ;

namespace nld::node {
namespace {

struct Pipe {
  net::Fd end[2];  // [0] read, [1] write
  /// pipe2(O_CLOEXEC); false with errno set.
  bool open() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return false;
    end[0].reset(fds[0]);
    end[1].reset(fds[1]);
    return true;
  }
  void closeEnd(int i) { end[i].reset(); }
};

bool isExecutable(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

}  // namespace

std::string findExecutable(const std::string& name) {
  if (name.find('/') != std::string::npos) return isExecutable(name) ? name : std::string();
  std::string dirs;
  if (const char* p = std::getenv("PATH")) dirs = p;
  dirs += ":/usr/sbin:/sbin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    const size_t colon = dirs.find(':', start);
    const std::string dir =
        dirs.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    if (!dir.empty() && isExecutable(dir + "/" + name)) return dir + "/" + name;
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return {};
}

ProcessResult runProcess(const std::vector<std::string>& argv, const std::string& input,
                         std::chrono::milliseconds timeout) {
  ProcessResult result;
  if (argv.empty()) {
    result.err = "runProcess: empty argv";
    return result;
  }
  const std::string path = findExecutable(argv[0]);
  if (path.empty()) {
    result.err = argv[0] + ": executable file not found in $PATH";
    return result;
  }
  Pipe in, out, err;
  if (!in.open() || !out.open() || !err.open()) {
    result.err = std::string("pipe: ") + std::strerror(errno);
    return result;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in.end[0].get(), 0);
  posix_spawn_file_actions_adddup2(&actions, out.end[1].get(), 1);
  posix_spawn_file_actions_adddup2(&actions, err.end[1].get(), 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);  // the caller may block signals in its threads
  sigset_t all;
  sigfillset(&all);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));  // exec's signature
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, path.c_str(), &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    result.err = path + ": " + std::strerror(rc);
    return result;
  }
  result.started = true;
  in.closeEnd(0);
  out.closeEnd(1);
  err.closeEnd(1);
  if (input.empty()) in.closeEnd(1);
  if (in.end[1]) ::fcntl(in.end[1].get(), F_SETFL, O_NONBLOCK);

  // A child that exits before reading all its input would raise SIGPIPE here and kill the whole
  // process: block it in this thread while writing and discard a pending one afterwards.
  sigset_t pipe_set, old_mask;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);
  struct RestoreMask {
    sigset_t set, old;
    ~RestoreMask() {
      const timespec zero{0, 0};
      while (::sigtimedwait(&set, nullptr, &zero) > 0) {
      }
      ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    }
  } restore{pipe_set, old_mask};

  const auto deadline = std::chrono::steady_clock::now() + timeout;
  size_t written = 0;
  std::array<char, 4096> buf{};
  while (out.end[0] || err.end[0]) {
    std::array<pollfd, 3> fds{};
    nfds_t n = 0;
    if (out.end[0]) fds[n++] = {out.end[0].get(), POLLIN, 0};
    if (err.end[0]) fds[n++] = {err.end[0].get(), POLLIN, 0};
    if (in.end[1]) fds[n++] = {in.end[1].get(), POLLOUT, 0};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      break;
    }
    const int pr = ::poll(fds.data(), n, static_cast<int>(left.count()));
    if (pr < 0 && errno != EINTR) break;
    for (nfds_t i = 0; i < n && pr > 0; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == in.end[1].get()) {
        const ssize_t w = ::write(in.end[1].get(), input.data() + written, input.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        if (w < 0 && errno != EAGAIN && errno != EINTR)
          written = input.size();  // EPIPE: child gone
        if (written >= input.size()) in.closeEnd(1);
        continue;
      }
      const bool is_out = fds[i].fd == out.end[0].get();
      const ssize_t r = ::read(fds[i].fd, buf.data(), buf.size());
      if (r > 0) {
        (is_out ? result.out : result.err).append(buf.data(), static_cast<size_t>(r));
      } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
        (is_out ? out : err).closeEnd(0);
      }
    }
  }
  in.closeEnd(1);
  int status = 0;
  if (result.timed_out) {
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    result.exit_code = -1;
    result.err += "\n" + argv[0] + ": timed out after " + std::to_string(timeout.count()) + " ms";
    return result;
  }
  // Output closed: the child is exiting. Wait for it, still bounded by the deadline.
  while (true) {
    const pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      result.timed_out = true;
      result.err += "\n" + argv[0] + ": timed out after " + std::to_string(timeout.count()) + " ms";
      return result;
    }
    ::usleep(2000);
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

namespace {
class SystemProcesses final : public ProcessRunner {
 public:
  ProcessResult run(const std::vector<std::string>& argv, const std::string& input,
                    std::chrono::milliseconds timeout) override {
    return runProcess(argv, input, timeout);
  }
};
}  // namespace

ProcessRunner& systemProcesses() {
  static SystemProcesses p;
  return p;
}

}  // namespace nld::node
