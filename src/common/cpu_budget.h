#pragma once
// How much CPU this process may use, for the default worker count (like Go 1.25's
// container-aware GOMAXPROCS): the CPUs in the affinity mask (which the kernel already narrows
// to the cpuset) and the CFS quota of the process's cgroup and of every ancestor, cgroup v2
// (`cpu.max`) or v1 (`cpu.cfs_quota_us` / `cpu.cfs_period_us`, also in the hybrid layout where
// the cpu controller is on v1 and `0::` names the unified hierarchy). A DaemonSet with a CPU
// limit of 500m on a 64-core node gets 1 worker, not 64 sharing half a core.
//
// The cgroup files are read through a seam (a function from path to contents) so the parsing is
// unit-tested on the layouts seen in the wild without a cgroup of the test's own.
#include <functional>
#include <optional>
#include <string>

namespace nld {

struct CpuBudget {
  unsigned affinity = 1;        ///< CPUs in the affinity mask (at least 1)
  std::optional<double> quota;  ///< CPUs' worth of CFS quota, when a limit is set
  std::string quota_source;     ///< the file that set the tightest quota (for the log line)

  /// The worker count that fits: ceil(quota) bounded by the affinity, at least 1.
  unsigned workers() const;
};

/// Reads a file's contents, or nullopt when it cannot be read.
using ReadFile = std::function<std::optional<std::string>(const std::string& path)>;

/// The quota part, from /proc/self/cgroup, /proc/self/mountinfo and the cgroup files, all read
/// through `read`. Returns nullopt when no limit applies (or nothing could be read: no limit is
/// the safe reading, the affinity still bounds the count).
std::optional<double> cgroupCpuQuota(const ReadFile& read, std::string* source = nullptr);

/// This process's budget: sched_getaffinity plus cgroupCpuQuota over the real files.
CpuBudget detectCpuBudget();

}  // namespace nld
