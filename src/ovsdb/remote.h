#pragma once
// OVSDB remote addresses as ovn-nbctl/kube-ovn write them: "unix:PATH", "tcp:HOST:PORT",
// "ssl:HOST:PORT" (HOST may be an IPv6 literal, bracketed or not), comma-separated for a cluster.
//
// Thread affinity: pure functions.
// Parsing throws std::invalid_argument: remotes are a startup flag; main's one catch exits.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace nld::ovsdb {

struct Remote {
  enum class Kind { kUnix, kTcp, kSsl };
  Kind kind = Kind::kUnix;
  std::string path;  ///< unix socket path
  std::string host;  ///< tcp/ssl host: an IPv4 or IPv6 literal (no brackets)
  uint16_t port = 0;

  /// The canonical text ("tcp:[fd00::1]:6641").
  std::string toString() const;
};

/// Parses one remote. @throws std::invalid_argument with a one-line message.
Remote parseRemote(std::string_view text);

/// Parses a comma-separated list (empty elements are errors). @throws std::invalid_argument.
std::vector<Remote> parseRemotes(std::string_view text);

}  // namespace nld::ovsdb
