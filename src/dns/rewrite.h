#pragma once
// The `rewrite` Corefile plugin, CoreDNS 1.10 semantics (plugin/rewrite), for the rules
// operators use: `name` (exact, prefix, suffix, substring, regex; with `answer auto`,
// `answer name FROM TO`, `answer value FROM TO`), `type` and `class`, each `stop` (the default)
// or `continue`. Everything else (edns0, ttl, cname, rcode...) is refused by the constructor
// with "<rule> is not supported by node-cache".
//
// How CoreDNS 1.10 behaves, and so how this does (checked against the reference binary):
// - Rules run in order on the question; a `stop` rule that matches ends the list, `continue`
//   goes on with the rewritten question. Names are matched in lower-cased presentation form.
// - The next plugins (cache, forward) see the rewritten question: the cache key is the
//   rewritten question.
// - On the way back the question section is restored to the client's when a `stop` rule
//   matched or a matched rule brought response rules; otherwise the answer keeps the rewritten
//   question (CoreDNS writes through without its ResponseReverter then).
// - An `exact` name rule always reverts answer owner names that match its TO (taken as an
//   unanchored RE2 pattern, as CoreDNS compiles it) to its FROM; `answer auto` maps the
//   rewritten name back to the client's in owner names and in the names of CNAME, NS, DNAME,
//   MX, SRV and SOA (MNAME) RDATA; `answer name`/`answer value` are RE2 patterns with `{n}`
//   group references. Response rules touch the answer section only and run in reverse order.
//
// Not on the plain path: a block without `rewrite` never calls in here. A rewritten answer is
// rebuilt uncompressed into a second buffer (one pass, no allocation except the names of the
// rules being applied).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dns/message.h"

namespace re2 {
class RE2;
}

namespace nld::dns::rewrite {

/// One rule that CoreDNS would answer with on the way back (ResponseRule).
struct ResponseRule {
  enum class Kind : uint8_t { kName, kValue };
  Kind kind = Kind::kName;
  std::shared_ptr<const re2::RE2> pattern;  // null: a remap of `from` to `to` (answer auto)
  std::string replacement;
  std::string remap_from, remap_to;  // answer auto: exact (case-insensitive) name map
};

struct Rule {
  enum class Field : uint8_t { kName, kType, kClass };
  enum class Match : uint8_t { kExact, kPrefix, kSuffix, kSubstring, kRegex };
  bool stop = true;
  Field field = Field::kName;
  Match match = Match::kExact;
  std::string from, to;                 // name rules: lower-cased, as CoreDNS normalises them
  std::shared_ptr<const re2::RE2> re;   // regex rules
  uint16_t from_code = 0, to_code = 0;  // type and class rules
  bool answer_auto = false;
  std::vector<ResponseRule> answers;  // explicit `answer name|value` rules (and exact's revert)
};

/// What applying the rules did to one query, carried to its answer.
struct Outcome {
  bool matched = false;  // some rule rewrote the question
  bool invalid = false;  // the rewritten name is not a valid name: answer SERVFAIL
  bool revert = false;   // restore the client's question (and apply `responses`) on answers
  Question question;     // the rewritten question (name, type, class)
  std::vector<ResponseRule> responses;  // in the order collected; applied in reverse
};

class Rewriter {
 public:
  /// Adds one `rewrite` directive's arguments (the block's tokens flattened in, as CoreDNS
  /// does). Throws std::invalid_argument with the reason (CoreDNS's wording where it has one).
  void addRule(const std::vector<std::string>& args);
  bool empty() const { return rules_.empty(); }
  size_t size() const { return rules_.size(); }
  const std::vector<Rule>& rules() const { return rules_; }

  /// Runs the rules over `q`.
  Outcome apply(const Question& q) const;

  /// The client's query with the question replaced by `o.question` (header and the records
  /// after the question copied), into `out`. Returns its length, 0 if it does not fit.
  static size_t buildRewrittenQuery(ByteView client_pkt, const Query& q, const Outcome& o,
                                    MutableBytes out);

  /// `answer` (a whole response whose question is the rewritten one) rebuilt into `out` with
  /// the client's question section from `client_pkt` and the response rules applied to the
  /// answer section; names written uncompressed. Returns the length, 0 when `answer` does not
  /// parse or the result does not fit `out` (the caller then answers SERVFAIL).
  static size_t revertAnswer(ByteView answer, ByteView client_pkt, const Query& client_q,
                             const Outcome& o, MutableBytes out);

  /// The string rewriting of response rules, exposed for tests: `s` in presentation form.
  static std::string applyResponseRule(const ResponseRule& r, const std::string& s);

 private:
  std::vector<Rule> rules_;
};

/// A type mnemonic ("A", "aaaa", "HINFO"...) as miekg/dns's StringToType knows the common ones;
/// nullopt if unknown.
std::optional<uint16_t> typeFromString(std::string_view s);
/// A class mnemonic: IN, CS, CH, HS, NONE, ANY (miekg/dns StringToClass).
std::optional<uint16_t> classFromString(std::string_view s);

}  // namespace nld::dns::rewrite
