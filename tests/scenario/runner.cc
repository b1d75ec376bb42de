// Runs a parsed scenario: a real Pipeline (built from the scenario's Corefile) on an EventLoop
// driven by the test thread on fake time, and an upstream (UDP socket and TCP listener on one
// 127.0.0.1 port) owned by the runner. Steps run in file order; the first failed expectation
// throws ScenarioError "file:line: ...".
//
// Waiting: the loop only moves on fake time, but datagrams still cross loopback in real time,
// so a step that waits for something to arrive (a query at the upstream, an answer at the
// client) turns the loop with short bounded real waits (support/eventually.h) until it does.
// "expect nothing" turns it for kSettle: an absence cannot be proven faster on real sockets.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include "config/corefile.h"
#include "dns/message.h"
#include "dns/name.h"
#include "net/address.h"
#include "net/event_loop.h"
#include "net/fd.h"
#include "observability/coredns_metrics.h"
#include "plan/plan.h"
#include "scenario/scenario.h"
#include "server/metrics.h"
#include "server/pipeline.h"
#include "support/eventually.h"
#include "support/fake_time.h"
#include "support/packet_builder.h"
#include "upstream/forwarder.h"

namespace nld::test::scenario {
namespace {

using std::chrono::milliseconds;

/// How long a step waits for a datagram or segment that should arrive (real time; a passing
/// scenario needs a few ms).
constexpr milliseconds kArrival{1000};
/// How long "expect nothing" turns the loop before concluding that nothing came.
constexpr milliseconds kSettle{15};

std::string typeName(uint16_t t) {
  switch (t) {
    case dns::type::A:
      return "A";
    case dns::type::AAAA:
      return "AAAA";
    case dns::type::CNAME:
      return "CNAME";
    case dns::type::TXT:
      return "TXT";
    case dns::type::SOA:
      return "SOA";
    case dns::type::NS:
      return "NS";
    default:
      return "TYPE" + std::to_string(t);
  }
}

std::string rcodeName(uint16_t r) {
  static const char* const kNames[] = {"NOERROR",  "FORMERR", "SERVFAIL",
                                       "NXDOMAIN", "NOTIMP",  "REFUSED"};
  return r < 6 ? kNames[r] : "RCODE" + std::to_string(r);
}

using net::Fd;

/// A query the upstream received.
struct Seen {
  std::vector<uint8_t> pkt;
  dns::Query q;
  sockaddr_in from{};
  int tcp_fd = -1;  // the connection it came on; -1: UDP
};

/// A TCP connection to an upstream, and what it sent that is not a whole message yet.
struct Conn {
  Fd fd;
  std::vector<uint8_t> in;
};

/// One upstream: a UDP socket and a TCP listener on one 127.0.0.1 port.
struct Upstream {
  Fd udp, listener;
  uint16_t port = 0;
  std::map<int, Conn> conns;
  std::deque<Seen> arrived;  // received, not yet taken by an expect step
  std::optional<Seen> last;  // the last seen query: what answer/drop act on
};

/// A client query handed to the pipeline, and its answer once there is one.
struct Client {
  int line = 0;
  uint16_t id = 0;
  std::vector<uint8_t> pkt;
  bool answered = false;
  bool checked = false;
  std::vector<uint8_t> answer;  // empty when answered: the pipeline sent nothing
};

class Replies final : public server::ReplyFactory {
 public:
  explicit Replies(Client* c) : c_(c) {}
  server::Reply make() override {
    return [c = c_](dns::ByteView a) {
      c->answered = true;
      c->answer.assign(a.begin(), a.end());
    };
  }

 private:
  Client* c_;
};

class Runner {
 public:
  explicit Runner(const Scenario& s) : s_(s), catalogue_(registry_), metrics_(catalogue_, 1) {}

  ~Runner() {
    if (pipeline_) {
      pipeline_->shutdown();  // fails the queries still waiting; their clients outlive this
      pipeline_.reset();
    }
    loop_.runOnce(milliseconds(0));  // deferred deletions
  }

  void run() {
    for (auto& u : upstreams_) openUpstream(u);
    // UPSTREAM is upstream 1, UPSTREAMn upstream n.
    std::string corefile = s_.corefile;
    for (size_t p = corefile.find("UPSTREAM"); p != std::string::npos;
         p = corefile.find("UPSTREAM", p)) {
      size_t end = p + 8;
      size_t n = 1;
      if (end < corefile.size() && corefile[end] >= '1' && corefile[end] <= '9') {
        n = static_cast<size_t>(corefile[end++] - '0');
      }
      if (n > kUpstreams) fail(s_.corefile_line, "at most UPSTREAM" + std::to_string(kUpstreams));
      const std::string addr = "127.0.0.1:" + std::to_string(upstreams_[n - 1].port);
      corefile.replace(p, end - p, addr);
      p += addr.size();
    }
    try {
      pipeline_ = std::make_unique<server::Pipeline>(loop_, metrics_, 0);
      pipeline_->setPlan(plan::buildPlan(config::parseCorefile(corefile, s_.file), 1, &metrics_));
    } catch (const std::exception& e) {
      fail(s_.corefile_line,
           "the Corefile (its line 1 is this line) does not load: " + std::string(e.what()));
    }
    loop_.runOnce(milliseconds(0));
    for (const Step& st : s_.steps) {
      switch (st.kind) {
        case Step::Kind::kQuery:
          query(st);
          break;
        case Step::Kind::kUpstreamExpect:
          upstreamExpect(st);
          break;
        case Step::Kind::kUpstreamAnswer:
          upstreamAnswer(st);
          break;
        case Step::Kind::kUpstreamDrop: {
          Upstream& u = upstreams_[st.upstream - 1];
          if (!u.last) fail(st.line, "drop: the upstream has seen no query to drop");
          u.last.reset();
          break;
        }
        case Step::Kind::kTime:
          time_.advance(st.time);
          // Twice: a timer that fires may start work (a retry) whose round-end hook sends it.
          loop_.runOnce(milliseconds(0));
          loop_.runOnce(milliseconds(0));
          break;
        case Step::Kind::kClientExpect:
          clientExpect(st);
          break;
      }
    }
  }

 private:
  [[noreturn]] void fail(int line, const std::string& what) const {
    throw ScenarioError(s_.file + ":" + std::to_string(line) + ": " + what);
  }

  void openUpstream(Upstream& up) {
    // UDP first on an ephemeral port, then TCP on the same port (retried if that is taken).
    for (int attempt = 0; attempt < 20; ++attempt) {
      Fd u(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      socklen_t len = sizeof a;
      if (::bind(u.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
          ::getsockname(u.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        throw ScenarioError(s_.file + ": upstream UDP socket: " + std::strerror(errno));
      }
      Fd t(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      if (::bind(t.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) continue;
      if (::listen(t.get(), 16) != 0) continue;
      up.port = ntohs(a.sin_port);
      up.udp = std::move(u);
      up.listener = std::move(t);
      return;
    }
    throw ScenarioError(s_.file + ": no free port for the upstream on 127.0.0.1");
  }

  /// Takes in what reached the upstream (non-blocking). Health probes of the forwarder (". NS"
  /// from its own thread, in real time, after a failure) are not part of any scenario: skipped.
  void pollUpstream() {
    for (auto& u : upstreams_) poll(u);
  }

  void poll(Upstream& up) {
    uint8_t buf[dns::kMaxMessageSize];
    for (;;) {
      Seen s;
      socklen_t len = sizeof s.from;
      const ssize_t n =
          ::recvfrom(up.udp.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&s.from), &len);
      if (n < 0) break;
      s.pkt.assign(buf, buf + n);
      take(up, std::move(s));
    }
    for (;;) {
      const int c = ::accept4(up.listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (c < 0) break;
      up.conns[c].fd = Fd(c);
    }
    for (auto& [fd, conn] : up.conns) {
      for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        conn.in.insert(conn.in.end(), buf, buf + n);
      }
      while (conn.in.size() >= 2) {
        const size_t m = dns::load16(conn.in.data());
        if (conn.in.size() < 2 + m) break;
        Seen s;
        s.pkt.assign(conn.in.begin() + 2, conn.in.begin() + 2 + static_cast<ptrdiff_t>(m));
        s.tcp_fd = fd;
        conn.in.erase(conn.in.begin(), conn.in.begin() + 2 + static_cast<ptrdiff_t>(m));
        take(up, std::move(s));
      }
    }
  }

  static void take(Upstream& up, Seen s) {
    if (dns::parseQuery(s.pkt, s.q) != dns::QueryStatus::kOk) {
      up.arrived.push_back(std::move(s));  // kept: a step expecting a query reports it
      return;
    }
    if (s.q.question.name.labelCount() == 0 && s.q.question.qtype == dns::type::NS) return;
    up.arrived.push_back(std::move(s));
  }

  /// Turns the loop (and takes in upstream traffic) until `pred` holds, at most `limit`.
  bool turnUntil(const std::function<bool()>& pred, milliseconds limit) {
    return eventually(
        [&] {
          loop_.runOnce(milliseconds(0));
          pollUpstream();
          if (pred()) return true;
          loop_.runOnce(milliseconds(1));  // waits for I/O only: fake time does not move
          pollUpstream();
          return pred();
        },
        limit, milliseconds(0));
  }

  void query(const Step& st) {
    const QueryStep& qs = st.query;
    auto c = std::make_unique<Client>();
    c->line = st.line;
    c->id = qs.id.value_or(static_cast<uint16_t>(0x1000 + clients_.size()));
    uint16_t flags = dns::flag::RD;
    if (qs.cd) flags |= dns::flag::CD;
    c->pkt.resize(512);
    c->pkt.resize(dns::buildQuery(c->id, *dns::Name::fromString(qs.name), qs.qtype, dns::cls::IN,
                                  flags, qs.edns, dns::kOurUdpSize, qs.dnssec_ok,
                                  dns::MutableBytes(c->pkt)));
    std::vector<uint8_t> out(dns::kMaxMessageSize);
    Replies replies(c.get());
    // A distinct client port per query, as separate clients would have.
    const auto peer =
        net::makeSockAddr("127.0.0.1", static_cast<uint16_t>(40000 + clients_.size()));
    const size_t n = pipeline_->handle(dns::ByteView(c->pkt), peer, 0,
                                       qs.tcp ? server::Proto::kTcp : server::Proto::kUdp,
                                       dns::MutableBytes(out), replies);
    if (n != server::Pipeline::kPending) {
      c->answered = true;
      c->answer.assign(out.begin(), out.begin() + static_cast<ptrdiff_t>(n));
    }
    clients_.push_back(std::move(c));
    loop_.runOnce(milliseconds(0));  // the round end sends a miss upstream
  }

  void upstreamExpect(const Step& st) {
    const UpstreamExpectStep& e = st.upstream_expect;
    Upstream& up = upstreams_[st.upstream - 1];
    if (e.nothing) {
      turnUntil([&] { return !up.arrived.empty(); }, kSettle);
      if (!up.arrived.empty()) {
        fail(st.line, "expected no upstream query, got " + describe(up.arrived.front()));
      }
      return;
    }
    if (!turnUntil([&] { return !up.arrived.empty(); }, kArrival)) {
      fail(st.line,
           "expected upstream query " + e.name + " " + typeName(e.qtype) + ", none arrived");
    }
    Seen s = std::move(up.arrived.front());
    up.arrived.pop_front();
    const auto want = dns::Name::fromString(e.name);
    if (s.q.question.qtype != e.qtype || !s.q.question.name.equalsIgnoreCase(*want) ||
        (e.tcp && *e.tcp != (s.tcp_fd >= 0))) {
      fail(st.line, "expected upstream query " + e.name + " " + typeName(e.qtype) +
                        (e.tcp ? (*e.tcp ? " over TCP" : " over UDP") : "") + ", got " +
                        describe(s));
    }
    const auto bit = [&](std::optional<bool> expected, bool got, const char* name) {
      if (expected && *expected != got) {
        fail(st.line, std::string("upstream query ") + describe(s) + ": " + name + "=" +
                          (got ? "1" : "0") + ", expected " + (*expected ? "1" : "0"));
      }
    };
    bit(e.dnssec_ok, s.q.edns.dnssec_ok, "do");
    bit(e.cd, s.q.header.cd(), "cd");
    up.last = std::move(s);
  }

  static std::string describe(const Seen& s) {
    std::ostringstream o;
    o << s.q.question.name.toString() << " " << typeName(s.q.question.qtype)
      << (s.tcp_fd >= 0 ? " over TCP" : " over UDP");
    return o.str();
  }

  void upstreamAnswer(const Step& st) {
    Upstream& up = upstreams_[st.upstream - 1];
    if (!up.last) fail(st.line, "answer: the upstream has seen no query to answer");
    const UpstreamAnswerStep& a = st.upstream_answer;
    const Seen& s = *up.last;
    size_t an = 0, ns = 0;
    for (const Record& r : a.records) (r.section == 0 ? an : ns) += 1;
    uint16_t flags = static_cast<uint16_t>(dns::flag::QR | dns::flag::RA | a.rcode |
                                           (s.q.header.flags & (dns::flag::RD | dns::flag::CD)));
    if (a.aa) flags |= dns::flag::AA;
    if (a.tc) flags |= dns::flag::TC;
    if (a.ad) flags |= dns::flag::AD;
    PacketBuilder b;
    b.header(s.q.header.id, flags, 1, static_cast<uint16_t>(an), static_cast<uint16_t>(ns), 0);
    b.raw(std::vector<uint8_t>(s.pkt.begin() + dns::kHeaderSize,
                               s.pkt.begin() + static_cast<ptrdiff_t>(s.q.question.end)));
    for (uint8_t section : {0, 1}) {
      for (const Record& r : a.records) {
        if (r.section != section) continue;
        std::vector<uint8_t> rdata;
        switch (r.type) {
          case dns::type::A: {
            rdata.resize(4);
            inet_pton(AF_INET, r.value.c_str(), rdata.data());
            break;
          }
          case dns::type::AAAA: {
            rdata.resize(16);
            inet_pton(AF_INET6, r.value.c_str(), rdata.data());
            break;
          }
          case dns::type::TXT:
            rdata.resize(1 + r.value.size());
            rdata[0] = static_cast<uint8_t>(r.value.size());
            std::memcpy(rdata.data() + 1, r.value.data(), r.value.size());
            break;
          case dns::type::CNAME:
            rdata = wireName(r.value);
            break;
          case dns::type::SOA: {
            PacketBuilder soa;
            soa.name("ns." + r.value).name("hostmaster." + r.value);
            soa.u32(1).u32(3600).u32(600).u32(86400).u32(r.soa_minimum);
            rdata = soa.bytes();
            break;
          }
          default:
            break;
        }
        if (r.type == dns::type::SOA) {
          b.name(r.value);
        } else {
          b.pointer(dns::kHeaderSize);  // the owner is the question name
        }
        b.rrBody(r.type, dns::cls::IN, r.ttl, rdata);
      }
    }
    const auto& pkt = b.bytes();
    const size_t waiting = forwarderInflight();
    if (s.tcp_fd < 0) {
      ::sendto(up.udp.get(), pkt.data(), pkt.size(), 0, reinterpret_cast<const sockaddr*>(&s.from),
               sizeof s.from);
    } else {
      std::vector<uint8_t> framed(2 + pkt.size());
      dns::store16(framed.data(), static_cast<uint16_t>(pkt.size()));
      std::memcpy(framed.data() + 2, pkt.data(), pkt.size());
      if (::write(s.tcp_fd, framed.data(), framed.size()) != static_cast<ssize_t>(framed.size())) {
        fail(st.line, std::string("answer over TCP: ") + std::strerror(errno));
      }
    }
    up.last.reset();
    // Until the forwarder has taken the answer in: a background refresh (prefetch, serve_stale)
    // answers no client that a later step could wait for, so without this the reply could be
    // read only after the next time step and be stored at the later time. A truncated answer
    // completes nothing (the forwarder retries over TCP; the next step waits for that).
    if (!a.tc) turnUntil([&] { return forwarderInflight() < waiting; }, kArrival);
  }

  /// Client and refresh queries waiting in the forwarders of the current plan.
  size_t forwarderInflight() const {
    size_t n = 0;
    for (const auto& b : pipeline_->workerPlan()->blocks) {
      for (const auto& f : b.forwarders) n += f->inflight();
    }
    return n;
  }

  Client* nextUnchecked() {
    for (auto& c : clients_) {
      if (!c->checked) return c.get();
    }
    return nullptr;
  }

  void clientExpect(const Step& st) {
    const ClientExpectStep& e = st.client_expect;
    if (e.nothing) {
      auto any_new = [&] {
        return std::any_of(clients_.begin(), clients_.end(),
                           [](const auto& c) { return c->answered && !c->checked; });
      };
      turnUntil(any_new, kSettle);
      for (const auto& c : clients_) {
        if (c->answered && !c->checked) {
          fail(st.line, "expected no answer, but the query of line " + std::to_string(c->line) +
                            " got " + summary(c->answer));
        }
      }
      return;
    }
    Client* c = nullptr;
    if (e.query) {
      if (*e.query > clients_.size()) {
        fail(st.line, "#" + std::to_string(*e.query) + ": only " + std::to_string(clients_.size()) +
                          " queries so far");
      }
      c = clients_[*e.query - 1].get();
      if (c->checked) fail(st.line, "#" + std::to_string(*e.query) + " was checked already");
    } else {
      c = nextUnchecked();
      if (c == nullptr) fail(st.line, "no query is waiting for an answer");
    }
    if (!turnUntil([&] { return c->answered; }, kArrival)) {
      fail(st.line, "the query of line " + std::to_string(c->line) + " got no answer");
    }
    c->checked = true;
    check(st.line, *c, e);
  }

  static std::string summary(const std::vector<uint8_t>& wire) {
    if (wire.empty()) return "nothing (the pipeline dropped it)";
    dns::Response r;
    if (dns::parseResponse(dns::ByteView(wire), r) != dns::Error::kNone)
      return "an unparseable reply";
    return rcodeName(r.header.rcode()) + " an=" + std::to_string(r.header.ancount) +
           " ns=" + std::to_string(r.header.nscount);
  }

  static std::string value(const std::vector<uint8_t>& wire, const dns::RrInfo& rr) {
    const uint8_t* base = wire.data() + rr.ttl_offset;
    const size_t rdlen = dns::load16(base + 4);
    const uint8_t* rd = base + 6;
    char text[INET6_ADDRSTRLEN] = {};
    switch (rr.type) {
      case dns::type::A:
        if (rdlen == 4) inet_ntop(AF_INET, rd, text, sizeof text);
        return text;
      case dns::type::AAAA:
        if (rdlen == 16) inet_ntop(AF_INET6, rd, text, sizeof text);
        return text;
      case dns::type::TXT:
        if (rdlen >= 1 && rd[0] + 1u <= rdlen) return std::string(rd + 1, rd + 1 + rd[0]);
        return {};
      default:
        return "(" + std::to_string(rdlen) + " bytes)";
    }
  }

  void check(int line, const Client& c, const ClientExpectStep& e) const {
    const std::string which = "the query of line " + std::to_string(c.line);
    if (c.answer.empty()) fail(line, which + " was dropped (no reply)");
    dns::Response r;
    if (dns::parseResponse(dns::ByteView(c.answer), r) != dns::Error::kNone) {
      fail(line, which + " got an unparseable reply");
    }
    const auto bit = [&](std::optional<bool> want, bool got, const char* name) {
      if (want && *want != got) {
        fail(line,
             which + ": " + name + "=" + (got ? "1" : "0") + ", expected " + (*want ? "1" : "0"));
      }
    };
    if (r.header.id != c.id) fail(line, which + ": reply ID does not match the query's");
    if (r.header.rcode() != e.rcode) {
      fail(line, which + ": got " + summary(c.answer) + ", expected " + rcodeName(e.rcode));
    }
    if (e.qname && r.question.name.toString() != *e.qname) {
      fail(line,
           which + ": question name " + r.question.name.toString() + ", expected " + *e.qname);
    }
    bit(e.aa, r.header.aa(), "aa");
    bit(e.tc, r.header.tc(), "tc");
    bit(e.ad, r.header.ad(), "ad");
    bit(e.cd, r.header.cd(), "cd");
    if (e.an && *e.an != r.header.ancount) {
      fail(line, which + ": an=" + std::to_string(r.header.ancount) + ", expected " +
                     std::to_string(*e.an));
    }
    if (e.ns && *e.ns != r.header.nscount) {
      fail(line, which + ": ns=" + std::to_string(r.header.nscount) + ", expected " +
                     std::to_string(*e.ns));
    }
    std::multiset<std::pair<uint16_t, std::string>> got, want;
    for (const auto& rr : r.rrs) {
      if (rr.section == 0) got.emplace(rr.type, value(c.answer, rr));
      if (e.ttl && rr.section <= 1 && dns::load32(c.answer.data() + rr.ttl_offset) != *e.ttl) {
        fail(line, which + ": " + typeName(rr.type) + " record has TTL " +
                       std::to_string(dns::load32(c.answer.data() + rr.ttl_offset)) +
                       ", expected " + std::to_string(*e.ttl));
      }
    }
    if (e.check_records) {
      for (const Record& x : e.records) want.emplace(x.type, x.value);
      if (got != want) {
        std::string g;
        for (const auto& [t, v] : got) g += " " + typeName(t) + " " + v;
        fail(line, which + ": answer section is" + (g.empty() ? " empty" : g));
      }
    }
  }

  const Scenario& s_;
  // Clients first: they must outlive the pipeline, whose shutdown answers them.
  std::vector<std::unique_ptr<Client>> clients_;
  FakeTime time_;
  net::EventLoop loop_{time_};
  observability::Registry registry_;
  observability::CorednsMetrics catalogue_;
  server::ServerMetrics metrics_;
  std::unique_ptr<server::Pipeline> pipeline_;
  std::vector<Upstream> upstreams_ = std::vector<Upstream>(kUpstreams);
};

}  // namespace

void runScenario(const Scenario& s) {
  Runner r(s);
  r.run();
}

}  // namespace nld::test::scenario
