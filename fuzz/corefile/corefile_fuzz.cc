// Fuzz target: parseCorefile on arbitrary bytes must either succeed or throw ConfigError;
// anything else (crash, sanitizer report, other exception, hang) is a bug.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "config/corefile.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const nld::config::ParseOptions kOptions = [] {
    nld::config::ParseOptions o;
    o.allow_file_imports = false;  // never read the host's files
    o.getenv = [](const std::string& name) -> std::optional<std::string> {
      if (name == "ZONE") return std::string("cluster.local");
      if (name == "SELF") return std::string("{$SELF}x");
      if (name == "IP") return std::string("10.96.0.10");
      return std::nullopt;
    };
    o.interface_addresses =
        [](const std::string& iface) -> std::optional<std::vector<std::string>> {
      if (iface == "lo") return std::vector<std::string>{"127.0.0.1", "::1"};
      if (iface == "eth0") return std::vector<std::string>{"10.0.0.5", "fe80::1%eth0"};
      return std::nullopt;
    };
    return o;
  }();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const nld::config::Corefile cf = nld::config::parseCorefile(text, "fuzz", kOptions);
    (void)nld::config::dump(cf);
  } catch (const nld::config::ConfigError&) {
  }
  return 0;
}
