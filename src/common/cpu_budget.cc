#include "common/cpu_budget.h"

#include <sched.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <string_view>
#include <vector>

namespace nld {

namespace {

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t end = s.find(sep, start);
    out.emplace_back(s.substr(start, end == std::string_view::npos ? s.npos : end - start));
    if (end == std::string_view::npos) return out;
    start = end + 1;
  }
}

bool hasToken(std::string_view list, std::string_view token) {
  for (const auto& t : split(list, ',')) {
    if (t == token) return true;
  }
  return false;
}

// mountinfo escapes space, tab, newline and backslash in paths as \ooo.
std::string unescapeMountPath(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
        s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
      out.push_back(char((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

struct Mount {
  std::string root;         // the subtree of the hierarchy that is mounted
  std::string mount_point;  // where
};

struct Hierarchy {
  bool v2 = false;
  std::string cgroup_path;  // from /proc/self/cgroup
  Mount mount;
};

// Finds the hierarchy that holds the cpu controller: a v1 mount with the `cpu` option, else
// the unified (v2) one.
std::optional<Hierarchy> cpuHierarchy(const ReadFile& read) {
  const auto cgroup = read("/proc/self/cgroup");
  const auto mountinfo = read("/proc/self/mountinfo");
  if (!cgroup || !mountinfo) return std::nullopt;

  std::optional<std::string> v1_path;
  std::optional<std::string> v2_path;
  std::istringstream cg(*cgroup);
  for (std::string line; std::getline(cg, line);) {
    // "hierarchy-ID:controller-list:cgroup-path"; the path may itself contain ':'.
    const size_t a = line.find(':');
    const size_t b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    const std::string_view controllers = std::string_view(line).substr(a + 1, b - a - 1);
    const std::string path = line.substr(b + 1);
    if (line.compare(0, a, "0") == 0 && controllers.empty()) {
      v2_path = path;
    } else if (hasToken(controllers, "cpu")) {
      v1_path = path;
    }
  }

  std::optional<Mount> v1_mount;
  std::optional<Mount> v2_mount;
  std::istringstream mi(*mountinfo);
  for (std::string line; std::getline(mi, line);) {
    // "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS"
    const size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    const auto head = split(std::string_view(line).substr(0, dash), ' ');
    const auto tail = split(std::string_view(line).substr(dash + 3), ' ');
    if (head.size() < 5 || tail.size() < 3) continue;
    Mount m{unescapeMountPath(head[3]), unescapeMountPath(head[4])};
    if (tail[0] == "cgroup" && hasToken(tail[2], "cpu")) {
      v1_mount = m;
    } else if (tail[0] == "cgroup2" && !v2_mount) {
      v2_mount = m;
    }
  }
  if (v1_path && v1_mount) return Hierarchy{false, *v1_path, *v1_mount};
  if (v2_path && v2_mount) return Hierarchy{true, *v2_path, *v2_mount};
  return std::nullopt;
}

std::optional<long long> parseInteger(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  if (s.empty()) return std::nullopt;
  long long v = 0;
  bool neg = false;
  size_t i = 0;
  if (s[0] == '-') {
    neg = true;
    i = 1;
  }
  if (i == s.size()) return std::nullopt;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9' || v > (1LL << 50)) return std::nullopt;
    v = v * 10 + (s[i] - '0');
  }
  return neg ? -v : v;
}

// The limit one cgroup directory sets, in CPUs, or nullopt for none.
std::optional<double> limitIn(const ReadFile& read, const std::string& dir, bool v2) {
  if (v2) {
    // "max 100000" or "150000 100000"
    const auto s = read(dir + "/cpu.max");
    if (!s) return std::nullopt;
    const auto parts = split(*s, ' ');
    if (parts.size() != 2 || parts[0] == "max") return std::nullopt;
    const auto quota = parseInteger(parts[0]);
    const auto period = parseInteger(parts[1]);
    if (!quota || !period || *quota <= 0 || *period <= 0) return std::nullopt;
    return double(*quota) / double(*period);
  }
  const auto q = read(dir + "/cpu.cfs_quota_us");
  const auto p = read(dir + "/cpu.cfs_period_us");
  if (!q || !p) return std::nullopt;
  const auto quota = parseInteger(*q);
  const auto period = parseInteger(*p);
  if (!quota || !period || *quota <= 0 || *period <= 0) return std::nullopt;  // -1: no limit
  return double(*quota) / double(*period);
}

}  // namespace

unsigned CpuBudget::workers() const {
  unsigned n = std::max(1u, affinity);
  if (quota && *quota > 0) {
    const double c = std::ceil(*quota - 1e-9);
    if (c < double(n)) n = std::max(1u, unsigned(c));
  }
  return n;
}

std::optional<double> cgroupCpuQuota(const ReadFile& read, std::string* source) {
  const auto h = cpuHierarchy(read);
  if (!h) return std::nullopt;
  // The process's directory: the mount point plus the cgroup path below the mount's root. A
  // path outside the mounted subtree (another cgroup namespace's view) falls back to the mount
  // point itself, the closest directory we can see.
  std::string rel;
  const std::string& root = h->mount.root;
  if (root == "/") {
    rel = h->cgroup_path;
  } else if (h->cgroup_path.compare(0, root.size(), root) == 0 &&
             (h->cgroup_path.size() == root.size() || h->cgroup_path[root.size()] == '/')) {
    rel = h->cgroup_path.substr(root.size());
  }
  if (!rel.empty() && rel.back() == '/') rel.pop_back();
  if (rel == "/") rel.clear();
  if (!rel.empty() && rel.front() != '/') rel.clear();

  // Every ancestor up to the mount point limits too: the tightest wins.
  std::optional<double> best;
  std::string dir = h->mount.mount_point + rel;
  for (;;) {
    if (const auto l = limitIn(read, dir, h->v2); l && (!best || *l < *best)) {
      best = l;
      if (source != nullptr) *source = dir + (h->v2 ? "/cpu.max" : "/cpu.cfs_quota_us");
    }
    if (rel.empty()) break;
    rel.resize(rel.rfind('/'));
    dir = h->mount.mount_point + rel;
  }
  return best;
}

CpuBudget detectCpuBudget() {
  CpuBudget b;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) == 0)
    b.affinity = unsigned(std::max(1, CPU_COUNT(&set)));
  const ReadFile read = [](const std::string& path) -> std::optional<std::string> {
    std::ifstream f(path);
    if (!f) return std::nullopt;
    std::ostringstream s;
    s << f.rdbuf();
    if (f.bad()) return std::nullopt;
    return s.str();
  };
  b.quota = cgroupCpuQuota(read, &b.quota_source);
  return b;
}

}  // namespace nld
