#include "daemon/loop_probes.h"

#include <fmt/format.h>
#include <sys/socket.h>

#include <cerrno>
#include <utility>

#include "common/random.h"
#include "dns/message.h"
#include "net/address.h"

namespace nld::daemon {

std::vector<LoopProbes::Target> LoopProbes::targetsOf(const plan::Plan& plan) {
  std::vector<Target> out;
  for (const auto& b : plan.blocks) {
    if (!b.loop) continue;
    out.push_back({b.loop, b.cfg != nullptr && !b.cfg->keys.empty() ? b.cfg->keys.front().zone
                                                                    : std::string(".")});
  }
  return out;
}

LoopProbes::LoopProbes(net::TimeSource& time) : time_(time) {}

LoopProbes::~LoopProbes() { stop(); }

void LoopProbes::start(std::vector<Target> targets) {
  stop();
  probes_.clear();
  const auto now = time_.now();
  for (auto& t : targets) {
    Probe p;
    p.target = std::move(t);
    p.next_send = now;
    probes_.push_back(std::move(p));
  }
  tick();
}

void LoopProbes::finish(Probe& p, bool deactivate) {
  p.fd.reset();
  p.done = true;
  if (deactivate) p.target.detector->active = false;
}

void LoopProbes::send(Probe& p, net::Clock::time_point now) {
  const plan::LoopDetector& ld = *p.target.detector;
  net::SockAddr to;
  try {
    to = net::makeSockAddr(ld.target_ip, ld.target_port);
  } catch (...) {
    // No address to probe: stop trying; the detector stays active (the pipeline keeps
    // counting, so a loop is still found if another path sends the probe name).
    finish(p, false);
    return;
  }
  net::Fd fd(::socket(to.storage.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) {
    finish(p, false);
    return;
  }
  uint8_t q[512];
  const size_t n =
      dns::buildQuery(static_cast<uint16_t>(random64()), ld.probe, dns::type::HINFO, dns::cls::IN,
                      dns::flag::RD, false, 0, false, dns::MutableBytes(q, sizeof(q)));
  ++p.attempts;
  if (::connect(fd.get(), to.get(), to.len) != 0 || ::send(fd.get(), q, n, 0) != ssize_t(n)) {
    p.next_send = now + kPause;  // not sent: as an exchange that failed at once
    return;
  }
  p.fd = std::move(fd);
  p.sent_at = now;
}

void LoopProbes::tick() {
  const auto now = time_.now();
  for (auto& p : probes_) {
    if (p.done) continue;
    if (p.fd) {
      uint8_t buf[4096];
      const ssize_t r = ::recv(p.fd.get(), buf, sizeof(buf), MSG_DONTWAIT);
      if (r > 0) {
        finish(p, true);  // one exchange completed: no loop on this path
        continue;
      }
      const bool waiting = r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
      if (waiting && now < p.sent_at + kAnswerWait) continue;
      // Timed out, or the socket reported an error (ICMP unreachable): pause, then again.
      p.fd.reset();
      p.next_send = now + kPause;
    }
    if (!p.target.detector->active || p.attempts >= kAttempts) {
      finish(p, true);
      continue;
    }
    if (now >= p.next_send) send(p, now);
  }
}

void LoopProbes::stop() {
  for (auto& p : probes_) {
    if (!p.done) finish(p, true);
  }
}

std::optional<std::string> LoopProbes::detected() const {
  for (const auto& p : probes_) {
    const plan::LoopDetector& ld = *p.target.detector;
    if (ld.seen.load() > 2) {
      return fmt::format(
          "plugin/loop: Loop ({}:{} -> {}:{}) detected for zone \"{}\", see "
          "https://coredns.io/plugins/loop#troubleshooting. Query: \"HINFO {}\"",
          ld.target_ip, ld.target_port, ld.target_ip, ld.target_port, p.target.zone, ld.probe_text);
    }
  }
  return std::nullopt;
}

size_t LoopProbes::probing() const {
  size_t n = 0;
  for (const auto& p : probes_) n += p.done ? 0 : 1;
  return n;
}

}  // namespace nld::daemon
