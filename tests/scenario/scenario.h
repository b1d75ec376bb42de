#pragma once
// The scenario runner (issue 14, in the spirit of Unbound's replay tests): a readable file says
// what a client asks, what the upstream sees and answers, how much time passes and what the
// client gets; the runner drives the real Pipeline (cache, coalescing, serve_stale, forwarder)
// through it on fake time. The grammar is in tests/scenario/README.md.
//
// Why a real Pipeline on a fake clock rather than a fake forwarder: the semantics under test
// (TTL ageing, negative caching, stale refresh, coalescing, attempt timeouts and the 5 s budget)
// live in the interplay of cache, pipeline and forwarder, so all three run as in the process.
// Only the clock is fake (tests/support/fake_time.h) and the upstream is a socket on 127.0.0.1
// owned by the runner, so every expiry is reached exactly and nothing sleeps.
#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace nld::test::scenario {

/// A problem in a scenario file or a failed expectation, as "file:line: what".
class ScenarioError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// One resource record of an upstream answer or of an expected client answer.
struct Record {
  uint8_t section = 0;  // 0 answer, 1 authority
  uint16_t type = 0;
  uint32_t ttl = 300;
  std::string value;  // A/AAAA address, TXT string, CNAME target, SOA zone
  uint32_t soa_minimum = 0;
};

struct QueryStep {
  std::string name;
  uint16_t qtype = 0;
  bool dnssec_ok = false;
  bool cd = false;
  bool edns = false;
  bool tcp = false;
  std::optional<uint16_t> id;
};

struct UpstreamExpectStep {
  bool nothing = false;
  std::string name;
  uint16_t qtype = 0;
  std::optional<bool> tcp;            // unset: either transport
  std::optional<bool> dnssec_ok, cd;  // the DO bit of its OPT, its CD bit
};

struct UpstreamAnswerStep {
  uint16_t rcode = 0;
  bool aa = false;
  bool tc = false;
  bool ad = false;
  std::vector<Record> records;
};

struct ClientExpectStep {
  bool nothing = false;
  std::optional<size_t> query;  // #N (1-based); unset: the oldest answer not checked yet
  uint16_t rcode = 0;
  bool check_records = false;   // records listed: the answer section is exactly them
  std::vector<Record> records;  // section 0 only, compared as a multiset of (type, value)
  std::optional<uint32_t> ttl;  // every answer and authority record has this TTL
  std::optional<bool> aa, tc, ad, cd;
  std::optional<size_t> an, ns;
  std::optional<std::string> qname;  // the question name of the reply, case-sensitive
};

struct Step {
  enum class Kind { kQuery, kUpstreamExpect, kUpstreamAnswer, kUpstreamDrop, kTime, kClientExpect };
  Kind kind = Kind::kQuery;
  int line = 0;
  size_t upstream = 1;  // upstream steps: which (step upstream = 1, step upstream2 = 2, ...)
  QueryStep query;
  UpstreamExpectStep upstream_expect;
  UpstreamAnswerStep upstream_answer;
  std::chrono::milliseconds time{0};
  ClientExpectStep client_expect;
};

/// Upstreams a scenario can use: UPSTREAM (= UPSTREAM1), UPSTREAM2, UPSTREAM3.
inline constexpr size_t kUpstreams = 3;

struct Scenario {
  std::string file;
  std::string corefile;  // UPSTREAM not yet replaced
  int corefile_line = 0;
  std::vector<Step> steps;
};

/// Parses a scenario. Throws ScenarioError naming `file` and the line of the first problem.
Scenario parseScenario(std::string_view text, const std::string& file);
/// Reads and parses a file (ScenarioError if it cannot be read).
Scenario loadScenario(const std::string& path);

/// Runs a scenario against a fresh Pipeline on fake time. Throws ScenarioError "file:line: ..."
/// at the first step whose expectation fails (and for a Corefile that does not load).
void runScenario(const Scenario& s);

/// The *.scn files of `dir`, sorted.
std::vector<std::string> listScenarios(const std::string& dir);

}  // namespace nld::test::scenario
