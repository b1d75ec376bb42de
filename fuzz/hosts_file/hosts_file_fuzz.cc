// Fuzz target: the hosts-file parser of the `hosts` plugin (plugin/hosts.h) on arbitrary bytes
// (a hosts file is whatever the node's admin or a mounted ConfigMap put there), and the reverse
// name decoder on names built from the input. Checks the parser's contract: every stored name
// is a lower-case fully qualified name inside the zones, every address is 4 or 16 bytes, and
// the reverse map holds exactly the (address, name) pairs of the forward maps. Any violation
// aborts so libFuzzer / the corpus replay reports it.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "plugin/hosts.h"

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "hosts_file_fuzz: invariant violated: %s\n", what);
    std::abort();
  }
}

size_t pairs(const std::unordered_map<std::string, std::vector<std::string>>& m,
             const std::vector<nld::dns::Name>& zones) {
  size_t n = 0;
  for (const auto& [name, addrs] : m) {
    auto parsed = nld::dns::Name::fromString(name);
    check(parsed.has_value(), "stored name does not parse");
    check(!name.empty() && name.back() == '.', "stored name not fully qualified");
    bool in = false;
    for (const auto& z : zones) in = in || parsed->isSubdomainOf(z);
    check(in, "stored name outside the zones");
    for (char c : name) check(!(c >= 'A' && c <= 'Z'), "stored name not lower-case");
    for (const auto& a : addrs) check(a.size() == 4 || a.size() == 16, "bad address length");
    n += addrs.size();
  }
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::vector<nld::dns::Name> root = {*nld::dns::Name::fromString(".")};
  const std::vector<nld::dns::Name> zones = {*nld::dns::Name::fromString("example.org."),
                                             *nld::dns::Name::fromString("10.in-addr.arpa.")};
  for (const auto* z : {&root, &zones}) {
    const nld::plugin::HostsMap m = nld::plugin::parseHostsText(text, *z, true);
    const size_t forward = pairs(m.name4, *z) + pairs(m.name6, *z);
    size_t reverse = 0;
    for (const auto& [addr, names] : m.addr) {
      check(addr.size() == 4 || addr.size() == 16, "bad reverse address length");
      reverse += names.size();
    }
    check(forward == reverse, "reverse map out of step with the forward maps");
    const nld::plugin::HostsMap nr = nld::plugin::parseHostsText(text, *z, false);
    check(nr.addr.empty(), "no_reverse filled the reverse map");
    check(nr.name4 == m.name4 && nr.name6 == m.name6, "no_reverse changed the forward maps");
  }
  // The reverse decoder on the input's first line taken as a name.
  const std::string_view first = text.substr(0, text.find('\n'));
  if (auto n = nld::dns::Name::fromString(first)) {
    const std::string a = nld::plugin::addressFromReverse(*n);
    check(a.empty() || a.size() == 4 || a.size() == 16, "bad decoded reverse address");
  }
  return 0;
}
