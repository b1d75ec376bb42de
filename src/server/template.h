#pragma once
// The `template` plugin (CoreDNS 1.10 plugin/template), the subset node-cache implements: the
// answer is an rcode with no records (the record sections are refused when the Corefile is
// read). It covers the operators' recipes: AAAA filtering (`template IN AAAA . { rcode NOERROR }`
// → NODATA) and NXDOMAIN for search-path junk (`template ANY ANY svc.cluster.local.svc.cluster.
// local { rcode NXDOMAIN }` or a `match` regex).
//
// Semantics (as CoreDNS's handler, checked against the reference by test_template.py): all
// `template` lines of a block form one plugin. A name outside every template's zones goes to the
// next plugin. Templates are tried in file order: one whose zones, class and type fit (ANY on
// either side fits) and one of whose regexes (default ".*") matches the lower-case name
// answers: AA, its rcode, no records — except rcode SERVFAIL, which is returned as a bare
// SERVFAIL (no AA). A template whose zones/class/type fit but no regex matches ends the search
// with a bare SERVFAIL (CoreDNS returns NXDOMAIN as a code without writing a reply; the
// upstream image's client sees SERVFAIL) unless its `fallthrough` covers the name. When no template answers the
// query goes to the next plugin (hosts, forward).
//
// Threading: immutable after construction, shared by the workers; decide() from any thread.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <re2/re2.h>

#include "config/corefile.h"
#include "dns/message.h"
#include "dns/name.h"

namespace nld::server {

class TemplatePlugin {
 public:
  /// Throws std::runtime_error for a zone or regex the Corefile reader let through (it checks
  /// both, so only on a programming error).
  explicit TemplatePlugin(const std::vector<config::TemplateConfig>& templates);

  enum class Verdict : uint8_t { Next, Error, Answer };
  struct Decision {
    Verdict verdict = Verdict::Next;
    uint8_t rcode = 0;  // Error: the bare error to write; Answer: the answer's rcode
  };
  Decision decide(const dns::Query& q) const;

 private:
  struct Template {
    uint16_t qclass = 255, qtype = 255;
    std::vector<dns::Name> zones;
    std::vector<std::unique_ptr<re2::RE2>> regexes;
    uint8_t rcode = 0;
    bool fallthrough = false;
    std::vector<dns::Name> fallthrough_zones;
  };
  std::vector<Template> templates_;
};

}  // namespace nld::server
