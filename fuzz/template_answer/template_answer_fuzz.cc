// Fuzz target: the `template` plugin's answer path (plugin/template.h) on arbitrary query
// packets. The query name is the untrusted part: it is matched by the regexes, substituted into
// the record templates (.Name, index .Match, .Group) and the text parsed by ldns. Checks: no
// crash, and every Answer is a complete response our own parser accepts, with the client's
// question. Any violation aborts so libFuzzer / the corpus replay reports it.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "dns/message.h"
#include "plugin/template.h"

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "template_answer_fuzz: invariant violated: %s\n", what);
    std::abort();
  }
}

const nld::plugin::TemplatePlugin& plugin() {
  static const nld::plugin::TemplatePlugin kPlugin([] {
    std::vector<nld::config::TemplateConfig> ts(3);
    ts[0].qclass = 1;
    ts[0].qtype = 255;
    ts[0].zones = {"example.org."};
    ts[0].match = {"^(?P<host>[^.]*)\\.(?P<rest>.*)$"};
    ts[0].answer = {"{{ .Name }} 60 IN A 10.0.0.1",
                    "{{ .Name }} 60 IN TXT \"{{ index .Match 1 }}\"",
                    "{{ .Name }} 60 IN CNAME {{ .Group.host }}.example.org."};
    ts[0].authority = {"{{ .Zone }} 60 IN NS ns.{{ .Group.rest }}"};
    ts[0].additional = {"{{ .Group.host }}.{{ .Zone }} 60 IN AAAA ::1"};
    ts[0].fallthrough = true;
    ts[1].zones = {"."};
    ts[1].qtype = 28;
    ts[1].rcode = 0;
    ts[2].zones = {"."};
    ts[2].match = {"^junk\\."};
    ts[2].rcode = 3;
    ts[2].fallthrough = true;
    return ts;
  }());
  return kPlugin;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const nld::dns::ByteView pkt(data, size);
  nld::dns::Query q;
  if (nld::dns::parseQuery(pkt, q) != nld::dns::QueryStatus::kOk) return 0;
  static std::vector<uint8_t> out(65535);
  const auto d = plugin().decide(pkt, q, "192.0.2.1", nld::dns::MutableBytes(out));
  if (d.verdict != nld::plugin::TemplatePlugin::Verdict::kAnswer) return 0;
  check(d.len >= nld::dns::kHeaderSize && d.len <= out.size(), "answer length");
  nld::dns::Response r;
  check(nld::dns::parseResponse(nld::dns::ByteView(out.data(), d.len), r) == nld::dns::Error::kNone,
        "answer does not parse");
  check(r.question.qtype == q.question.qtype, "question type changed");
  check(r.question.name.equalsIgnoreCase(q.question.name), "question name changed");
  check(r.header.aa(), "no AA");
  return 0;
}
