#include "server/template.h"

#include <stdexcept>

#include "fmt/format.h"

namespace nld::server {
namespace {

dns::Name zoneName(const std::string& z) {
  auto n = dns::Name::fromString(z);
  if (!n) throw std::runtime_error(fmt::format("plugin/template: invalid zone name '{}'", z));
  n->toLower();
  return *n;
}

bool inZones(const dns::Name& n, const std::vector<dns::Name>& zones) {
  for (const auto& z : zones) {
    if (n.isSubdomainOf(z)) return true;
  }
  return false;
}

}  // namespace

TemplatePlugin::TemplatePlugin(const std::vector<config::TemplateConfig>& templates) {
  for (const auto& c : templates) {
    Template t;
    t.qclass = c.qclass;
    t.qtype = c.qtype;
    for (const auto& z : c.zones) t.zones.push_back(zoneName(z));
    const std::vector<std::string> match = c.match.empty() ? std::vector<std::string>{".*"} : c.match;
    for (const auto& m : match) {
      auto re = std::make_unique<re2::RE2>(m, re2::RE2::Quiet);
      if (!re->ok()) {
        throw std::runtime_error(fmt::format("plugin/template: could not parse regex: {}", m));
      }
      t.regexes.push_back(std::move(re));
    }
    t.rcode = c.rcode;
    t.fallthrough = c.fallthrough;
    for (const auto& z : c.fallthrough_zones) t.fallthrough_zones.push_back(zoneName(z));
    templates_.push_back(std::move(t));
  }
}

TemplatePlugin::Decision TemplatePlugin::decide(const dns::Query& q) const {
  const dns::Question& qs = q.question;
  bool any_zone = false;
  for (const auto& t : templates_) any_zone = any_zone || inZones(qs.name, t.zones);
  if (!any_zone) return {};
  dns::Name lower = qs.name;
  lower.toLower();
  const std::string name = lower.toString();  // CoreDNS matches state.Name(): lower-case, fqdn
  for (const auto& t : templates_) {
    if (!inZones(qs.name, t.zones)) continue;
    if (t.qclass != 255 && qs.qclass != 255 && qs.qclass != t.qclass) continue;
    if (t.qtype != 255 && qs.qtype != 255 && qs.qtype != t.qtype) continue;
    bool matched = false;
    for (const auto& re : t.regexes) {
      if (re2::RE2::PartialMatch(name, *re)) {  // Go's MatchString: unanchored
        matched = true;
        break;
      }
    }
    if (matched) {
      if (t.rcode == dns::rcode::ServFail) return {Verdict::Error, t.rcode};
      return {Verdict::Answer, t.rcode};
    }
    const bool through =
        t.fallthrough && (t.fallthrough_zones.empty() || inZones(qs.name, t.fallthrough_zones));
    // CoreDNS's handler returns the code NXDOMAIN here without writing a reply; what reaches
    // the client from the upstream image is a bare SERVFAIL (checked by test_template.py).
    if (!through) return {Verdict::Error, dns::rcode::ServFail};
  }
  return {};
}

}  // namespace nld::server
