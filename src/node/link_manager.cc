#include "node/link_manager.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <vector>

#include "common/log.h"

namespace nld::node {
namespace {

constexpr size_t kBufferSize = 32768;

// One rtnetlink request/response exchange over a fresh libmnl socket (5 s receive timeout).
class Netlink {
 public:
  Netlink() {
    sock_ = mnl_socket_open(NETLINK_ROUTE);
    if (sock_ == nullptr) {
      error_ = errno;
      return;
    }
    if (mnl_socket_bind(sock_, 0, MNL_SOCKET_AUTOPID) < 0) {
      error_ = errno;
      return;
    }
    timeval tv{};
    tv.tv_sec = 5;
    ::setsockopt(mnl_socket_get_fd(sock_), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    portid_ = mnl_socket_get_portid(sock_);
    seq_ = static_cast<unsigned>(::time(nullptr));
  }
  ~Netlink() {
    if (sock_ != nullptr) mnl_socket_close(sock_);
  }
  Netlink(const Netlink&) = delete;
  Netlink& operator=(const Netlink&) = delete;

  /// Sends nlh (seq assigned here) and runs cb on every reply message; returns 0 or an errno.
  int exchange(nlmsghdr* nlh, mnl_cb_t cb, void* data) {
    if (error_ != 0) return error_;
    nlh->nlmsg_seq = ++seq_;
    if (mnl_socket_sendto(sock_, nlh, nlh->nlmsg_len) < 0) return errno;
    std::vector<char> buf(kBufferSize);
    while (true) {
      const ssize_t n = mnl_socket_recvfrom(sock_, buf.data(), buf.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? ETIMEDOUT : errno;
      }
      const int ret = mnl_cb_run(buf.data(), static_cast<size_t>(n), seq_, portid_, cb, data);
      if (ret == MNL_CB_ERROR) return errno != 0 ? errno : EPROTO;
      if (ret == MNL_CB_STOP) return 0;
    }
  }

 private:
  mnl_socket* sock_ = nullptr;
  unsigned portid_ = 0;
  unsigned seq_ = 0;
  int error_ = 0;
};

struct LinkReply {
  LinkInfo info;
  bool found = false;
};

int linkAttr(const nlattr* attr, void* data) {
  if (mnl_attr_get_type(attr) == IFLA_LINKINFO) {
    mnl_attr_parse_nested(
        attr,
        [](const nlattr* nested, void* d) -> int {
          if (mnl_attr_get_type(nested) == IFLA_INFO_KIND &&
              mnl_attr_validate(nested, MNL_TYPE_STRING) >= 0) {
            static_cast<LinkReply*>(d)->info.kind = mnl_attr_get_str(nested);
          }
          return MNL_CB_OK;
        },
        data);
  }
  return MNL_CB_OK;
}

int linkMsg(const nlmsghdr* nlh, void* data) {
  auto* reply = static_cast<LinkReply*>(data);
  if (nlh->nlmsg_type != RTM_NEWLINK || mnl_nlmsg_get_payload_len(nlh) < sizeof(ifinfomsg)) {
    return MNL_CB_OK;
  }
  ifinfomsg ifi{};
  std::memcpy(&ifi, mnl_nlmsg_get_payload(nlh), sizeof(ifi));  // no cast onto the buffer
  reply->found = true;
  reply->info.index = ifi.ifi_index;
  reply->info.up = (ifi.ifi_flags & IFF_UP) != 0;
  mnl_attr_parse(nlh, sizeof(ifinfomsg), linkAttr, data);
  return MNL_CB_OK;
}

int ignoreMsg(const nlmsghdr*, void*) { return MNL_CB_OK; }

struct AddrDump {
  int index = 0;
  std::vector<std::string> out;
};

int addrMsg(const nlmsghdr* nlh, void* data) {
  auto* dump = static_cast<AddrDump*>(data);
  if (nlh->nlmsg_type != RTM_NEWADDR || mnl_nlmsg_get_payload_len(nlh) < sizeof(ifaddrmsg)) {
    return MNL_CB_OK;
  }
  ifaddrmsg ifa{};
  std::memcpy(&ifa, mnl_nlmsg_get_payload(nlh), sizeof(ifa));
  if (static_cast<int>(ifa.ifa_index) != dump->index) return MNL_CB_OK;
  struct Attrs {
    const nlattr* local = nullptr;
    const nlattr* address = nullptr;
  } attrs;
  mnl_attr_parse(
      nlh, sizeof(ifaddrmsg),
      [](const nlattr* attr, void* d) -> int {
        auto* a = static_cast<Attrs*>(d);
        if (mnl_attr_get_type(attr) == IFA_LOCAL) a->local = attr;
        if (mnl_attr_get_type(attr) == IFA_ADDRESS) a->address = attr;
        return MNL_CB_OK;
      },
      &attrs);
  const nlattr* attr = attrs.local != nullptr ? attrs.local : attrs.address;
  const size_t want = ifa.ifa_family == AF_INET6 ? 16 : 4;
  if (attr == nullptr || mnl_attr_get_payload_len(attr) != want) return MNL_CB_OK;
  char text[INET6_ADDRSTRLEN] = {};
  if (inet_ntop(ifa.ifa_family, mnl_attr_get_payload(attr), text, sizeof(text)) == nullptr) {
    return MNL_CB_OK;
  }
  dump->out.push_back(std::string(text) + "/" + std::to_string(ifa.ifa_prefixlen));
  return MNL_CB_OK;
}

// Builds an RTM_NEWADDR / RTM_DELADDR for one host address.
nlmsghdr* addressRequest(std::vector<char>& buf, uint16_t type, uint16_t flags, int index,
                         const LocalIp& ip) {
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | NLM_F_ACK | flags);
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = static_cast<uint8_t>(ip.family);
  ifa->ifa_prefixlen = static_cast<uint8_t>(ip.hostPrefix());
  ifa->ifa_flags = ip.family == AF_INET6 ? IFA_F_NODAD : 0;
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  ifa->ifa_index = static_cast<uint32_t>(index);
  const uint16_t len = ip.family == AF_INET6 ? 16 : 4;
  mnl_attr_put(nlh, IFA_LOCAL, len, ip.bytes.data());
  mnl_attr_put(nlh, IFA_ADDRESS, len, ip.bytes.data());
  return nlh;
}

std::string errnoText(int err) {
  return std::string(std::strerror(err)) + " (errno " + std::to_string(err) + ")";
}

}  // namespace

LinkManager::LinkManager(ErrorCallback on_error) : on_error_(std::move(on_error)) {}

bool LinkManager::fail(std::string_view errortype, std::string message) {
  log::error("{}", message);
  last_error_ = std::move(message);
  if (on_error_) on_error_(errortype);
  return false;
}

std::optional<LinkInfo> LinkManager::lookup(const std::string& name) {
  std::vector<char> buf(kBufferSize);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = RTM_GETLINK;
  nlh->nlmsg_flags = NLM_F_REQUEST;
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, name.c_str());
  LinkReply reply;
  Netlink nl;
  // A GET without NLM_F_ACK ends with the RTM_NEWLINK reply itself; stop after it.
  const int err = nl.exchange(
      nlh,
      [](const nlmsghdr* m, void* d) -> int {
        linkMsg(m, d);
        return MNL_CB_STOP;
      },
      &reply);
  if (err == ENODEV || (err == 0 && !reply.found)) {
    last_error_.clear();
    return std::nullopt;
  }
  if (err != 0) {
    last_error_ = "cannot look up interface " + name + ": " + errnoText(err);
    return std::nullopt;
  }
  return reply.info;
}

bool LinkManager::ensureInterface(const std::string& name, const std::vector<LocalIp>& ips) {
  last_error_.clear();
  std::optional<LinkInfo> link = lookup(name);
  if (!link && !last_error_.empty()) return fail("interface_check", last_error_);
  if (!link) {
    std::vector<char> buf(kBufferSize);
    nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
    nlh->nlmsg_type = RTM_NEWLINK;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
    auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
    ifi->ifi_family = AF_UNSPEC;
    mnl_attr_put_strz(nlh, IFLA_IFNAME, name.c_str());
    nlattr* info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
    mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "dummy");
    mnl_attr_nest_end(nlh, info);
    Netlink nl;
    const int err = nl.exchange(nlh, ignoreMsg, nullptr);
    if (err == EOPNOTSUPP) {
      return fail("interface_add",
                  "Error creating interface " + name +
                      ": kernel does not support dummy interfaces (CONFIG_DUMMY); load the "
                      "'dummy' module or create the interface beforehand: " +
                      errnoText(err));
    }
    if (err != 0 && err != EEXIST) {
      return fail("interface_add", "Error creating interface " + name + ": " + errnoText(err));
    }
    if (err == 0) {
      created_.insert(name);
      log::info("Added interface - {}", name);
    }
    link = lookup(name);
    if (!link) {
      return fail("interface_add", "interface " + name + " not found after creation" +
                                       (last_error_.empty() ? "" : ": " + last_error_));
    }
  }
  for (const LocalIp& ip : ips) {
    std::vector<char> buf(kBufferSize);
    nlmsghdr* nlh = addressRequest(buf, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, link->index, ip);
    Netlink nl;
    const int err = nl.exchange(nlh, ignoreMsg, nullptr);
    if (err != 0 && err != EEXIST) {
      return fail("interface_check", "Error adding address " + ip.text + "/" +
                                         std::to_string(ip.hostPrefix()) + " to interface " + name +
                                         ": " + errnoText(err));
    }
  }
  if (!link->up) {
    std::vector<char> buf(kBufferSize);
    nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
    nlh->nlmsg_type = RTM_NEWLINK;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = link->index;
    ifi->ifi_flags = IFF_UP;
    ifi->ifi_change = IFF_UP;
    Netlink nl;
    const int err = nl.exchange(nlh, ignoreMsg, nullptr);
    if (err != 0) {
      return fail("interface_check", "Error setting interface " + name + " up: " + errnoText(err));
    }
  }
  return true;
}

bool LinkManager::removeInterface(const std::string& name) {
  last_error_.clear();
  std::vector<char> buf(kBufferSize);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = RTM_DELLINK;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, name.c_str());
  Netlink nl;
  const int err = nl.exchange(nlh, ignoreMsg, nullptr);
  created_.erase(name);
  if (err != 0 && err != ENODEV) {
    return fail("interface_check", "Error deleting interface " + name + ": " + errnoText(err));
  }
  return true;
}

bool LinkManager::removeAddresses(const std::string& name, const std::vector<LocalIp>& ips) {
  last_error_.clear();
  std::optional<LinkInfo> link = lookup(name);
  if (!link) {
    if (last_error_.empty()) return true;  // no link, no addresses
    return fail("interface_check", last_error_);
  }
  bool ok = true;
  for (const LocalIp& ip : ips) {
    std::vector<char> buf(kBufferSize);
    nlmsghdr* nlh = addressRequest(buf, RTM_DELADDR, 0, link->index, ip);
    Netlink nl;
    const int err = nl.exchange(nlh, ignoreMsg, nullptr);
    if (err != 0 && err != EADDRNOTAVAIL && err != ENODEV) {
      ok = fail("interface_check", "Error removing address " + ip.text + " from interface " + name +
                                       ": " + errnoText(err));
    }
  }
  return ok;
}

bool LinkManager::ownsLink(const std::string& name) {
  if (created_.count(name) != 0) return true;
  std::optional<LinkInfo> link = lookup(name);
  return link && link->kind == "dummy";
}

bool LinkManager::teardown(const std::string& name, const std::vector<LocalIp>& ips) {
  return ownsLink(name) ? removeInterface(name) : removeAddresses(name, ips);
}

std::vector<std::string> LinkManager::addresses(const std::string& name) {
  AddrDump dump;
  std::optional<LinkInfo> link = lookup(name);
  if (!link) return {};
  dump.index = link->index;
  std::vector<char> buf(kBufferSize);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = RTM_GETADDR;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = AF_UNSPEC;
  Netlink nl;
  const int err = nl.exchange(nlh, addrMsg, &dump);
  if (err != 0) last_error_ = "cannot list addresses of " + name + ": " + errnoText(err);
  return dump.out;
}

}  // namespace nld::node
