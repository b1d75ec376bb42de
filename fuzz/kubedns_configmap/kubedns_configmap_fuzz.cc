// Fuzz target for the kube-dns ConfigMap keys node-cache reads (stubDomains, upstreamNameservers:
// JSON written by cluster users) and for rendering them into a Corefile that must then parse.
// Input layout: the bytes up to the first NUL are stubDomains, the rest upstreamNameservers.
// Invariant: malformed input yields an error Result only; an accepted config renders into a
// Corefile that our own parser accepts (generated stub blocks are never invalid).
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>

#include "config/corefile.h"
#include "node/corefile_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t nul = in.find('\0');
  std::string_view stub = in.substr(0, nul);
  std::string_view upstream =
      nul == std::string_view::npos ? std::string_view() : in.substr(nul + 1);
  auto kd = nld::node::parseKubeDnsConfig(stub, upstream);
  if (!kd) return 0;
  nld::node::RenderInput ri;
  // A dual-stack -localip and the upstream manifest's health line: stub blocks bind both
  // families and the host:port placeholder takes the first IP; all of it must load.
  ri.base =
      ".:53 {\n    bind __PILLAR__LOCAL__DNS__\n    forward . __PILLAR__UPSTREAM__SERVERS__\n"
      "    health __PILLAR__LOCAL__DNS__:8080\n}\n";
  ri.local_ips = "169.254.20.10 fd00::10";
  ri.kube_dns = std::move(*kd);
  auto out = nld::node::renderCorefile(ri);
  if (!out) __builtin_trap();  // the base has no __PILLAR__CLUSTER__DNS__: rendering cannot fail
  nld::config::ParseOptions po;
  po.allow_file_imports = false;
  try {
    nld::config::parseCorefile(out->text, "fuzz", po);
  } catch (const nld::config::ConfigError& e) {
    // Validation let through a config whose rendering does not load: a bug.
    __builtin_trap();
  }
  return 0;
}
