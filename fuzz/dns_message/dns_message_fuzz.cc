// Fuzz target for the dns module: parses the input as a client query and as an upstream
// response and, when parsing succeeds, exercises the builders, checking invariants (outputs stay
// inside their buffers, built messages re-parse, names round-trip through presentation form).
// Any violated invariant aborts so libFuzzer / the corpus replay reports it.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "dns/message.h"
#include "dns/name.h"
#include "dns/rewrite.h"
#include "dns/shuffle.h"

namespace {

using namespace nld::dns;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "dns_message_fuzz invariant violated: %s\n", what);
    std::abort();
  }
}

void exerciseName(ByteView pkt, size_t offset) {
  Name n;
  size_t next = 0;
  const Error e = readName(pkt, offset, n, next);
  size_t skip_next = 0;
  const Error e2 = skipName(pkt, offset, skip_next);
  check(e == e2, "readName and skipName disagree");
  if (e != Error::kNone) return;
  check(next == skip_next, "readName and skipName end differently");
  check(n.len >= 1 && n.len <= kMaxNameLength, "name length out of range");
  check(next > offset && next <= pkt.size(), "next out of range");
  const auto back = Name::fromString(n.toString());
  check(back.has_value(), "toString output does not parse");
  check(
      back->len == n.len && std::equal(n.data.begin(), n.data.begin() + n.len, back->data.begin()),
      "toString/fromString round trip differs");
  check(n.isSubdomainOf(*back) && back->equalsIgnoreCase(n), "name not equal to itself");
}

void exerciseQuery(ByteView pkt) {
  Query q;
  const QueryStatus st = parseQuery(pkt, q);
  if (st == QueryStatus::kDrop) return;
  if (q.question.name.len > 0) {
    check(q.question.end <= pkt.size() && q.question.name_offset == kHeaderSize,
          "question outside packet");
  }
  if (q.edns.present) {
    check(q.edns.rr_offset + q.edns.rr_len <= pkt.size(), "OPT outside packet");
  }
  check(q.clientUdpSize() >= kMinUdpSize, "client UDP size below 512");
  uint16_t rc = rcode::ServFail;
  switch (st) {
    case QueryStatus::kFormErr:
      rc = rcode::FormErr;
      break;
    case QueryStatus::kNotImp:
      rc = rcode::NotImp;
      break;
    case QueryStatus::kBadVers:
      rc = rcode::BadVers;
      break;
    default:
      break;
  }
  std::vector<uint8_t> out(1024);
  const size_t n = buildErrorResponse(pkt, q, rc, out);
  check(n > 0 && n <= out.size(), "error response length");
  std::vector<uint8_t> small(n - 1);
  check(buildErrorResponse(pkt, q, rc, small) == 0, "error response into too small buffer");
  Response r;
  const ByteView built(out.data(), n);
  if (q.question.name.len > 0) {
    check(parseResponse(built, r) == Error::kNone, "built error response does not re-parse");
    check(questionMatches(r.question, q.question), "error response question differs");
    check(r.edns.present == q.edns.present, "error response OPT presence");
    const uint16_t full_rcode =
        static_cast<uint16_t>(r.header.rcode() | (uint16_t{r.edns.ext_rcode} << 4));
    check(full_rcode == rc, "error response rcode");
    (void)classify(r);
  } else {
    check(Header::read(built).qdcount == 0, "error response without question has qdcount");
  }
  if (st == QueryStatus::kOk) {
    // The identity answer (id.server CH TXT): fits, re-parses with one TXT of the given text.
    static const std::string kIdentity(300, 'i');  // longer than one TXT string: cut to 255
    std::vector<uint8_t> txt(1024);
    const size_t tn = buildTxtAnswer(pkt, q, kIdentity, txt);
    check(tn > 0 && tn <= txt.size(), "txt answer length");
    std::vector<uint8_t> tsmall(tn - 1);
    check(buildTxtAnswer(pkt, q, kIdentity, tsmall) == 0, "txt answer into too small buffer");
    Response tr;
    check(parseResponse(ByteView(txt.data(), tn), tr) == Error::kNone,
          "txt answer does not re-parse");
    check(questionMatches(tr.question, q.question), "txt answer question differs");
    check(tr.header.ancount == 1 && tr.header.aa() && tr.rrs.size() == 1 &&
              tr.rrs[0].type == type::TXT && load16(txt.data() + tr.rrs[0].ttl_offset + 4) == 256,
          "txt answer record");
    check(tr.edns.present == q.edns.present, "txt answer OPT presence");
    std::vector<uint8_t> up(600);
    const size_t un = buildQuery(0x1234, q.question.name, q.question.qtype, q.question.qclass,
                                 q.header.flags, true, kOurUdpSize, q.edns.dnssec_ok, up);
    check(un > 0 && un <= up.size(), "buildQuery length");
    Query q2;
    check(parseQuery(ByteView(up.data(), un), q2) == QueryStatus::kOk, "built query re-parse");
    check(questionMatches(q.question, q2.question), "built query question differs");
  }
}

void exerciseResponse(ByteView pkt) {
  Response r;
  if (parseResponse(pkt, r) != Error::kNone) return;
  check(r.end <= pkt.size() && r.question.end <= r.end, "response end");
  for (const RrInfo& rr : r.rrs) {
    check(rr.ttl_offset + 4 <= r.end && rr.section <= 2, "rr ttl offset");
    uint32_t ttl = load32(pkt.data() + rr.ttl_offset);
    if (ttl & 0x80000000u) ttl = 0;
    check(r.min_ttl <= ttl, "min_ttl above a record's TTL");
  }
  if (r.edns.present) check(r.edns.rr_offset + r.edns.rr_len <= r.end, "OPT outside");
  (void)classify(r);

  std::vector<uint8_t> buf(pkt.begin(), pkt.end());
  const size_t stripped = stripOpt(buf, buf.size(), r);
  check(stripped > 0 && stripped <= buf.size(), "stripOpt length");
  Response r2;
  check(parseResponse(ByteView(buf.data(), stripped), r2) == Error::kNone, "stripped re-parse");
  check(!r2.edns.present, "OPT left after stripOpt");

  std::vector<uint8_t> buf2(pkt.begin(), pkt.end());
  const size_t tn = truncateToQuestion(buf2, r.question.end);
  check(tn == r.question.end, "truncateToQuestion length");
  Response r3;
  check(parseResponse(ByteView(buf2.data(), tn), r3) == Error::kNone, "truncated re-parse");
  check(r3.header.tc() && r3.rrs.empty(), "truncated response content");
}

}  // namespace

// loadbalance on any bytes: stays inside the length, keeps the size; a message that parsed as
// a response still parses after the shuffle, with the same records in number and type.
uint64_t alternate(uint64_t bound) {
  static uint64_t n = 0;
  return (n++ * 7) % bound;
}

void exerciseShuffle(ByteView pkt) {
  std::vector<uint8_t> copy(pkt.begin(), pkt.end());
  copy.resize(pkt.size() + 16, 0xee);  // guard bytes past the length
  shuffleAddressRecords(MutableBytes(copy), pkt.size(), alternate);
  check(
      std::all_of(copy.begin() + long(pkt.size()), copy.end(), [](uint8_t b) { return b == 0xee; }),
      "shuffle wrote past the length");
  Response before, after;
  if (parseResponse(pkt, before) != Error::kNone) return;
  check(parseResponse(ByteView(copy.data(), pkt.size()), after) == Error::kNone,
        "shuffled response no longer parses");
  check(before.rrs.size() == after.rrs.size(), "shuffle changed the record count");
  for (size_t i = 0; i < before.rrs.size(); ++i) {
    check(before.rrs[i].type == after.rrs[i].type, "shuffle changed a record type");
  }
}

// rewrite on any bytes: a query's rewritten copy re-parses with the rewritten question; an
// answer reverted for a fixed client query stays inside its buffer and, when the input parsed
// as a response, re-parses with the client's question.
void exerciseRewrite(ByteView pkt) {
  static const rewrite::Rewriter kRules = [] {
    rewrite::Rewriter r;
    r.addRule({"continue", "name", "suffix", ".svc.", ".svc.cluster.local.", "answer", "auto"});
    r.addRule({"continue", "type", "ANY", "HINFO"});
    r.addRule({"name", "regex", R"((.*)\.local\.$)", "{1}.example.", "answer", "name",
               R"((.*)\.example\.$)", "{1}.local.", "answer", "value", "(.*)", "x.{1}"});
    return r;
  }();
  Query q;
  if (parseQuery(pkt, q) == QueryStatus::kOk) {
    const rewrite::Outcome o = kRules.apply(q.question);
    if (o.matched && !o.invalid) {
      std::vector<uint8_t> up(kMaxMessageSize);
      const size_t n = rewrite::Rewriter::buildRewrittenQuery(pkt, q, o, up);
      if (n != 0) {
        Query q2;
        const QueryStatus st = parseQuery(ByteView(up.data(), n), q2);
        check(st != QueryStatus::kOk || questionMatches(q2.question, o.question),
              "rewritten query question differs");
      }
    }
  }
  static const std::vector<uint8_t> kClient = [] {
    std::vector<uint8_t> b(512);
    const size_t n = buildQuery(1, *Name::fromString("web.ns.svc."), type::A, cls::IN, 0x0100, true,
                                1232, false, b);
    b.resize(n);
    return b;
  }();
  Query client;
  check(parseQuery(ByteView(kClient), client) == QueryStatus::kOk, "fixed client query");
  const rewrite::Outcome o = kRules.apply(client.question);
  std::vector<uint8_t> out(kMaxMessageSize + 16, 0xee);
  const size_t n = rewrite::Rewriter::revertAnswer(pkt, ByteView(kClient), client, o,
                                                   MutableBytes(out.data(), kMaxMessageSize));
  check(n <= kMaxMessageSize, "reverted answer length");
  check(std::all_of(out.end() - 16, out.end(), [](uint8_t b) { return b == 0xee; }),
        "revertAnswer wrote past its buffer");
  Response r;
  if (n == 0 || parseResponse(pkt, r) != Error::kNone) return;
  Response back;
  check(parseResponse(ByteView(out.data(), n), back) == Error::kNone,
        "reverted answer does not re-parse");
  check(questionMatches(back.question, client.question), "reverted answer question");
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ByteView pkt(data, size);
  exerciseQuery(pkt);
  exerciseResponse(pkt);
  exerciseShuffle(pkt);
  exerciseRewrite(pkt);
  // readName at every offset (bounded so one large input cannot dominate a fuzzing run).
  const size_t limit = std::min<size_t>(size, 2048);
  for (size_t off = 0; off < limit; ++off) exerciseName(pkt, off);
  return 0;
}
