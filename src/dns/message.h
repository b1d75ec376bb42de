#pragma once
// DNS messages (RFC 1035 §4, RFC 6891 EDNS0): parsing queries and upstream responses into views
// that hold offsets into the packet, and building the few messages node-cache writes itself
// (error responses, upstream queries, OPT records, truncation).
//
// Hand-written on purpose: this is the per-query hot path. Nothing here allocates except
// Response::rrs, which callers reuse across parses. All reads are bounds-checked; nothing here
// throws; malformed input yields an Error / QueryStatus.
//
// Thread affinity: none. Every function here is a pure function of its arguments (no shared or
// static state), callable from any thread; objects are not synchronised.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "dns/name.h"

namespace nld::dns {

inline constexpr size_t kHeaderSize = 12;
inline constexpr uint16_t kMinUdpSize = 512;   // RFC 1035 / RFC 6891 §6.2.5 floor
inline constexpr uint16_t kOurUdpSize = 1232;  // what we advertise (DNS flag day 2020)
inline constexpr size_t kMaxMessageSize = 65535;

namespace type {
inline constexpr uint16_t A = 1, NS = 2, CNAME = 5, SOA = 6, PTR = 12, HINFO = 13, MX = 15,
                          TXT = 16, AAAA = 28, SRV = 33, OPT = 41, DS = 43, RRSIG = 46, NSEC = 47,
                          DNSKEY = 48, NSEC3 = 50, HTTPS = 65, IXFR = 251, AXFR = 252, ANY = 255;
}
namespace cls {
inline constexpr uint16_t IN = 1, CH = 3, HS = 4, ANY = 255;
}
namespace rcode {
inline constexpr uint16_t NoError = 0, FormErr = 1, ServFail = 2, NxDomain = 3, NotImp = 4,
                          Refused = 5, BadVers = 16;  // BadVers needs the OPT's extended bits
}
namespace flag {
inline constexpr uint16_t QR = 0x8000, AA = 0x0400, TC = 0x0200, RD = 0x0100, RA = 0x0080,
                          AD = 0x0020, CD = 0x0010;
}
inline constexpr uint16_t kOpcodeMask = 0x7800;  // opcode bits within flags
inline constexpr uint16_t kRcodeMask = 0x000f;

/// The fixed 12-byte header, decoded (never overlaid on the buffer).
struct Header {
  uint16_t id = 0, flags = 0, qdcount = 0, ancount = 0, nscount = 0, arcount = 0;

  /// Precondition: msg.size() >= kHeaderSize.
  static Header read(ByteView msg);
  bool qr() const { return flags & flag::QR; }
  uint8_t opcode() const { return static_cast<uint8_t>((flags >> 11) & 0xf); }
  bool aa() const { return flags & flag::AA; }
  bool tc() const { return flags & flag::TC; }
  bool rd() const { return flags & flag::RD; }
  bool ra() const { return flags & flag::RA; }
  bool ad() const { return flags & flag::AD; }
  bool cd() const { return flags & flag::CD; }
  uint8_t rcode() const { return static_cast<uint8_t>(flags & kRcodeMask); }
};

struct Question {
  Name name;
  uint16_t qtype = 0;
  uint16_t qclass = 0;
  size_t name_offset = 0;  // where the QNAME starts in the message (12 for the first question)
  size_t end = 0;          // offset just past QCLASS
};

/// The message's OPT pseudo-RR, if any (RFC 6891 §6.1).
struct Edns {
  bool present = false;
  uint16_t udp_size = 0;  // as advertised, raw
  uint8_t ext_rcode = 0;  // upper 8 bits of the 12-bit rcode
  uint8_t version = 0;
  bool dnssec_ok = false;
  size_t rr_offset = 0;  // the whole OPT RR: [rr_offset, rr_offset + rr_len)
  size_t rr_len = 0;
};

/// An incoming query, parsed.
struct Query {
  Header header;
  Question question;
  Edns edns;

  /// The largest UDP response the client accepts: 512 without EDNS, else max(512, udp_size).
  uint16_t clientUdpSize() const;
};

enum class QueryStatus : uint8_t {
  kOk,       // exactly one question, parsed; edns parsed if present
  kDrop,     // send nothing: shorter than a header, or QR=1 (it is a response)
  kFormErr,  // answer FORMERR: counts out of range, bad question, bad/duplicate OPT, bad names
  kNotImp,   // answer NOTIMP: opcode other than QUERY
  kBadVers,  // answer BADVERS: EDNS version != 0
};

/// Parses a query from a client. Accept rules (as miekg/dns acceptfunc.go): QR=1 → Drop;
/// opcode != QUERY → NotImp; QDCOUNT != 1, ANCOUNT > 1, NSCOUNT > 1 or ARCOUNT > 2 → FormErr;
/// unparseable question or records → FormErr; more than one OPT → FormErr; EDNS version != 0 →
/// BadVers. Bytes after the last record are ignored. `out.question` is filled whenever the
/// question itself parsed (also for FormErr caused by later sections), so errors can echo it.
QueryStatus parseQuery(ByteView pkt, Query& out);

/// Where each resource record's TTL lives, so cached responses can be aged in place.
struct RrInfo {
  uint32_t ttl_offset = 0;
  uint16_t type = 0;
  uint8_t section = 0;  // 0 answer, 1 authority, 2 additional
};

/// A response from an upstream server, parsed for validation, caching and TTL patching.
struct Response {
  Header header;
  Question question;         // valid when header.qdcount == 1
  Edns edns;                 // the upstream's OPT; stripped before caching / relaying
  std::vector<RrInfo> rrs;   // every RR except OPT, in message order; reused across parses
  uint32_t min_ttl = 0;      // minimum TTL over rrs; 0 if there are none
  bool has_soa = false;      // an SOA in the authority section
  uint32_t soa_ttl = 0;      // that SOA's RR TTL
  uint32_t soa_minimum = 0;  // that SOA's MINIMUM field (RFC 2308 negative TTL)
  bool has_ns = false;       // an NS in the authority section (delegation)
  size_t end = 0;            // offset just past the last record
};

/// Parses an upstream response completely (all names, all records). Requires QR=1 and
/// QDCOUNT == 1 (else BadCount). Clears and refills out.rrs. RDATA names of NS, CNAME, PTR, MX,
/// SRV and SOA are validated and must fill RDLENGTH exactly (else BadRdata). TTLs with the top
/// bit set count as 0 for min_ttl / soa_ttl (RFC 2181 §8). OPT outside the additional section,
/// a second OPT, a non-root owner or a malformed option list → BadOpt. Bytes after the last
/// record are ignored (see `end`). Thread-compatible: no shared state.
Error parseResponse(ByteView pkt, Response& out);

/// Cache classification (CoreDNS plugin/pkg/response/typify.go).
enum class ResponseType : uint8_t {
  kNoError,      // answer present, or NOERROR without SOA/NS
  kNoData,       // NOERROR, empty answer, SOA in authority
  kNameError,    // NXDOMAIN with SOA in authority
  kServerError,  // SERVFAIL or NOTIMP
  kDelegation,   // NOERROR, empty answer, NS in authority
  kOtherError,   // REFUSED, FORMERR, NXDOMAIN without SOA, ... (never cached)
  kMeta,         // AXFR/IXFR, NOTIFY (never cached)
  kUpdate,       // opcode UPDATE (never cached)
};
ResponseType classify(const Response& r);

/// Same QNAME (case-insensitive), QTYPE and QCLASS.
bool questionMatches(const Question& a, const Question& b);

// ---- builders: each writes into `out` and returns the length, or 0 if `out` is too small ----

/// A reply carrying only an rcode: the query's ID, opcode, RD and CD, QR=1, RA=0 (as CoreDNS's
/// server writes its own error replies, with SetRcode: REFUSED, FORMERR, BADVERS, NOTIMP and the
/// SERVFAIL/REFUSED of a failed forward); the question
/// copied byte-for-byte when the query's question parsed; an OPT (our UDP size, version 0, DO
/// copied, extended rcode bits for rcodes > 15) when the query had one. Works for any
/// QueryStatus except Drop (for FormErr from a question that did not parse: header only). A
/// QNAME the client compressed is written in its decoded form (case still preserved).
size_t buildErrorResponse(ByteView query_pkt, const Query& query, uint16_t rcode, MutableBytes out);

/// An authoritative (AA=1) NOERROR answer with one TXT record of one string, `text` (cut at 255
/// bytes), TTL 0, owner and class those of the question: what node-cache answers to the RFC 4892
/// identity queries. Header bits (plus RA=1) and the question as in buildErrorResponse; an OPT
/// when the query had one. Returns 0 when the question did not parse or `out` is too small.
size_t buildTxtAnswer(ByteView query_pkt, const Query& query, std::string_view text,
                      MutableBytes out);

/// An upstream query: `id`, the given header flag bits (RD, CD, AD), one question, and our own
/// OPT (RFC 6891: OPT is hop-by-hop, the client's is never forwarded) when `edns` is true.
size_t buildQuery(uint16_t id, const Name& name, uint16_t qtype, uint16_t qclass, uint16_t flags,
                  bool edns, uint16_t udp_size, bool dnssec_ok, MutableBytes out);

/// Appends an OPT RR (root owner, `udp_size`, version 0, DO, extended rcode bits) to the message
/// of length `len` in `buf` and increments ARCOUNT. Returns the new length, 0 if no room.
size_t appendOpt(MutableBytes buf, size_t len, uint16_t udp_size, bool dnssec_ok,
                 uint8_t ext_rcode = 0);

/// Removes the OPT RR described by `edns` (and any record after it, which can only be additional
/// data) from the message in `buf` of length `len`, fixing ARCOUNT. `r` must describe this
/// message. Returns the new length (len if there is no OPT; 0 if `r` cannot describe `buf`).
/// Entries of r.rrs at or after edns.rr_offset no longer exist in the stripped message.
size_t stripOpt(MutableBytes buf, size_t len, const Response& r);

/// Keeps only header and question, sets TC=1 and zeroes the AN/NS/AR counts (RFC 1035 §4.2.1
/// truncation; the client retries over TCP). Returns the new length (= question_end), or 0 if
/// question_end is below the header size or beyond the buffer.
size_t truncateToQuestion(MutableBytes buf, size_t question_end);

inline void setId(uint8_t* msg, uint16_t id) { store16(msg, id); }

}  // namespace nld::dns
