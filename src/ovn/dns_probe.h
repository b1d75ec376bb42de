#pragma once
// Probing the node's own cache for the fail-over agent: one "round" sends a DNS message to every
// cache IP over UDP and over TCP at once and waits (bounded) for the answers.
//
// The message is opcode STATUS (2) with the question ". IN NS". Every DNS server must answer an
// opcode it does not implement with NOTIMP (RFC 1035 §4.1.1; CoreDNS's/miekg's accept filter and
// our node-cache do so in the worker, before any zone or upstream logic). So the probe measures
// exactly "does the cache process answer DNS on this IP" -- independent of the upstream
// (an upstream outage hits every node alike; failing over would only churn the NB), of the cache
// contents, and without adding entries to the cache. Any reply with the probe's ID and QR=1 counts
// as alive, whatever its rcode; a timeout, a refused connection or a reset counts as dead.
//
// Thread affinity: one thread (the agent loop).
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace nld::ovn {

struct ProbeResult {
  bool ok = false;
  std::string why;  ///< when !ok: "udp: connection refused; tcp: no answer within 300 ms"
};

/// The agent's view of a probe, so its state machine can be driven by a fake in tests.
class Prober {
 public:
  virtual ~Prober() = default;
  /// One round: a result per target, in target order. Returns within the prober's timeout.
  virtual std::vector<ProbeResult> probe() = 0;
};

class DnsProber : public Prober {
 public:
  /// @param ips validated IP literals (the cache IPs); probed on `port` over UDP and TCP.
  DnsProber(std::vector<std::string> ips, uint16_t port, std::chrono::milliseconds timeout);
  std::vector<ProbeResult> probe() override;

  /// The probe message (12-byte header + ". IN NS"), exposed for tests.
  static std::vector<uint8_t> message(uint16_t id);

 private:
  std::vector<std::string> ips_;
  uint16_t port_;
  std::chrono::milliseconds timeout_;
};

}  // namespace nld::ovn
