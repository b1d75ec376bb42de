#include "node/corefile_template.h"

#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "net/address.h"
#include "node/sha256.h"

namespace nld::node {
namespace {

constexpr std::string_view kUpstreamPlaceholder = "__PILLAR__UPSTREAM__SERVERS__";
constexpr std::string_view kClusterDnsPlaceholder = "__PILLAR__CLUSTER__DNS__";
constexpr std::string_view kLocalDnsPlaceholder = "__PILLAR__LOCAL__DNS__";
constexpr std::string_view kDnsServerPlaceholder = "__PILLAR__DNS__SERVER__";
// As configmap.go: replaced as one byte-exact unit when custom upstream servers are configured.
constexpr std::string_view kTcpUpstreamBlock =
    "\n    forward . __PILLAR__UPSTREAM__SERVERS__ {\n            force_tcp\n    }\n";

bool validUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      n = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;  // truncated sequence
    for (size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    static constexpr std::array<uint32_t, 4> kMin = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += n + 1;
  }
  return true;
}

bool isIp(const std::string& s) { return net::isIpLiteral(s); }

bool validPort(std::string_view p) {
  if (p.empty() || p.size() > 5) return false;
  unsigned v = 0;
  for (char c : p) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  return v >= 1 && v <= 65535;
}

Result<std::string> readFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return fail("cannot read " + p.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return fail("cannot read " + p.string());
  return ss.str();
}

}  // namespace

std::string replaceAll(std::string text, std::string_view from, std::string_view to) {
  if (from.empty()) return text;
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (true) {
    const size_t hit = text.find(from, pos);
    if (hit == std::string::npos) break;
    out.append(text, pos, hit - pos);
    out.append(to);
    pos = hit + from.size();
  }
  out.append(text, pos, std::string::npos);
  return out;
}

std::string upstreamServiceEnvName(std::string_view service) {
  std::string out;
  for (char c : service) {
    out += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out + "_SERVICE_HOST";
}

std::optional<std::string> upstreamServiceIp(
    std::string_view service, const std::function<const char*(const char*)>& getenv_fn) {
  const std::string name = upstreamServiceEnvName(service);
  const char* value = getenv_fn ? getenv_fn(name.c_str()) : std::getenv(name.c_str());
  if (value == nullptr) return std::nullopt;
  const auto ip = net::parseIp(value);
  if (!ip) return std::nullopt;
  return ip->ip();  // canonical; ::ffff:a.b.c.d prints as a.b.c.d, as Go does
}

bool isValidNameserver(std::string_view server) {
  const std::string s(server);
  if (isIp(s)) return true;
  if (!s.empty() && s[0] == '[') {
    const size_t close = s.find(']');
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':') return false;
    const auto host = net::parseIp(std::string_view(s).substr(1, close - 1));
    return host && host->af() == AF_INET6 && validPort(std::string_view(s).substr(close + 2));
  }
  const size_t colon = s.rfind(':');
  if (colon == std::string::npos || s.find(':') != colon) return false;
  const auto host = net::parseIp(std::string_view(s).substr(0, colon));
  return host && host->af() == AF_INET && validPort(std::string_view(s).substr(colon + 1));
}

bool isDns1123Subdomain(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  size_t start = 0;
  while (true) {
    const size_t dot = name.find('.', start);
    const std::string_view label =
        name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > 63) return false;
    for (char c : label) {
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
    }
    if (label.front() == '-' || label.back() == '-') return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

Result<KubeDnsConfig> parseKubeDnsConfig(std::string_view stub_domains_json,
                                         std::string_view upstream_nameservers_json) {
  KubeDnsConfig cfg;
  if (!stub_domains_json.empty()) {
    nlohmann::json j;
    try {  // nlohmann reports a parse error (with its position) only by throwing
      j = nlohmann::json::parse(stub_domains_json);
    } catch (const nlohmann::json::exception& e) {
      return fail(std::string("invalid stubDomains: bad JSON: ") + e.what());
    }
    if (!j.is_object()) return fail("invalid stubDomains: not a JSON object");
    for (const auto& [domain, servers] : j.items()) {
      if (!isDns1123Subdomain(domain)) {
        return fail("invalid stubDomains: domain \"" + domain +
                    "\" is not a valid DNS-1123 subdomain");
      }
      if (!servers.is_array() || servers.empty()) {
        return fail("invalid stubDomains: \"" + domain +
                    "\" must map to a non-empty array of nameservers");
      }
      std::vector<std::string> list;
      for (const auto& s : servers) {
        if (!s.is_string() || !isValidNameserver(s.get<std::string>())) {
          return fail("invalid stubDomains: nameserver " + s.dump() + " for \"" + domain +
                      "\" is not an IP or IP:port");
        }
        list.push_back(s.get<std::string>());
      }
      cfg.stub_domains[domain] = std::move(list);
    }
  }
  if (!upstream_nameservers_json.empty()) {
    nlohmann::json j;
    try {  // as above
      j = nlohmann::json::parse(upstream_nameservers_json);
    } catch (const nlohmann::json::exception& e) {
      return fail(std::string("invalid upstreamNameservers: bad JSON: ") + e.what());
    }
    if (!j.is_array()) return fail("invalid upstreamNameservers: not a JSON array");
    if (j.size() > 3) {
      return fail("invalid upstreamNameservers: " + std::to_string(j.size()) +
                  " servers given, at most 3 are allowed");
    }
    for (const auto& s : j) {
      if (!s.is_string() || !isValidNameserver(s.get<std::string>())) {
        return fail("invalid upstreamNameservers: " + s.dump() + " is not an IP or IP:port");
      }
      cfg.upstream_nameservers.push_back(s.get<std::string>());
    }
  }
  return cfg;
}

Result<KubeDnsConfig> loadKubeDnsConfigDir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return KubeDnsConfig{};
  if (!fs::is_directory(dir, ec)) {
    return fail("kube-dns config path " + dir + " is not a directory");
  }
  std::map<std::string, std::string> files;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.empty() || name[0] == '.') continue;  // dotfiles, incl. the kubelet's ..data links
    std::error_code type_ec;
    if (fs::is_directory(it->path(), type_ec)) continue;  // non-recursive
    auto content = readFile(it->path());
    if (!content) return fail(std::move(content).error());
    if (!validUtf8(*content)) {
      return fail("kube-dns config file " + name + " is not valid UTF-8");
    }
    files[name] = std::move(*content);
  }
  if (ec) return fail("cannot list kube-dns config directory " + dir + ": " + ec.message());
  if (files.empty()) return KubeDnsConfig{};
  auto get = [&](const char* key) {
    auto it = files.find(key);
    return it == files.end() ? std::string() : it->second;
  };
  auto parsed = parseKubeDnsConfig(get("stubDomains"), get("upstreamNameservers"));
  if (!parsed) return parsed;
  KubeDnsConfig cfg = std::move(*parsed);
  const std::string federations = get("federations");
  if (!federations.empty()) {
    bool object = false;
    try {  // as in parseKubeDnsConfig: nlohmann's parse errors come only as exceptions
      object = nlohmann::json::parse(federations).is_object();
    } catch (const nlohmann::json::exception& e) {
      return fail(std::string("invalid federations: bad JSON: ") + e.what());
    }
    if (!object) return fail("invalid federations: not a JSON object");
  }
  Sha256 hash;
  for (const auto& [name, content] : files) {  // sorted by name, like kube-dns
    hash.update(name);
    hash.update(std::string_view("\0", 1));
    hash.update(content);
    hash.update(std::string_view("\0", 1));
  }
  cfg.version = Sha256::toHex(hash.finish());
  return cfg;
}

Result<RenderOutput> renderCorefile(const RenderInput& in) {
  RenderOutput out;
  std::string text = in.base;
  std::string servers;
  for (const auto& s : in.kube_dns.upstream_nameservers)
    servers += (servers.empty() ? "" : " ") + s;
  if (servers.empty()) {
    text = replaceAll(std::move(text), kUpstreamPlaceholder, "/etc/resolv.conf");
  } else {
    text = replaceAll(std::move(text), kTcpUpstreamBlock, "\n    forward . " + servers + "\n");
    if (text.find(kUpstreamPlaceholder) != std::string::npos) {
      out.warnings.emplace_back(
          "Did not find TCP upstream block to replace, assuming upstreams already use UDP.");
      text = replaceAll(std::move(text), kUpstreamPlaceholder, servers);
    }
  }
  if (text.find(kClusterDnsPlaceholder) != std::string::npos) {
    if (!in.upstream_ip) {
      const std::string env =
          in.upstream_env_name.empty() ? "<upstream service>_SERVICE_HOST" : in.upstream_env_name;
      return fail(
          "the Corefile template uses __PILLAR__CLUSTER__DNS__ but the environment variable " +
          env +
          " is not set to an IP address (the upstream Service must exist before the pod "
          "starts and enableServiceLinks must not be false)");
    }
    text = replaceAll(std::move(text), kClusterDnsPlaceholder, *in.upstream_ip);
  }
  // In host:port position (`health __PILLAR__LOCAL__DNS__:8080`, also with the IPv6 brackets
  // already written) the placeholder stands for ONE address: the first local IP, bracketed when it
  // is IPv6. Upstream pastes the whole list there, which is only valid for a single IPv4 address
  // (two addresses make `health` fail to parse, an IPv6 one lacks its brackets); with this, one
  // template serves IPv4, IPv6 and dual-stack -localip lists, and health is on the first IP as
  // with the upstream manifest's LOCAL_DNS. Everywhere else (`bind`) it is every local IP.
  const std::string first = in.local_ips.substr(0, in.local_ips.find(' '));
  if (!first.empty()) {
    const std::string host_port =
        (first.find(':') != std::string::npos ? "[" + first + "]" : first) + ":";
    const std::string placeholder(kLocalDnsPlaceholder);
    text = replaceAll(std::move(text), "[" + placeholder + "]:", host_port);
    text = replaceAll(std::move(text), placeholder + ":", host_port);
  }
  text = replaceAll(std::move(text), kLocalDnsPlaceholder, in.local_ips);
  text = replaceAll(std::move(text), kDnsServerPlaceholder, "");
  if (!in.kube_dns.stub_domains.empty() && !text.empty() && text.back() != '\n') text += '\n';
  for (const auto& [domain, list] : in.kube_dns.stub_domains) {  // std::map: sorted order
    std::string joined;
    for (const auto& s : list) joined += (joined.empty() ? "" : " ") + s;
    text += domain + ":" + std::to_string(in.local_port) +
            " {\n    errors\n    cache 30\n    bind " + in.local_ips + "\n    forward . " + joined +
            "\n}\n";
  }
  out.text = std::move(text);
  return out;
}

}  // namespace nld::node
