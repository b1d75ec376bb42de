// DNS message parsing and building (see message.h). Every read is bounds-checked against the
// span; nothing here throws or allocates except Response::rrs growth.
#include "dns/message.h"

#include <algorithm>
#include <cstring>

namespace nld::dns {

namespace {

constexpr size_t kRrFixedSize = 10;  // TYPE, CLASS, TTL, RDLENGTH after the owner name
constexpr size_t kOptRrSize = 11;    // root owner + fixed part + empty RDATA
constexpr size_t kMinRrSize = 11;    // a root-owned RR with empty RDATA

/// One resource record's fixed fields, located in the message.
struct RrView {
  size_t name_offset = 0;
  uint16_t type = 0;
  uint16_t rclass = 0;
  uint32_t ttl = 0;
  size_t ttl_offset = 0;
  size_t rdata_offset = 0;
  size_t end = 0;  // rdata_offset + RDLENGTH
};

Error readRr(ByteView msg, size_t offset, RrView& rr) {
  size_t p = 0;
  if (const Error e = skipName(msg, offset, p); e != Error::kNone) return e;
  if (p + kRrFixedSize > msg.size()) return Error::kTruncated;
  const uint8_t* b = msg.data() + p;
  rr.name_offset = offset;
  rr.type = load16(b);
  rr.rclass = load16(b + 2);
  rr.ttl = load32(b + 4);
  rr.ttl_offset = p + 4;
  rr.rdata_offset = p + kRrFixedSize;
  rr.end = rr.rdata_offset + load16(b + 8);
  if (rr.end > msg.size()) return Error::kTruncated;
  return Error::kNone;
}

/// True if the (already validated) name at `offset` is the root name, following pointers.
bool isRootName(ByteView msg, size_t offset) {
  // skipName has validated the chain: every pointer is in range and strictly backwards, so this
  // loop terminates and stays in bounds.
  while ((msg[offset] & 0xC0) == 0xC0) {
    offset = (size_t{msg[offset] & 0x3Fu} << 8) | msg[offset + 1];
  }
  return msg[offset] == 0;
}

/// Validates an OPT RR (owner root, well-formed option list) and fills `edns`.
Error readOpt(ByteView msg, const RrView& rr, Edns& edns) {
  if (!isRootName(msg, rr.name_offset)) return Error::kBadOpt;
  size_t p = rr.rdata_offset;
  while (p < rr.end) {
    if (p + 4 > rr.end) return Error::kBadOpt;
    p += 4 + size_t{load16(msg.data() + p + 2)};
    if (p > rr.end) return Error::kBadOpt;
  }
  edns.present = true;
  edns.udp_size = rr.rclass;
  edns.ext_rcode = static_cast<uint8_t>(rr.ttl >> 24);
  edns.version = static_cast<uint8_t>(rr.ttl >> 16);
  edns.dnssec_ok = (rr.ttl & 0x8000u) != 0;
  edns.rr_offset = rr.name_offset;
  edns.rr_len = rr.end - rr.name_offset;
  return Error::kNone;
}

/// The name at `offset` must be valid and end exactly at `end`.
Error checkNameFills(ByteView msg, size_t offset, size_t end) {
  if (offset >= end) return Error::kBadRdata;
  size_t n = 0;
  if (const Error e = skipName(msg, offset, n); e != Error::kNone) return e;
  return n == end ? Error::kNone : Error::kBadRdata;
}

/// Validates the RDATA of the types whose RDATA holds (possibly compressed) names, so later
/// consumers may follow those names safely. `soa_minimum` receives the SOA MINIMUM field.
Error checkRdata(ByteView msg, const RrView& rr, uint32_t& soa_minimum) {
  switch (rr.type) {
    case type::NS:
    case type::CNAME:
    case type::PTR:
      return checkNameFills(msg, rr.rdata_offset, rr.end);
    case type::MX:
      if (rr.end < rr.rdata_offset + 3) return Error::kBadRdata;
      return checkNameFills(msg, rr.rdata_offset + 2, rr.end);
    case type::SRV:
      if (rr.end < rr.rdata_offset + 7) return Error::kBadRdata;
      return checkNameFills(msg, rr.rdata_offset + 6, rr.end);
    case type::SOA: {
      size_t p = 0;
      if (rr.rdata_offset >= rr.end) return Error::kBadRdata;
      if (const Error e = skipName(msg, rr.rdata_offset, p); e != Error::kNone) return e;  // MNAME
      if (p >= rr.end) return Error::kBadRdata;
      if (const Error e = skipName(msg, p, p); e != Error::kNone) return e;  // RNAME
      // SERIAL REFRESH RETRY EXPIRE MINIMUM
      if (p + 20 != rr.end) return Error::kBadRdata;
      soa_minimum = load32(msg.data() + rr.end - 4);
      return Error::kNone;
    }
    default:
      return Error::kNone;
  }
}

/// RFC 2181 §8: a TTL with the most significant bit set is treated as zero.
uint32_t effectiveTtl(uint32_t ttl) { return (ttl & 0x80000000u) ? 0 : ttl; }

/// Parses the question at offset 12 into `q`.
Error readQuestion(ByteView msg, Question& q) {
  size_t p = 0;
  if (const Error e = readName(msg, kHeaderSize, q.name, p); e != Error::kNone) {
    q.name.len = 0;
    return e;
  }
  if (p + 4 > msg.size()) {
    q.name.len = 0;
    return Error::kTruncated;
  }
  q.qtype = load16(msg.data() + p);
  q.qclass = load16(msg.data() + p + 2);
  q.name_offset = kHeaderSize;
  q.end = p + 4;
  return Error::kNone;
}

void writeHeader(uint8_t* p, uint16_t id, uint16_t flags, uint16_t qd, uint16_t an, uint16_t ns,
                 uint16_t ar) {
  store16(p, id);
  store16(p + 2, flags);
  store16(p + 4, qd);
  store16(p + 6, an);
  store16(p + 8, ns);
  store16(p + 10, ar);
}

}  // namespace

Header Header::read(ByteView msg) {
  const uint8_t* p = msg.data();
  Header h;
  h.id = load16(p);
  h.flags = load16(p + 2);
  h.qdcount = load16(p + 4);
  h.ancount = load16(p + 6);
  h.nscount = load16(p + 8);
  h.arcount = load16(p + 10);
  return h;
}

uint16_t Query::clientUdpSize() const {
  if (!edns.present) return kMinUdpSize;
  return std::max(kMinUdpSize, edns.udp_size);
}

QueryStatus parseQuery(ByteView pkt, Query& out) {
  out.question.name.len = 0;
  out.question.qtype = out.question.qclass = 0;
  out.question.name_offset = out.question.end = 0;
  out.edns = Edns{};
  if (pkt.size() < kHeaderSize) {
    out.header = Header{};
    return QueryStatus::kDrop;
  }
  out.header = Header::read(pkt);
  const Header& h = out.header;
  if (h.qr()) return QueryStatus::kDrop;

  // The question is parsed even when the message is rejected, so the error can echo it.
  const bool question_ok = h.qdcount >= 1 && readQuestion(pkt, out.question) == Error::kNone;
  if (h.opcode() != 0) return QueryStatus::kNotImp;
  if (h.qdcount != 1 || h.ancount > 1 || h.nscount > 1 || h.arcount > 2) {
    return QueryStatus::kFormErr;
  }
  if (!question_ok) return QueryStatus::kFormErr;

  size_t pos = out.question.end;
  const unsigned non_additional = unsigned{h.ancount} + h.nscount;
  for (unsigned i = 0; i < non_additional; ++i) {
    RrView rr;
    if (readRr(pkt, pos, rr) != Error::kNone) return QueryStatus::kFormErr;
    if (rr.type == type::OPT) return QueryStatus::kFormErr;  // OPT only in additional
    pos = rr.end;
  }
  for (unsigned i = 0; i < h.arcount; ++i) {
    RrView rr;
    if (readRr(pkt, pos, rr) != Error::kNone) {
      out.edns = Edns{};
      return QueryStatus::kFormErr;
    }
    if (rr.type == type::OPT) {
      // A second OPT, or a malformed one: FORMERR without echoing any OPT.
      if (out.edns.present || readOpt(pkt, rr, out.edns) != Error::kNone) {
        out.edns = Edns{};
        return QueryStatus::kFormErr;
      }
    }
    // Other additional records (TSIG, SIG(0), ...) are skipped.
    pos = rr.end;
  }
  if (out.edns.present && out.edns.version != 0) return QueryStatus::kBadVers;
  return QueryStatus::kOk;
}

Error parseResponse(ByteView pkt, Response& out) {
  out.rrs.clear();
  out.question.name.len = 0;
  out.question.qtype = out.question.qclass = 0;
  out.question.name_offset = out.question.end = 0;
  out.edns = Edns{};
  out.min_ttl = 0;
  out.has_soa = false;
  out.soa_ttl = 0;
  out.soa_minimum = 0;
  out.has_ns = false;
  out.end = 0;
  if (pkt.size() < kHeaderSize) {
    out.header = Header{};
    return Error::kTruncated;
  }
  out.header = Header::read(pkt);
  const Header& h = out.header;
  if (!h.qr() || h.qdcount != 1) return Error::kBadCount;
  if (const Error e = readQuestion(pkt, out.question); e != Error::kNone) return e;

  size_t pos = out.question.end;
  const size_t counts[3] = {h.ancount, h.nscount, h.arcount};
  // Never reserve more than the remaining bytes could hold.
  out.rrs.reserve(std::min(counts[0] + counts[1] + counts[2], (pkt.size() - pos) / kMinRrSize));
  bool any_rr = false;
  uint32_t min_ttl = 0;
  for (uint8_t section = 0; section < 3; ++section) {
    for (size_t i = 0; i < counts[section]; ++i) {
      RrView rr;
      if (const Error e = readRr(pkt, pos, rr); e != Error::kNone) return e;
      pos = rr.end;
      if (rr.type == type::OPT) {
        if (section != 2 || out.edns.present) return Error::kBadOpt;
        if (const Error e = readOpt(pkt, rr, out.edns); e != Error::kNone) return e;
        continue;
      }
      uint32_t soa_minimum = 0;
      if (const Error e = checkRdata(pkt, rr, soa_minimum); e != Error::kNone) return e;
      const uint32_t ttl = effectiveTtl(rr.ttl);
      out.rrs.push_back(RrInfo{static_cast<uint32_t>(rr.ttl_offset), rr.type, section});
      min_ttl = any_rr ? std::min(min_ttl, ttl) : ttl;
      any_rr = true;
      if (section == 1) {
        if (rr.type == type::SOA && !out.has_soa) {
          out.has_soa = true;
          out.soa_ttl = ttl;
          out.soa_minimum = soa_minimum;
        } else if (rr.type == type::NS) {
          out.has_ns = true;
        }
      }
    }
  }
  out.min_ttl = min_ttl;
  out.end = pos;
  return Error::kNone;
}

ResponseType classify(const Response& r) {
  const uint8_t opcode = r.header.opcode();
  if (opcode == 5) return ResponseType::kUpdate;
  if (opcode == 4 || r.question.qtype == type::AXFR || r.question.qtype == type::IXFR) {
    return ResponseType::kMeta;
  }
  uint16_t rc = r.header.rcode();
  if (r.edns.present) rc = static_cast<uint16_t>(rc | (uint16_t{r.edns.ext_rcode} << 4));
  if (rc == rcode::NoError && r.header.ancount > 0) return ResponseType::kNoError;
  if (r.has_soa) {
    if (rc == rcode::NoError) return ResponseType::kNoData;
    if (rc == rcode::NxDomain) return ResponseType::kNameError;
  }
  if (rc == rcode::ServFail || rc == rcode::NotImp) return ResponseType::kServerError;
  if (rc == rcode::NoError) return r.has_ns ? ResponseType::kDelegation : ResponseType::kNoError;
  return ResponseType::kOtherError;
}

bool questionMatches(const Question& a, const Question& b) {
  return a.qtype == b.qtype && a.qclass == b.qclass && a.name.equalsIgnoreCase(b.name);
}

namespace {

// Header and question of a reply to `query` (see buildErrorResponse), without any record: the
// shared start of the replies node-cache writes itself. Returns the length, 0 if no room.
size_t writeReplyHead(ByteView query_pkt, const Query& query, uint16_t flags, uint16_t ancount,
                      MutableBytes out) {
  if (out.size() < kHeaderSize) return 0;
  const Question& q = query.question;
  const bool has_question = q.name.len > 0 && q.end > q.name_offset;
  size_t len = kHeaderSize;
  if (has_question) {
    const size_t qlen = size_t{q.name.len} + 4;
    if (len + qlen > out.size()) return 0;
    const size_t raw_len = q.end - q.name_offset;
    if (raw_len == qlen && q.end <= query_pkt.size()) {
      // Uncompressed in the query: echo the client's bytes exactly (case included).
      std::memcpy(out.data() + len, query_pkt.data() + q.name_offset, qlen);
    } else {
      // The client compressed its QNAME: write the decoded (case-preserving) form instead.
      std::memcpy(out.data() + len, q.name.data.data(), q.name.len);
      store16(out.data() + len + q.name.len, q.qtype);
      store16(out.data() + len + q.name.len + 2, q.qclass);
    }
    len += qlen;
  }
  writeHeader(out.data(), query.header.id, flags, has_question ? 1 : 0, has_question ? ancount : 0,
              0, 0);
  return len;
}

uint16_t replyFlags(const Query& query, uint16_t extra) {
  return static_cast<uint16_t>(flag::QR | extra |
                               (query.header.flags & (kOpcodeMask | flag::RD | flag::CD)));
}

}  // namespace

size_t buildErrorResponse(ByteView query_pkt, const Query& query, uint16_t rcode,
                          MutableBytes out) {
  const size_t len =
      writeReplyHead(query_pkt, query, replyFlags(query, rcode & kRcodeMask), 0, out);  // no RA
  if (len == 0) return 0;
  if (query.edns.present) {
    return appendOpt(out, len, kOurUdpSize, query.edns.dnssec_ok, static_cast<uint8_t>(rcode >> 4));
  }
  return len;
}

size_t buildTxtAnswer(ByteView query_pkt, const Query& query, std::string_view text,
                      MutableBytes out) {
  const Question& q = query.question;
  if (q.name.len == 0 || q.end <= q.name_offset) return 0;
  const size_t n = std::min<size_t>(text.size(), 255);
  size_t len = writeReplyHead(query_pkt, query, replyFlags(query, flag::AA | flag::RA), 1, out);
  // Owner: a pointer to the question's name (offset 12); TTL 0: nobody may cache an identity.
  const size_t rr = 2 + 2 + 2 + 4 + 2 + 1 + n;
  if (len == 0 || out.size() - len < rr) return 0;
  uint8_t* p = out.data() + len;
  store16(p, 0xC000 | kHeaderSize);
  store16(p + 2, type::TXT);
  store16(p + 4, q.qclass);
  store32(p + 6, 0);
  store16(p + 10, static_cast<uint16_t>(1 + n));
  p[12] = static_cast<uint8_t>(n);
  if (n > 0) std::memcpy(p + 13, text.data(), n);
  len += rr;
  if (query.edns.present) return appendOpt(out, len, kOurUdpSize, query.edns.dnssec_ok);
  return len;
}

size_t buildQuery(uint16_t id, const Name& name, uint16_t qtype, uint16_t qclass, uint16_t flags,
                  bool edns, uint16_t udp_size, bool dnssec_ok, MutableBytes out) {
  if (name.len == 0) return 0;
  const size_t len = kHeaderSize + name.len + 4;
  if (len > out.size()) return 0;
  writeHeader(out.data(), id, static_cast<uint16_t>(flags & (flag::RD | flag::CD | flag::AD)), 1, 0,
              0, 0);
  std::memcpy(out.data() + kHeaderSize, name.data.data(), name.len);
  store16(out.data() + kHeaderSize + name.len, qtype);
  store16(out.data() + kHeaderSize + name.len + 2, qclass);
  if (edns) return appendOpt(out, len, udp_size, dnssec_ok);
  return len;
}

size_t appendOpt(MutableBytes buf, size_t len, uint16_t udp_size, bool dnssec_ok,
                 uint8_t ext_rcode) {
  if (len < kHeaderSize || len > buf.size() || buf.size() - len < kOptRrSize) return 0;
  uint8_t* m = buf.data();
  const uint16_t arcount = load16(m + 10);
  if (arcount == 0xFFFF) return 0;
  uint8_t* p = m + len;
  p[0] = 0;  // root owner
  store16(p + 1, type::OPT);
  store16(p + 3, udp_size);
  // TTL field: extended rcode (8), version (8) = 0, DO (1), Z (15) = 0.
  store32(p + 5, (uint32_t{ext_rcode} << 24) | (dnssec_ok ? 0x8000u : 0u));
  store16(p + 9, 0);  // RDLENGTH
  store16(m + 10, static_cast<uint16_t>(arcount + 1));
  return len + kOptRrSize;
}

size_t stripOpt(MutableBytes buf, size_t len, const Response& r) {
  if (!r.edns.present) return len;
  if (len > buf.size() || r.edns.rr_offset < kHeaderSize ||
      r.edns.rr_offset + r.edns.rr_len > len) {
    return 0;
  }
  // The OPT itself plus every additional record after it is removed.
  size_t removed = 1;
  for (const RrInfo& rr : r.rrs) {
    if (rr.section == 2 && rr.ttl_offset > r.edns.rr_offset) ++removed;
  }
  uint8_t* m = buf.data();
  const uint16_t arcount = load16(m + 10);
  store16(m + 10, static_cast<uint16_t>(arcount > removed ? arcount - removed : 0));
  return r.edns.rr_offset;
}

size_t truncateToQuestion(MutableBytes buf, size_t question_end) {
  if (question_end < kHeaderSize || question_end > buf.size()) return 0;
  uint8_t* m = buf.data();
  store16(m + 2, static_cast<uint16_t>(load16(m + 2) | flag::TC));
  store16(m + 6, 0);
  store16(m + 8, 0);
  store16(m + 10, 0);
  return question_end;
}

}  // namespace nld::dns
