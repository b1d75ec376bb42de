#pragma once
// The `template` plugin (CoreDNS 1.10 plugin/template): an rcode and records rendered from Go
// templates (the subset nld::GoTemplate implements: .Name .Zone .Class .Type .Remote, index
// .Match N, .Group.NAME) and parsed as zone-file text by Knot's libzscanner (miekg/dns's
// dns.NewRR in CoreDNS: origin ".", class IN, default TTL 3600), loaded with dlopen() by the
// first plan that has records. It covers the operators' recipes: AAAA filtering
// (`template IN AAAA . { rcode NOERROR }` → NODATA), NXDOMAIN for search-path junk
// (`template ANY ANY svc.cluster.local.svc.cluster.local { rcode NXDOMAIN }` or a `match`
// regex), and synthesised answers (`answer "{{ .Name }} 60 IN A 10.0.0.1"`).
//
// Semantics (as CoreDNS's handler, checked against the reference by test_template.py): all
// `template` lines of a block form one plugin. A name outside every template's zones goes to the
// next plugin. Templates are tried in file order: one whose zones, class and type fit (ANY on
// either side fits) and one of whose regexes (default ".*") matches the lower-case name
// answers: AA, its rcode, its records — except rcode SERVFAIL, which is returned as a bare
// SERVFAIL (no AA). A template whose zones/class/type fit but no regex matches ends the search
// with a bare SERVFAIL (CoreDNS returns NXDOMAIN as a code without writing a reply; the
// upstream image's client sees SERVFAIL) unless its `fallthrough` covers the name. When no template
// answers the query goes to the next plugin (hosts, forward). A record that does not render or
// parse makes the answer a bare SERVFAIL (CoreDNS returns the error).
//
// Threading: immutable after construction, shared by the workers; decide() from any thread.
#include <re2/re2.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/go_text.h"
#include "config/corefile.h"
#include "dns/message.h"
#include "dns/name.h"

namespace nld::plugin {

class TemplatePlugin {
 public:
  /// Throws std::runtime_error if a template has records and libzscanner cannot be loaded, or
  /// for a zone, regex or template the Corefile reader let through (it checks them).
  explicit TemplatePlugin(const std::vector<config::TemplateConfig>& templates);

  ~TemplatePlugin();
  TemplatePlugin(const TemplatePlugin&) = delete;
  TemplatePlugin& operator=(const TemplatePlugin&) = delete;

  enum class Verdict : uint8_t { kNext, kError, kAnswer };
  struct Decision {
    Verdict verdict = Verdict::kNext;
    uint8_t rcode = 0;  // Error: the bare error to write
    size_t len = 0;     // Answer: the reply's length in `out` (no OPT; RD/CD left to the caller)
  };
  /// `remote`: the client's IP (.Remote). `out` must hold 65535 bytes.
  Decision decide(dns::ByteView pkt, const dns::Query& q, std::string_view remote,
                  dns::MutableBytes out) const;

 private:
  struct Template {
    uint16_t qclass = 255, qtype = 255;
    std::vector<dns::Name> zones;
    std::vector<std::unique_ptr<re2::RE2>> regexes;
    std::vector<std::string> zone_texts;  // as zones, for .Zone
    std::vector<GoTemplate> answer, additional, authority;
    uint8_t rcode = 0;
    bool fallthrough = false;
    std::vector<dns::Name> fallthrough_zones;
  };
  /// Renders `tmpl` and appends the record it parses to (one of the sections). False on error.
  bool appendRecord(const GoTemplate& tmpl, const GoTemplate::Data& data, dns::MutableBytes out,
                    size_t& len) const;

  std::vector<Template> templates_;
};

}  // namespace nld::plugin
