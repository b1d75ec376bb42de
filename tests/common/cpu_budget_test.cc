#include "common/cpu_budget.h"

#include <gtest/gtest.h>

#include <map>

namespace nld {
namespace {

// The layouts below are the ones the kernel shows: pure v2 (systemd and most current
// distributions), hybrid (v1 controllers plus the unified hierarchy, as on this CI machine),
// pure v1, and a container's own cgroup namespace where the mount root is "/".
class Files {
 public:
  Files& set(const std::string& path, const std::string& contents) {
    files_[path] = contents;
    return *this;
  }
  ReadFile reader() const {
    return [this](const std::string& p) -> std::optional<std::string> {
      auto it = files_.find(p);
      if (it == files_.end()) return std::nullopt;
      return it->second;
    };
  }

 private:
  std::map<std::string, std::string> files_;
};

const char* const kV2Mountinfo =
    "22 1 0:21 / /sys rw,nosuid - sysfs sysfs rw\n"
    "30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 "
    "rw,nsdelegate,memory_recursiveprot\n";

const char* const kHybridMountinfo =
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
    "33 31 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
    "34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n";

TEST(CpuBudget, WorkersFollowTheQuotaRoundedUpWithinTheAffinity) {
  EXPECT_EQ((CpuBudget{64, std::nullopt, ""}).workers(), 64u);
  EXPECT_EQ((CpuBudget{64, 0.5, ""}).workers(), 1u);  // 500m: one worker, not 64 on half a core
  EXPECT_EQ((CpuBudget{64, 1.0, ""}).workers(), 1u);
  EXPECT_EQ((CpuBudget{64, 1.5, ""}).workers(), 2u);
  EXPECT_EQ((CpuBudget{2, 8.0, ""}).workers(), 2u);  // the cpuset/affinity bounds a loose quota
  EXPECT_EQ((CpuBudget{0, std::nullopt, ""}).workers(), 1u);
  EXPECT_EQ((CpuBudget{4, 0.001, ""}).workers(), 1u);
}

TEST(CpuBudget, CgroupV2QuotaOfTheProcessAndItsAncestorsTightestWins) {
  Files f;
  f.set("/proc/self/cgroup", "0::/kubepods.slice/pod1/ctr\n")
      .set("/proc/self/mountinfo", kV2Mountinfo)
      .set("/sys/fs/cgroup/kubepods.slice/pod1/ctr/cpu.max", "max 100000\n")
      .set("/sys/fs/cgroup/kubepods.slice/pod1/cpu.max", "50000 100000\n")
      .set("/sys/fs/cgroup/kubepods.slice/cpu.max", "800000 100000\n");
  std::string source;
  auto q = cgroupCpuQuota(f.reader(), &source);
  ASSERT_TRUE(q.has_value());
  EXPECT_DOUBLE_EQ(*q, 0.5);
  EXPECT_EQ(source, "/sys/fs/cgroup/kubepods.slice/pod1/cpu.max");
}

TEST(CpuBudget, CgroupV2WithoutALimitIsNoQuota) {
  Files f;
  f.set("/proc/self/cgroup", "0::/user.slice\n")
      .set("/proc/self/mountinfo", kV2Mountinfo)
      .set("/sys/fs/cgroup/user.slice/cpu.max", "max 100000\n");
  EXPECT_FALSE(cgroupCpuQuota(f.reader()).has_value());
}

TEST(CpuBudget, HybridLayoutReadsTheV1CpuController) {
  Files f;
  f.set("/proc/self/cgroup",
        "5:cpuset:/\n4:cpu,cpuacct:/kubepods/burstable/pod2/ctr\n0::/kubepods/burstable/pod2/ctr\n")
      .set("/proc/self/mountinfo", kHybridMountinfo)
      .set("/sys/fs/cgroup/cpu,cpuacct/kubepods/burstable/pod2/ctr/cpu.cfs_quota_us", "150000\n")
      .set("/sys/fs/cgroup/cpu,cpuacct/kubepods/burstable/pod2/ctr/cpu.cfs_period_us", "100000\n")
      .set("/sys/fs/cgroup/cpu,cpuacct/kubepods/cpu.cfs_quota_us", "-1\n")
      .set("/sys/fs/cgroup/cpu,cpuacct/kubepods/cpu.cfs_period_us", "100000\n")
      // The unified hierarchy has no cpu controller here: a cpu.max there must not count.
      .set("/sys/fs/cgroup/unified/kubepods/burstable/pod2/ctr/cpu.max", "10000 100000\n");
  auto q = cgroupCpuQuota(f.reader());
  ASSERT_TRUE(q.has_value());
  EXPECT_DOUBLE_EQ(*q, 1.5);
}

TEST(CpuBudget, ContainerCgroupNamespaceSeesItsOwnRoot) {
  Files f;
  f.set("/proc/self/cgroup", "0::/\n")
      .set("/proc/self/mountinfo",
           "1200 1100 0:26 / /sys/fs/cgroup ro,nosuid - cgroup2 cgroup rw\n")
      .set("/sys/fs/cgroup/cpu.max", "200000 100000\n");
  auto q = cgroupCpuQuota(f.reader());
  ASSERT_TRUE(q.has_value());
  EXPECT_DOUBLE_EQ(*q, 2.0);
}

TEST(CpuBudget, MountOfASubtreeStripsItsRootAndEscapedPathsAreDecoded) {
  Files f;
  f.set("/proc/self/cgroup", "3:cpu:/docker/abc/inner\n")
      .set("/proc/self/mountinfo",
           "40 31 0:30 /docker/abc /sys/fs/cgroup/cpu\\040x rw - cgroup cgroup rw,cpu\n")
      .set("/sys/fs/cgroup/cpu x/inner/cpu.cfs_quota_us", "-1\n")
      .set("/sys/fs/cgroup/cpu x/inner/cpu.cfs_period_us", "100000\n")
      .set("/sys/fs/cgroup/cpu x/cpu.cfs_quota_us", "25000\n")
      .set("/sys/fs/cgroup/cpu x/cpu.cfs_period_us", "100000\n");
  auto q = cgroupCpuQuota(f.reader());
  ASSERT_TRUE(q.has_value());
  EXPECT_DOUBLE_EQ(*q, 0.25);
}

TEST(CpuBudget, UnreadableOrMalformedFilesMeanNoQuota) {
  Files none;
  EXPECT_FALSE(cgroupCpuQuota(none.reader()).has_value());

  Files bad;
  bad.set("/proc/self/cgroup", "garbage\n0::/a\n")
      .set("/proc/self/mountinfo", "no dash here\n30 22 0:26 / /sys/fs/cgroup rw - cgroup2 c rw\n")
      .set("/sys/fs/cgroup/a/cpu.max", "12x 100000\n")
      .set("/sys/fs/cgroup/cpu.max", "100000 0\n");
  EXPECT_FALSE(cgroupCpuQuota(bad.reader()).has_value());
}

TEST(CpuBudget, ThisProcessHasAtLeastOneWorker) {
  const CpuBudget b = detectCpuBudget();
  EXPECT_GE(b.affinity, 1u);
  EXPECT_GE(b.workers(), 1u);
  EXPECT_LE(b.workers(), b.affinity);
}

}  // namespace
}  // namespace nld
