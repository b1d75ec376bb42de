// freeze-detect: measures how long a CPU stops executing anything of the guest (issue 6, LAT
// tail). It spins on one CPU at SCHED_FIFO reading CLOCK_MONOTONIC and reports every gap between
// two consecutive reads longer than a threshold, with the CPU's steal counter from /proc/stat.
// Nothing in the guest can preempt a SCHED_FIFO spinner for milliseconds (only interrupts, which
// take microseconds), so a gap of milliseconds means the vCPU itself was not running: the
// hypervisor descheduled it (steal) or paused the VM. Such a gap stalls whatever DNS server is
// pinned to that CPU for the same time, which is what a bench/run.sh LAT p99.9 of several
// milliseconds is made of (see bench/tail/README.md).
//
// To stay under the kernel's RT throttle (95 % per second) and leave the CPU to other work, it
// spins in bursts (--burst-ms on, the same time off); only the time spent spinning is observed.
//
// Hand-written (no cyclictest/hwlatdetect: rt-tests is not installed, and hwlatdetect needs
// a kernel tracer this VM lacks); a few dozen lines of clock reads need no library.
//
// Usage: freeze-detect [--cpu N] [--seconds S] [--threshold-us U] [--burst-ms B] [--no-fifo]
// Output: one line per gap ("t=<s> gap_us=<us> steal_ticks=<counter>"), then a summary line:
//   "cpu=N observed_s=.. steal_ticks_delta=.. gaps_over_100us=.. over_1ms=.. over_5ms=.. max_us=.."
// Exit status 0 on success, 2 on a bad argument, 1 when the CPU cannot be used.
// Thread affinity: single-threaded.
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  int cpu = 1;
  double seconds = 30;
  double threshold_us = 1000;
  double burst_ms = 20;
  bool fifo = true;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "freeze-detect: %s\nusage: freeze-detect [--cpu N] [--seconds S] "
               "[--threshold-us U] [--burst-ms B] [--no-fifo]\n",
               why);
  std::exit(2);
}

double parseNumber(const char* flag, const char* text, double lo, double hi) {
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text, &end);
  if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi) {
    std::string msg = std::string(flag) + ": bad value '" + text + "'";
    usage(msg.c_str());
  }
  return v;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) usage((a + " needs a value").c_str());
      return argv[++i];
    };
    if (a == "--cpu") {
      o.cpu = static_cast<int>(parseNumber("--cpu", value(), 0, CPU_SETSIZE - 1));
    } else if (a == "--seconds") {
      o.seconds = parseNumber("--seconds", value(), 0.1, 3600);
    } else if (a == "--threshold-us") {
      o.threshold_us = parseNumber("--threshold-us", value(), 10, 1e7);
    } else if (a == "--burst-ms") {
      o.burst_ms = parseNumber("--burst-ms", value(), 1, 500);
    } else if (a == "--no-fifo") {
      o.fifo = false;
    } else if (a == "-h" || a == "--help") {
      usage("measures vCPU freezes (gaps in a spinning SCHED_FIFO thread)");
    } else {
      usage(("unknown argument " + a).c_str());
    }
  }
  return o;
}

/// The steal column of "cpuN" in /proc/stat (USER_HZ ticks), or -1 when it cannot be read.
long long stealTicks(int cpu) {
  std::ifstream in("/proc/stat");
  const std::string tag = "cpu" + std::to_string(cpu);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string name;
    fields >> name;
    if (name != tag) continue;
    long long v[8] = {};
    for (long long& x : v) fields >> x;
    return fields ? v[7] : -1;
  }
  return -1;
}

double micros(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);

  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(o.cpu, &set);
  if (sched_setaffinity(0, sizeof(set), &set) != 0) {
    std::fprintf(stderr, "freeze-detect: cannot run on CPU %d: %s\n", o.cpu, std::strerror(errno));
    return 1;
  }
  if (o.fifo) {
    sched_param sp{};
    sp.sched_priority = 50;
    if (sched_setscheduler(0, SCHED_FIFO, &sp) != 0) {
      std::fprintf(stderr, "freeze-detect: SCHED_FIFO refused (%s); use --no-fifo or run as root\n",
                   std::strerror(errno));
      return 1;
    }
  }

  const auto threshold = std::chrono::duration<double, std::micro>(o.threshold_us);
  const auto burst = std::chrono::duration<double, std::milli>(o.burst_ms);
  const auto start = Clock::now();
  const auto end =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
  const long long steal0 = stealTicks(o.cpu);
  Clock::duration observed{};
  long long over100us = 0, over1ms = 0, over5ms = 0;
  double max_us = 0;

  while (Clock::now() < end) {
    const auto b0 = Clock::now();
    auto prev = b0;
    while (prev - b0 < burst) {
      auto t = Clock::now();
      const auto gap = t - prev;
      const double us = micros(gap);
      if (us > 100) ++over100us;
      if (us > 1000) ++over1ms;
      if (us > 5000) ++over5ms;
      if (us > max_us) max_us = us;
      if (gap > threshold) {
        // Reading /proc/stat takes tens of µs: restart the clock after it, not counted as a gap.
        std::printf("t=%.4f gap_us=%.0f steal_ticks=%lld\n",
                    std::chrono::duration<double>(t - start).count(), us, stealTicks(o.cpu));
        std::fflush(stdout);
        t = Clock::now();
      }
      prev = t;
    }
    observed += prev - b0;
    std::this_thread::sleep_for(burst);
  }
  const long long steal1 = stealTicks(o.cpu);
  std::printf(
      "cpu=%d observed_s=%.2f steal_ticks_delta=%lld gaps_over_100us=%lld over_1ms=%lld "
      "over_5ms=%lld max_us=%.0f\n",
      o.cpu, std::chrono::duration<double>(observed).count(),
      (steal0 >= 0 && steal1 >= 0) ? steal1 - steal0 : -1, over100us, over1ms, over5ms, max_us);
  return 0;
}
