#include "ovsdb/remote.h"

#include <charconv>
#include <stdexcept>

#include "net/address.h"

namespace nld::ovsdb {

std::string Remote::toString() const {
  switch (kind) {
    case Kind::kUnix:
      return "unix:" + path;
    case Kind::kTcp:
    case Kind::kSsl: {
      std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
      return std::string(kind == Kind::kTcp ? "tcp:" : "ssl:") + h + ":" + std::to_string(port);
    }
  }
  return {};
}

Remote parseRemote(std::string_view text) {
  Remote r;
  const std::string whole(text);
  if (text.starts_with("unix:")) {
    r.kind = Remote::Kind::kUnix;
    r.path = std::string(text.substr(5));
    if (r.path.empty())
      throw std::invalid_argument("empty unix socket path in remote \"" + whole + "\"");
    return r;
  }
  if (text.starts_with("tcp:")) {
    r.kind = Remote::Kind::kTcp;
  } else if (text.starts_with("ssl:")) {
    r.kind = Remote::Kind::kSsl;
  } else {
    throw std::invalid_argument("remote \"" + whole + "\" must start with unix:, tcp: or ssl:");
  }
  std::string_view rest = text.substr(4);
  auto colon = rest.rfind(':');
  if (colon == std::string_view::npos) {
    throw std::invalid_argument("remote \"" + whole + "\" needs HOST:PORT");
  }
  std::string host(rest.substr(0, colon));
  std::string_view port_text = rest.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  unsigned port = 0;
  auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || p != port_text.data() + port_text.size() || port == 0 || port > 65535) {
    throw std::invalid_argument("remote \"" + whole + "\" has an invalid port");
  }
  if (!net::isIpLiteral(host)) {
    throw std::invalid_argument("remote \"" + whole + "\": host must be an IPv4 or IPv6 address");
  }
  r.host = host;
  r.port = static_cast<uint16_t>(port);
  return r;
}

std::vector<Remote> parseRemotes(std::string_view text) {
  std::vector<Remote> out;
  std::size_t start = 0;
  while (true) {
    auto comma = text.find(',', start);
    std::string_view part = text.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    if (part.empty()) throw std::invalid_argument("empty remote in \"" + std::string(text) + "\"");
    out.push_back(parseRemote(part));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace nld::ovsdb
