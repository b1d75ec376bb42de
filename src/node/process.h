#pragma once
// Runs a helper binary (iptables, iptables-restore, ...) without a shell: posix_spawn with pipes
// for stdin/stdout/stderr, a hard timeout (SIGKILL, then reaped), no fd leaks (O_CLOEXEC pipes).
//
// Thread affinity: reentrant; any thread. Blocks the calling thread until the child exits or the
// timeout passes.
#include <chrono>
#include <string>
#include <vector>

namespace nld::node {

struct ProcessResult {
  int exit_code = -1;    ///< exit status; -1 if killed by a signal, could not start or timed out
  bool started = false;  ///< false if the binary could not be spawned (see error)
  bool timed_out = false;
  std::string out;  ///< stdout
  std::string err;  ///< stderr (or the spawn error)
  bool ok() const { return started && !timed_out && exit_code == 0; }
};

/// Runs argv[0] (looked up in PATH, then /usr/sbin, /sbin, /usr/bin, /bin) with `input` on stdin.
ProcessResult runProcess(const std::vector<std::string>& argv, const std::string& input = {},
                         std::chrono::milliseconds timeout = std::chrono::seconds(30));

/// Resolves a program name to an executable path ("" if not found).
std::string findExecutable(const std::string& name);

/// The seam for code that runs helper binaries (Iptables): systemProcesses() runs them for real
/// (runProcess); unit tests give a fake that plays the binary (tests/node/iptables_fake_test.cc).
class ProcessRunner {
 public:
  virtual ~ProcessRunner() = default;
  virtual ProcessResult run(const std::vector<std::string>& argv, const std::string& input,
                            std::chrono::milliseconds timeout) = 0;
};
/// runProcess() behind the ProcessRunner seam. Thread-safe.
ProcessRunner& systemProcesses();

}  // namespace nld::node
