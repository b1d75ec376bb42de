#pragma once
// Per-directive parsers (CoreDNS setup.go equivalents). Internal to nld::config.
// Each takes one directive Line and fills part of a ServerBlock, throwing ConfigError with the
// file:line of the offending token.
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "config/corefile.h"
#include "config/structure.h"

namespace nld::config::detail {

/// "plugin/<name>: <msg>" at `at`.
[[noreturn]] void pluginError(const Token& at, std::string_view plugin, std::string_view msg);
/// CoreDNS's ArgErr: "Wrong argument count or unexpected line ending after 'X'".
[[noreturn]] void argError(const Token& at, std::string_view plugin);
/// Argument count / block checks.
void expectArgs(const Line& line, std::string_view plugin, size_t min, size_t max);
void expectNoBlock(const Line& line, std::string_view plugin);
/// Go duration argument; `what` names it in the error.
std::chrono::nanoseconds durationArg(const Token& t, std::string_view plugin,
                                     std::string_view what);

void parseErrors(const Line& line, ServerBlock& block);
void parseLog(const Line& line, ServerBlock& block);
void parseBind(const Line& line, ServerBlock& block, const ParseOptions& options);
void parseReload(const Line& line, ServerBlock& block);
void parseLoop(const Line& line, ServerBlock& block);
void parseHealth(const Line& line, ServerBlock& block);
void parsePrometheus(const Line& line, ServerBlock& block);
void parseBufsize(const Line& line, ServerBlock& block);
void parseLoadbalance(const Line& line, ServerBlock& block);
/// `zones` are the block's zones (the default for `hosts`).
TemplateConfig parseTemplate(const Line& line, const std::vector<std::string>& zones);
HostsConfig parseHosts(const Line& line, const std::vector<std::string>& zones);
void parseRewrite(const Line& line, ServerBlock& block);
void parseTimeouts(const Line& line, ServerBlock& block);
/// `zones` are the block's zones (the default for `cache`).
CacheConfig parseCache(const Line& line, const std::vector<std::string>& zones);
ForwardConfig parseForward(const Line& line);

/// Zones for a plugin argument (CIDR → reverse zones), or a plugin error at `t`.
std::vector<std::string> zonesArg(const Token& t, std::string_view plugin);

}  // namespace nld::config::detail
