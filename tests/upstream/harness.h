#pragma once
// Drives a Forwarder on a real EventLoop running in its own thread; queries are posted to the
// loop and their results collected for the test thread.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "dns/message.h"
#include "net/event_loop.h"
#include "support/eventually.h"
#include "upstream/forwarder.h"

namespace nld::upstream::testing {

using nld::test::eventually;

class CountingObserver final : public ForwardObserver {
 public:
  void onExchange(int, uint8_t, double) override { ++exchanges; }
  void onHealthcheckFailure(int) override { ++healthcheck_failures; }
  void onConnCache(int, std::string_view proto, bool hit) override {
    if (proto == "tcp") (hit ? tcp_hits : tcp_misses)++;
    if (proto == "udp") (hit ? udp_hits : udp_misses)++;
  }
  void onAllUpstreamsDown() override { ++all_down; }
  void onMaxConcurrentReject() override { ++max_concurrent_rejects; }
  void onCoalesceReject() override { ++coalesce_rejects; }

  std::atomic<int> exchanges{0}, healthcheck_failures{0}, tcp_hits{0}, tcp_misses{0}, udp_misses{0},
      udp_hits{0}, all_down{0}, max_concurrent_rejects{0}, coalesce_rejects{0};
};

struct Outcome {
  Result::Status status = Result::Status::kServFail;
  int upstream = -1;
  uint8_t rcode = 0;
  uint8_t answer_tag = 0;   // third octet of the A record (which responder answered)
  std::string reply_qname;  // the reply's QNAME (presentation)
  bool tc = false;
  std::chrono::milliseconds elapsed{0};
  bool synchronous = false;  // the callback ran inside resolve()
  std::string error;         // Result::error
};

struct ClientQuery {
  std::string name = "www.example.org";
  uint16_t qtype = dns::type::A;
  bool tcp = false;
  bool edns = true;
  bool dnssec_ok = false;
  bool cd = false;
};

class Harness {
 public:
  explicit Harness(Settings s);
  /// A second worker of the same stanza (shares health, round-robin and max_concurrent state).
  explicit Harness(std::shared_ptr<SharedForwardState> st);
  ~Harness();

  /// Resolves all queries concurrently (posted in one loop task); waits up to `timeout`.
  std::vector<Outcome> resolveAll(const std::vector<ClientQuery>& qs,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(10));
  Outcome resolveOne(const ClientQuery& q,
                     std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /// Runs fn on the loop thread and waits for it.
  void onLoop(const std::function<void()>& fn);
  ForwarderStats stats();
  size_t inflight();
  size_t flightRecords();

  CountingObserver obs;
  std::shared_ptr<SharedForwardState> shared;
  net::EventLoop loop;
  std::unique_ptr<Forwarder> fwd;

 private:
  std::thread thread_;
};

/// Settings with one 127.0.0.1 upstream per port.
Settings settingsFor(const std::vector<uint16_t>& ports);

}  // namespace nld::upstream::testing
