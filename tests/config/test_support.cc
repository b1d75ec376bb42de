#include "test_support.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace nld::config::testing {

ParseOptions fakeOptions(std::map<std::string, std::string> env) {
  ParseOptions o;
  o.getenv = [env = std::move(env)](const std::string& name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  o.interface_addresses = [](const std::string& iface) -> std::optional<std::vector<std::string>> {
    if (iface == "eth0") return std::vector<std::string>{"10.0.0.5", "fe80::1%eth0"};
    if (iface == "lo") return std::vector<std::string>{"127.0.0.1", "::1"};
    if (iface == "empty0") return std::vector<std::string>{};
    return std::nullopt;
  };
  return o;
}

Corefile parse(const std::string& text, const ParseOptions& options) {
  return parseCorefile(text, "Corefile", options);
}

std::string errorOf(const std::string& text, const ParseOptions& options,
                    const std::string& filename) {
  try {
    parseCorefile(text, filename, options);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace nld::config::testing
