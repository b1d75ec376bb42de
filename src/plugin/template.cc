#include "plugin/template.h"

#include <dlfcn.h>

#include <cstring>
#include <stdexcept>

#include "fmt/format.h"
#include "observability/coredns_metrics.h"
#include "plugin/hosts.h"

// A C header without extern "C" guards.
extern "C" {
#include <libzscanner/scanner.h>
}

namespace nld::plugin {
namespace {

// Plugin constructors throw: a constructor has no Result, and the Corefile parser has already
// validated these settings; the plan build (plan.cc atBlock) adds the block's file:line.
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

namespace {

// libzscanner's entry points, resolved once per process (see CMakeLists.txt for why dlopen).
struct Zscanner {
  int (*init)(zs_scanner_t*, const char*, uint16_t, uint32_t) = nullptr;
  int (*set_input_string)(zs_scanner_t*, const char*, size_t) = nullptr;
  int (*parse_record)(zs_scanner_t*) = nullptr;
  void (*deinit)(zs_scanner_t*) = nullptr;
  std::string error;  // why it could not be loaded; empty = loaded
};

// The soname of Debian 12's libzscanner4 (Knot 3.2), whose scanner.h we compile against: the
// struct layout must match, so no other major version is tried.
constexpr const char* kZscannerSoname = "libzscanner.so.4";

const Zscanner& zscanner() {
  static const Zscanner kZscanner = [] {
    Zscanner r;
    void* h = ::dlopen(kZscannerSoname, RTLD_NOW | RTLD_LOCAL);  // never closed: process-wide
    if (h == nullptr) {
      const char* e = ::dlerror();
      r.error = e != nullptr ? e : "dlopen failed";
      return r;
    }
    auto sym = [&](const char* name) {
      void* p = ::dlsym(h, name);
      if (p == nullptr && r.error.empty()) r.error = std::string("missing symbol ") + name;
      return p;
    };
    r.init = reinterpret_cast<decltype(r.init)>(sym("zs_init"));
    r.set_input_string = reinterpret_cast<decltype(r.set_input_string)>(sym("zs_set_input_string"));
    r.parse_record = reinterpret_cast<decltype(r.parse_record)>(sym("zs_parse_record"));
    r.deinit = reinterpret_cast<decltype(r.deinit)>(sym("zs_deinit"));
    return r;
  }();
  return kZscanner;
}

}  // namespace

TemplatePlugin::TemplatePlugin(const std::vector<config::TemplateConfig>& templates) {
  for (const auto& c : templates) {
    Template t;
    t.qclass = c.qclass;
    t.qtype = c.qtype;
    for (const auto& z : c.zones) {
      t.zones.push_back(zoneName(z));
      t.zone_texts.push_back(z);
    }
    for (const auto* section : {&c.answer, &c.additional, &c.authority}) {
      auto& dst = section == &c.answer       ? t.answer
                  : section == &c.additional ? t.additional
                                             : t.authority;
      for (const auto& text : *section) {
        auto g = GoTemplate::compile(text);
        if (!g) {
          throw std::runtime_error("plugin/template: could not compile template: " +
                                   g.error().message());
        }
        dst.push_back(std::move(*g));
      }
    }
    const std::vector<std::string> match =
        c.match.empty() ? std::vector<std::string>{".*"} : c.match;
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
    const bool records = !t.answer.empty() || !t.additional.empty() || !t.authority.empty();
    templates_.push_back(std::move(t));
    if (records && !zscanner().error.empty()) {
      throw std::runtime_error(fmt::format(
          "plugin/template: answer/authority/additional records need Knot's zone-file scanner "
          "({}, Debian package libzscanner4): {}",
          kZscannerSoname, zscanner().error));
    }
  }
}

TemplatePlugin::~TemplatePlugin() = default;

bool TemplatePlugin::appendRecord(const GoTemplate& tmpl, const GoTemplate::Data& data,
                                  dns::MutableBytes out, size_t& len) const {
  const Zscanner& zs = zscanner();  // loaded: checked by the constructor
  auto text = tmpl.execute(data);
  if (!text) return false;
  text->push_back('\n');
  // One scanner per thread (it is ~200 KiB of buffers and not shareable): miekg/dns's
  // dns.NewRR defaults, origin ".", class IN, TTL 3600; the first record of the text counts.
  thread_local std::unique_ptr<zs_scanner_t> scanner = std::make_unique<zs_scanner_t>();
  zs_scanner_t* sc = scanner.get();
  if (zs.init(sc, ".", 1, 3600) != 0) return false;
  bool ok = zs.set_input_string(sc, text->data(), text->size()) == 0 && zs.parse_record(sc) == 0 &&
            sc->state == ZS_STATE_DATA;
  if (ok) {
    const size_t need = size_t{sc->r_owner_length} + 10 + sc->r_data_length;
    ok = len + need <= out.size() && sc->r_data_length <= 65535;
    if (ok) {
      uint8_t* p = out.data() + len;
      std::memcpy(p, sc->r_owner, sc->r_owner_length);
      p += sc->r_owner_length;
      dns::store16(p, sc->r_type);
      dns::store16(p + 2, sc->r_class);
      dns::store32(p + 4, sc->r_ttl);
      dns::store16(p + 8, static_cast<uint16_t>(sc->r_data_length));
      std::memcpy(p + 10, sc->r_data, sc->r_data_length);
      len += need;
    }
  }
  zs.deinit(sc);
  return ok;
}

namespace {

std::string_view className(uint16_t c) {
  switch (c) {
    case 1:
      return "IN";
    case 2:
      return "CS";
    case 3:
      return "CH";
    case 4:
      return "HS";
    case 254:
      return "NONE";
    case 255:
      return "ANY";
    default:
      return "";
  }
}

}  // namespace

TemplatePlugin::Decision TemplatePlugin::decide(dns::ByteView pkt, const dns::Query& q,
                                                std::string_view remote,
                                                dns::MutableBytes out) const {
  const dns::Question& qs = q.question;
  bool any_zone = false;
  for (const auto& t : templates_) any_zone = any_zone || inZones(qs.name, t.zones);
  if (!any_zone) return {};
  dns::Name lower = qs.name;
  lower.toLower();
  const std::string name = lower.toString();  // CoreDNS matches state.Name(): lower-case, fqdn
  for (const auto& t : templates_) {
    // .Zone: the longest of the template's zones holding the name (plugin.Zones.Matches).
    size_t zone = t.zones.size();
    for (size_t i = 0; i < t.zones.size(); ++i) {
      if (qs.name.isSubdomainOf(t.zones[i]) &&
          (zone == t.zones.size() || t.zones[i].labelCount() > t.zones[zone].labelCount())) {
        zone = i;
      }
    }
    if (zone == t.zones.size()) continue;
    if (t.qclass != 255 && qs.qclass != 255 && qs.qclass != t.qclass) continue;
    if (t.qtype != 255 && qs.qtype != 255 && qs.qtype != t.qtype) continue;
    const re2::RE2* matched = nullptr;
    for (const auto& re : t.regexes) {
      if (re2::RE2::PartialMatch(name, *re)) {  // Go's MatchString: unanchored
        matched = re.get();
        break;
      }
    }
    if (matched == nullptr) {
      const bool through =
          t.fallthrough && (t.fallthrough_zones.empty() || inZones(qs.name, t.fallthrough_zones));
      // CoreDNS's handler returns the code NXDOMAIN here without writing a reply; what reaches
      // the client from the upstream image is a bare SERVFAIL (checked by test_template.py).
      if (!through) return {Verdict::kError, dns::rcode::ServFail, 0};
      continue;
    }
    if (t.rcode == dns::rcode::ServFail) return {Verdict::kError, t.rcode, 0};

    GoTemplate::Data data;
    data.name = name;
    data.zone = t.zone_texts[zone];
    data.cls = className(qs.qclass);
    const std::string type(observability::CorednsMetrics::typeLabel(qs.qtype));
    data.type = type;
    data.remote = remote;
    if (!t.answer.empty() || !t.additional.empty() || !t.authority.empty()) {
      const int groups = matched->NumberOfCapturingGroups();
      std::vector<re2::StringPiece> sub(static_cast<size_t>(groups) + 1);
      if (matched->Match(name, 0, name.size(), re2::RE2::UNANCHORED, sub.data(),
                         static_cast<int>(sub.size()))) {
        for (const auto& piece : sub) data.match.emplace_back(piece.data(), piece.size());
        for (const auto& [group_name, index] : matched->NamedCapturingGroups()) {
          data.group.emplace_back(group_name, data.match[static_cast<size_t>(index)]);
        }
      }
    }
    size_t len = writeAuthoritativeHead(pkt, q, t.rcode, out);
    if (len == 0) return {Verdict::kError, dns::rcode::ServFail, 0};
    const std::vector<GoTemplate>* sections[3] = {&t.answer, &t.authority, &t.additional};
    for (size_t s = 0; s < 3; ++s) {
      for (const GoTemplate& g : *sections[s]) {
        if (!appendRecord(g, data, out, len)) return {Verdict::kError, dns::rcode::ServFail, 0};
      }
      dns::store16(out.data() + 6 + 2 * s, static_cast<uint16_t>(sections[s]->size()));
    }
    return {Verdict::kAnswer, t.rcode, len};
  }
  return {};
}

}  // namespace nld::plugin
