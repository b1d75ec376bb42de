#include "cache/ttl_policy.h"

#include <algorithm>

namespace nld::cache {
namespace {

constexpr uint32_t kTtlSignBit = 0x80000000u;

uint32_t sane(uint32_t ttl) { return (ttl & kTtlSignBit) ? 0 : ttl; }

}  // namespace

Decision decide(const Settings& s, const dns::Response& r, dns::ResponseType type) {
  using dns::ResponseType;
  const bool has_rrs = !r.rrs.empty();
  switch (type) {
    case ResponseType::kNoError: {
      uint32_t msg = has_rrs ? sane(r.min_ttl) : kDefaultShortTtl;
      return {Placement::kSuccess, clampTtl(msg, s.success_min_ttl, s.success_max_ttl)};
    }
    case ResponseType::kDelegation:
      return {Placement::kSuccess,
              clampTtl(kDefaultShortTtl, s.success_min_ttl, s.success_max_ttl)};
    case ResponseType::kNameError:
    case ResponseType::kNoData: {
      uint32_t neg = has_rrs ? sane(r.min_ttl) : kDefaultShortTtl;
      if (r.has_soa) neg = std::min(neg, sane(r.soa_minimum));
      return {Placement::kDenial, clampTtl(neg, s.denial_min_ttl, s.denial_max_ttl)};
    }
    case ResponseType::kServerError:
      if (s.servfail_ttl == 0) return {};
      return {Placement::kDenial, s.servfail_ttl};
    case ResponseType::kOtherError:
    case ResponseType::kMeta:
    case ResponseType::kUpdate:
      return {};
  }
  return {};
}

void capTtls(dns::MutableBytes pkt, const dns::Response& r, uint32_t duration) {
  for (const dns::RrInfo& rr : r.rrs) {
    if (size_t{rr.ttl_offset} + 4 > pkt.size()) continue;
    uint8_t* field = pkt.data() + rr.ttl_offset;
    dns::store32(field, std::min(sane(dns::load32(field)), duration));
  }
}

}  // namespace nld::cache
