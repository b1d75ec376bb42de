// process_* metrics as exposed by Prometheus' Go client (prometheus/procfs), read from /proc at
// scrape time. Hand-written: it is a few /proc fields and no C++ library for it is packaged.
#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "observability/metrics.h"

namespace nld::observability {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// Fields of /proc/self/stat after the "(comm)" field; index 0 is field 3 (state).
std::vector<std::string> selfStatFields() {
  std::ifstream in("/proc/self/stat");
  std::string line;
  std::getline(in, line);
  const auto close = line.rfind(')');
  std::vector<std::string> fields;
  if (close == std::string::npos) {
    return fields;
  }
  std::istringstream ss(line.substr(close + 1));
  std::string f;
  while (ss >> f) {
    fields.push_back(f);
  }
  return fields;
}

double statField(const std::vector<std::string>& fields, size_t field_number) {
  const size_t idx = field_number - 3;
  if (idx >= fields.size()) {
    return kNaN;
  }
  try {
    return std::stod(fields[idx]);
  } catch (const std::exception&) {
    return kNaN;
  }
}

double ticksPerSecond() {
  const long t = sysconf(_SC_CLK_TCK);
  return t > 0 ? static_cast<double>(t) : 100.0;
}

double bootTimeSeconds() {
  std::ifstream in("/proc/stat");
  std::string key;
  while (in >> key) {
    if (key == "btime") {
      double v = kNaN;
      in >> v;
      return v;
    }
    in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  return kNaN;
}

double limitValue(int resource) {
  rlimit rl{};
  if (getrlimit(resource, &rl) != 0) {
    return kNaN;
  }
  // Go reports RLIM_INFINITY as the raw uint64 value.
  return static_cast<double>(rl.rlim_cur);
}

double openFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) {
    return kNaN;
  }
  double n = 0;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') {
      n += 1;
    }
  }
  closedir(dir);
  return n - 1;  // the directory stream's own descriptor
}

}  // namespace

void registerProcessCollector(Registry& registry) {
  registry.counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.")
      .withCallback({}, [] {
        const auto f = selfStatFields();
        return (statField(f, 14) + statField(f, 15)) / ticksPerSecond();
      });
  registry.gauge("process_resident_memory_bytes", "Resident memory size in bytes.")
      .withCallback({}, [] {
        return statField(selfStatFields(), 24) * static_cast<double>(sysconf(_SC_PAGESIZE));
      });
  registry.gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.")
      .withCallback({}, [] { return statField(selfStatFields(), 23); });
  registry
      .gauge("process_virtual_memory_max_bytes",
             "Maximum amount of virtual memory available in bytes.")
      .withCallback({}, [] { return limitValue(RLIMIT_AS); });
  registry.gauge("process_open_fds", "Number of open file descriptors.").withCallback({}, [] {
    return openFds();
  });
  registry.gauge("process_max_fds", "Maximum number of open file descriptors.")
      .withCallback({}, [] { return limitValue(RLIMIT_NOFILE); });
  // The start time is fixed: compute it once.
  const double start = bootTimeSeconds() + statField(selfStatFields(), 22) / ticksPerSecond();
  registry
      .gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.")
      .withCallback({}, [start] { return start; });
}

}  // namespace nld::observability
