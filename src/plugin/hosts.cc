#include "plugin/hosts.h"

#include <sys/stat.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "common/log.h"
#include "fmt/format.h"
#include "net/address.h"

namespace nld::plugin {
namespace {

bool isSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

// Go's parseIP of plugin/hosts: drop a `%zone`, then net.ParseIP. Raw bytes, IPv4-mapped
// addresses as 4 bytes; empty if not an address.
std::string parseAddress(std::string_view field) {
  if (const size_t pct = field.find('%'); pct != std::string_view::npos)
    field = field.substr(0, pct);
  if (field.empty() || field.size() > 64) return {};
  const auto ip = net::parseIp(field);
  if (!ip) return {};
  std::array<uint8_t, 16> buf{};
  const size_t n = ip->addressBytes(buf);
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (n == 16 && std::memcmp(buf.data(), kMapped, 12) == 0) {
    return std::string(reinterpret_cast<const char*>(buf.data() + 12), 4);
  }
  return std::string(reinterpret_cast<const char*>(buf.data()), n);
}

bool inZones(const dns::Name& n, const std::vector<dns::Name>& zones) {
  for (const auto& z : zones) {
    if (n.isSubdomainOf(z)) return true;
  }
  return false;
}

// Throws, as HostsPlugin's constructor does: zones the Corefile parser already normalized.
std::vector<dns::Name> toNames(const std::vector<std::string>& zones) {
  std::vector<dns::Name> out;
  for (const auto& z : zones) {
    auto n = dns::Name::fromString(z);
    if (!n) throw std::runtime_error(fmt::format("invalid zone name '{}'", z));
    n->toLower();
    out.push_back(*n);
  }
  return out;
}

const std::vector<std::string> kNone;

const std::vector<std::string>& find(
    const std::unordered_map<std::string, std::vector<std::string>>& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? kNone : it->second;
}

}  // namespace

size_t writeAuthoritativeHead(dns::ByteView pkt, const dns::Query& q, uint8_t rcode,
                              dns::MutableBytes out) {
  // RD/CD and EDNS are the pipeline's business (as for an upstream answer).
  const dns::Question& qs = q.question;
  if (out.size() < dns::kHeaderSize + size_t{qs.name.len} + 4) return 0;
  const uint16_t opcode_bits = q.header.flags & 0x7800;
  dns::store16(out.data(), q.header.id);
  dns::store16(out.data() + 2, dns::flag::QR | dns::flag::AA | opcode_bits | (rcode & 0xf));
  dns::store16(out.data() + 4, 1);
  dns::store16(out.data() + 6, 0);
  dns::store16(out.data() + 8, 0);
  dns::store16(out.data() + 10, 0);
  size_t len = dns::kHeaderSize;
  const size_t raw_len = qs.end - qs.name_offset;
  if (raw_len == size_t{qs.name.len} + 4 && qs.end <= pkt.size()) {
    std::memcpy(out.data() + len, pkt.data() + qs.name_offset, raw_len);  // the client's case
  } else {
    std::memcpy(out.data() + len, qs.name.data.data(), qs.name.len);
    dns::store16(out.data() + len + qs.name.len, qs.qtype);
    dns::store16(out.data() + len + qs.name.len + 2, qs.qclass);
  }
  return len + size_t{qs.name.len} + 4;
}

HostsMap parseHostsText(std::string_view text, const std::vector<dns::Name>& origins,
                        bool reverse) {
  HostsMap m;
  constexpr size_t kMaxLine = 64 * 1024;  // bufio.MaxScanTokenSize: the scan stops there
  std::vector<std::string_view> fields;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    const bool last = nl == std::string_view::npos;
    if (last) nl = text.size();
    if (nl >= kMaxLine) break;
    std::string_view line = text.substr(0, nl);
    text = last ? std::string_view() : text.substr(nl + 1);
    if (const size_t hash = line.find('#'); hash != std::string_view::npos)
      line = line.substr(0, hash);
    fields.clear();
    size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && isSpace(line[i])) ++i;
      const size_t start = i;
      while (i < line.size() && !isSpace(line[i])) ++i;
      if (i > start) fields.push_back(line.substr(start, i - start));
    }
    if (fields.size() < 2) continue;
    const std::string addr = parseAddress(fields[0]);
    if (addr.empty()) continue;
    for (size_t f = 1; f < fields.size(); ++f) {
      auto name = dns::Name::fromString(fields[f]);
      if (!name) continue;  // not a DNS name: no query could ever ask for it
      name->toLower();
      if (!inZones(*name, origins)) continue;
      std::string key = name->toString();
      (addr.size() == 4 ? m.name4 : m.name6)[key].push_back(addr);
      if (reverse) m.addr[addr].push_back(std::move(key));
    }
  }
  return m;
}

std::string addressFromReverse(const dns::Name& qname) {
  dns::Name n = qname;
  n.toLower();
  // Labels in wire order (most specific first).
  std::vector<std::string_view> labels;
  const auto w = n.wire();
  for (size_t i = 0; i < w.size() && w[i] != 0; i += size_t{w[i]} + 1) {
    labels.emplace_back(reinterpret_cast<const char*>(w.data() + i + 1), w[i]);
  }
  const size_t k = labels.size();
  if (k == 6 && labels[4] == "in-addr" && labels[5] == "arpa") {
    const std::string text = fmt::format("{}.{}.{}.{}", labels[3], labels[2], labels[1], labels[0]);
    return parseAddress(text);
  }
  if (k == 34 && labels[32] == "ip6" && labels[33] == "arpa") {
    std::string text;
    for (size_t i = 0; i < 32; ++i) {
      const std::string_view nib = labels[31 - i];
      if (nib.size() != 1 || !std::isxdigit(static_cast<unsigned char>(nib[0]))) return {};
      text += nib[0];
      if (i % 4 == 3 && i != 31) text += ':';
    }
    return parseAddress(text);
  }
  return {};
}

HostsPlugin::HostsPlugin(const config::HostsConfig& cfg, std::string where)
    : cfg_(cfg), where_(std::move(where)) {
  origins_ = toNames(cfg_.zones);
  fallthrough_ = toNames(cfg_.fallthrough_zones);
  std::string text;
  for (const auto& l : cfg_.inline_lines) text += l + "\n";
  inline_ = parseHostsText(text, origins_, cfg_.reverse);
  file_.store(std::make_shared<const HostsMap>());
  struct stat st {};
  if (::stat(cfg_.file.c_str(), &st) != 0) {
    if (errno != ENOENT) {
      // A constructor failure (no Result): plan.cc's atBlock adds file:line, as CoreDNS's setup.
      throw std::runtime_error(fmt::format("{}: plugin/hosts: unable to access hosts file '{}': {}",
                                           where_, cfg_.file, std::strerror(errno)));
    }
    log::warn("{}: plugin/hosts: File does not exist: {}", where_, cfg_.file);
  } else if (S_ISDIR(st.st_mode)) {
    log::warn("{}: plugin/hosts: Hosts file {} is a directory", where_, cfg_.file);
  }
  reloadIfChanged();
  if (cfg_.reload.count() > 0) next_check_ns_.store(kArmOnFirstQuery);
}

void HostsPlugin::reloadIfChanged() {
  std::lock_guard lock(reload_mu_);
  // As CoreDNS's readHosts: a file that cannot be opened keeps what was read before.
  std::ifstream in(cfg_.file, std::ios::binary);
  if (!in) return;
  struct stat st {};
  if (::stat(cfg_.file.c_str(), &st) != 0 || S_ISDIR(st.st_mode)) return;
  const int64_t mtime = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
  if (mtime == mtime_ns_ && int64_t{st.st_size} == size_) return;
  std::ostringstream buf;
  buf << in.rdbuf();
  auto map = std::make_shared<const HostsMap>(parseHostsText(buf.str(), origins_, cfg_.reverse));
  log::debug("{}: plugin/hosts: parsed {} into {} entries", where_, cfg_.file, map->size());
  file_.store(std::move(map));
  mtime_ns_ = mtime;
  size_ = st.st_size;
}

size_t HostsPlugin::entries() const { return file_.load()->size() + inline_.size(); }

void HostsPlugin::maybeReload(net::Clock::time_point now_tp) {
  int64_t due = next_check_ns_.load(std::memory_order_relaxed);
  if (due == 0) return;
  const int64_t now = now_tp.time_since_epoch().count();
  if (due == kArmOnFirstQuery) {  // the file was read at construction: the period starts now
    next_check_ns_.compare_exchange_strong(due, now + cfg_.reload.count());
    return;
  }
  if (now < due) return;
  // One worker wins the period; the others keep answering from the current map.
  if (!next_check_ns_.compare_exchange_strong(due, now + cfg_.reload.count())) return;
  reloadIfChanged();
}

namespace {

// Appends one answer record: the lower-cased query name written out (CoreDNS answers with
// state.Name(), lower-cased, while the question keeps the client's case), then TYPE IN TTL RDATA.
bool appendRecord(dns::MutableBytes out, size_t& len, const dns::Name& owner, uint16_t type,
                  uint32_t ttl, const uint8_t* rdata, size_t rdlen) {
  const size_t need = size_t{owner.len} + 10 + rdlen;
  if (len + need > out.size()) return false;
  std::memcpy(out.data() + len, owner.data.data(), owner.len);
  len += owner.len;
  dns::store16(out.data() + len, type);
  dns::store16(out.data() + len + 2, dns::cls::IN);
  dns::store32(out.data() + len + 4, ttl);
  dns::store16(out.data() + len + 8, static_cast<uint16_t>(rdlen));
  len += 10;
  std::memcpy(out.data() + len, rdata, rdlen);
  len += rdlen;
  return true;
}

}  // namespace

HostsPlugin::Verdict HostsPlugin::lookup(dns::ByteView pkt, const dns::Query& q,
                                         dns::MutableBytes out, size_t& len,
                                         net::Clock::time_point now) {
  const dns::Question& qs = q.question;
  const uint16_t qtype = qs.qtype;
  // PTR zones need not be in the plugin's zones (CoreDNS).
  if (qtype != dns::type::PTR && !inZones(qs.name, origins_)) return Verdict::kNext;
  maybeReload(now);
  const std::shared_ptr<const HostsMap> file = file_.load();
  const std::array<const HostsMap*, 2> maps = {file.get(), &inline_};  // file entries first

  dns::Name owner = qs.name;
  owner.toLower();
  const std::string key = owner.toString();
  std::vector<std::string> rdatas;  // wire RDATA of each answer
  if (qtype == dns::type::PTR) {
    const std::string addr = addressFromReverse(qs.name);
    if (addr.empty()) return Verdict::kNext;
    for (const HostsMap* m : maps) {
      for (const auto& n : find(m->addr, addr)) {
        const auto target = dns::Name::fromString(n);
        if (target)
          rdatas.emplace_back(reinterpret_cast<const char*>(target->data.data()), target->len);
      }
    }
    // An address nobody has: the next plugin, whatever `fallthrough` says (CoreDNS).
    if (rdatas.empty()) return Verdict::kNext;
  } else if (qtype == dns::type::A || qtype == dns::type::AAAA) {
    const bool v4 = qtype == dns::type::A;
    for (const HostsMap* m : maps) {
      for (const auto& a : find(v4 ? m->name4 : m->name6, key)) rdatas.push_back(a);
    }
  }
  if (rdatas.empty()) {
    bool known = false;
    for (const HostsMap* m : maps) {
      known = known || m->name4.count(key) != 0 || m->name6.count(key) != 0;
    }
    if (!known) {
      if (cfg_.fallthrough && (fallthrough_.empty() || inZones(qs.name, fallthrough_))) {
        return Verdict::kNext;
      }
      return Verdict::kServFail;
    }
  }

  len = writeAuthoritativeHead(pkt, q, dns::rcode::NoError, out);
  if (len == 0) return Verdict::kServFail;
  uint16_t count = 0;
  for (const auto& rd : rdatas) {
    if (!appendRecord(out, len, owner, qtype, cfg_.ttl, reinterpret_cast<const uint8_t*>(rd.data()),
                      rd.size())) {
      break;  // 64 KiB of answers: the rest do not fit (truncation is the pipeline's job)
    }
    ++count;
  }
  dns::store16(out.data() + 6, count);
  return Verdict::kAnswer;
}

}  // namespace nld::plugin
