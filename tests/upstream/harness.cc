#include "upstream/harness.h"

#include <future>
#include <stdexcept>

namespace nld::upstream::testing {

using Clock = std::chrono::steady_clock;

Settings settingsFor(const std::vector<uint16_t>& ports) {
  Settings s;
  for (uint16_t p : ports) s.to.push_back({"127.0.0.1", p, "127.0.0.1:" + std::to_string(p)});
  return s;
}

Harness::Harness(Settings s) {
  shared = makeSharedState(std::move(s), &obs);
  fwd = std::make_unique<Forwarder>(loop, shared, &obs);
  thread_ = std::thread([this] { loop.run(); });
  while (!loop.running()) std::this_thread::yield();
}

Harness::Harness(std::shared_ptr<SharedForwardState> st) : shared(std::move(st)) {
  fwd = std::make_unique<Forwarder>(loop, shared, &obs);
  thread_ = std::thread([this] { loop.run(); });
  while (!loop.running()) std::this_thread::yield();
}

Harness::~Harness() {
  loop.post([this] {
    fwd.reset();
    loop.stop();
  });
  thread_.join();
}

void Harness::onLoop(const std::function<void()>& fn) {
  std::promise<void> p;
  loop.post([&] {
    fn();
    p.set_value();
  });
  p.get_future().wait();
}

ForwarderStats Harness::stats() {
  ForwarderStats s;
  onLoop([&] { s = fwd->stats(); });
  return s;
}

size_t Harness::inflight() {
  size_t n = 0;
  onLoop([&] { n = fwd->inflight(); });
  return n;
}

size_t Harness::flightRecords() {
  size_t n = 0;
  onLoop([&] { n = fwd->flightRecords(); });
  return n;
}

std::vector<Outcome> Harness::resolveAll(const std::vector<ClientQuery>& qs,
                                         std::chrono::milliseconds timeout) {
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::optional<Outcome>> out;
    size_t done = 0;
  };
  auto st = std::make_shared<State>();
  st->out.resize(qs.size());
  const auto start = Clock::now();
  loop.post([this, st, qs, start] {
    for (size_t i = 0; i < qs.size(); ++i) {
      const ClientQuery& cq = qs[i];
      auto name = dns::Name::fromString(cq.name);
      if (!name) throw std::runtime_error("bad test name " + cq.name);
      std::vector<uint8_t> pkt(512);
      uint16_t flags = dns::flag::RD | (cq.cd ? dns::flag::CD : 0);
      size_t len = dns::buildQuery(static_cast<uint16_t>(0x1000 + i), *name, cq.qtype, dns::cls::IN,
                                   flags, cq.edns, 4096, cq.dnssec_ok, pkt);
      pkt.resize(len);
      dns::Query q;
      if (dns::parseQuery(pkt, q) != dns::QueryStatus::kOk) {
        throw std::runtime_error("test query did not parse");
      }
      auto in_resolve = std::make_shared<bool>(true);
      fwd->resolve(pkt, q, cq.tcp, [st, i, start, in_resolve](const Result& r) {
        Outcome o;
        o.status = r.status;
        o.upstream = r.upstream;
        o.synchronous = *in_resolve;
        o.error = std::string(r.error);
        o.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
        if (r.status == Result::Status::kOk) {
          dns::Header h = dns::Header::read(r.packet);
          o.rcode = h.rcode();
          o.tc = h.tc();
          o.reply_qname = r.parsed->question.name.toString();
          if (h.ancount > 0 && r.packet.size() >= 2) o.answer_tag = r.packet[r.packet.size() - 2];
        }
        std::lock_guard<std::mutex> lock(st->mu);
        st->out[i] = o;
        ++st->done;
        st->cv.notify_all();
      });
      *in_resolve = false;
    }
  });
  std::unique_lock<std::mutex> lock(st->mu);
  st->cv.wait_for(lock, timeout, [&] { return st->done == qs.size(); });
  std::vector<Outcome> res;
  for (auto& o : st->out) {
    if (!o) throw std::runtime_error("a query's callback did not run within the timeout");
    res.push_back(*o);
  }
  return res;
}

Outcome Harness::resolveOne(const ClientQuery& q, std::chrono::milliseconds timeout) {
  return resolveAll({q}, timeout).at(0);
}

}  // namespace nld::upstream::testing
