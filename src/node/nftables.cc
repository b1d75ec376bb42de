#include "node/nftables.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <libnftnl/batch.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>

#include "common/log.h"

namespace nld::node {
namespace {

// NF_IP_PRI_RAW / NF_IP_PRI_FILTER (the same values for IPv6 and the inet family).
constexpr int32_t kPriorityRaw = -300;
constexpr int32_t kPriorityFilter = 0;

struct ChainDef {
  const char* iptables_table;
  const char* iptables_chain;
  const char* name;
  uint32_t hook;
  int32_t priority;
};

constexpr ChainDef kChains[] = {
    {"raw", "PREROUTING", "raw-prerouting", NF_INET_PRE_ROUTING, kPriorityRaw},
    {"raw", "OUTPUT", "raw-output", NF_INET_LOCAL_OUT, kPriorityRaw},
    {"filter", "INPUT", "filter-input", NF_INET_LOCAL_IN, kPriorityFilter},
    {"filter", "OUTPUT", "filter-output", NF_INET_LOCAL_OUT, kPriorityFilter},
};

const ChainDef* chainFor(const IptablesRule& r) {
  for (const ChainDef& c : kChains) {
    if (r.table == c.iptables_table && r.chain == c.iptables_chain) return &c;
  }
  return nullptr;
}

std::string familyName(uint32_t family) {
  switch (family) {
    case NFPROTO_IPV4:
      return "ip";
    case NFPROTO_IPV6:
      return "ip6";
    case NFPROTO_INET:
      return "inet";
    case NFPROTO_ARP:
      return "arp";
    case NFPROTO_BRIDGE:
      return "bridge";
    case NFPROTO_NETDEV:
      return "netdev";
    default:
      return "family" + std::to_string(family);
  }
}

// libnftnl getters return nullptr for an attribute the kernel did not send.
std::string orEmpty(const char* s) { return s ? s : ""; }

// RAII for libnftnl objects and the mnl socket.
struct RuleDeleter {
  void operator()(nftnl_rule* r) const { nftnl_rule_free(r); }
};
struct ChainDeleter {
  void operator()(nftnl_chain* c) const { nftnl_chain_free(c); }
};
struct TableDeleter {
  void operator()(nftnl_table* t) const { nftnl_table_free(t); }
};
struct BatchDeleter {
  void operator()(nftnl_batch* b) const { nftnl_batch_free(b); }
};
struct SocketDeleter {
  void operator()(mnl_socket* s) const { mnl_socket_close(s); }
};
using RulePtr = std::unique_ptr<nftnl_rule, RuleDeleter>;
using ChainPtr = std::unique_ptr<nftnl_chain, ChainDeleter>;
using TablePtr = std::unique_ptr<nftnl_table, TableDeleter>;

// One translated rule: the address it matches, in which direction, and the verdict.
struct Translated {
  const ChainDef* chain = nullptr;
  LocalIp ip;
  bool match_source = false;  // saddr/sport (else daddr/dport)
  uint8_t l4proto = 0;
  uint16_t port = 0;
  bool notrack = false;  // else accept
  std::string comment;
};

Result<Translated> translate(const IptablesRule& r) {
  Translated t;
  t.chain = chainFor(r);
  if (t.chain == nullptr) {
    return fail("nftables: no chain for iptables " + r.table + "/" + r.chain);
  }
  if (r.source.empty() == r.destination.empty() ||
      (r.source_port != 0) == (r.destination_port != 0)) {
    return fail("nftables: rule needs exactly one of source/destination: " + r.toString());
  }
  t.match_source = !r.source.empty();
  if (t.match_source != (r.source_port != 0)) {
    return fail("nftables: rule mixes source and destination: " + r.toString());
  }
  if (!parseLocalIp(t.match_source ? r.source : r.destination, &t.ip)) {
    return fail("nftables: not an IP address in " + r.toString());
  }
  if (r.protocol == "tcp") {
    t.l4proto = IPPROTO_TCP;
  } else if (r.protocol == "udp") {
    t.l4proto = IPPROTO_UDP;
  } else {
    return fail("nftables: protocol " + r.protocol + " in " + r.toString());
  }
  t.port = t.match_source ? r.source_port : r.destination_port;
  if (r.target == "NOTRACK") {
    t.notrack = true;
  } else if (r.target != "ACCEPT") {
    return fail("nftables: target " + r.target + " in " + r.toString());
  }
  t.comment = r.comment;
  return t;
}

std::string specText(const Translated& t) {
  const bool v6 = t.ip.family == LocalIp::kInet6;
  std::string s = std::string(v6 ? "ip6 " : "ip ") + (t.match_source ? "saddr " : "daddr ") +
                  t.ip.canonical() + " " + (t.l4proto == IPPROTO_TCP ? "tcp " : "udp ") +
                  (t.match_source ? "sport " : "dport ") + std::to_string(t.port) + " " +
                  (t.notrack ? "notrack" : "accept");
  if (!t.comment.empty()) s += " comment \"" + t.comment + "\"";
  return s;
}

// ---- expressions (what `nft` emits for the spec text in an inet table) ----

void addExpr(nftnl_rule* r, nftnl_expr* e) { nftnl_rule_add_expr(r, e); }

void addMetaLoad(nftnl_rule* r, uint32_t key) {
  nftnl_expr* e = nftnl_expr_alloc("meta");
  nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
  nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
  addExpr(r, e);
}

void addPayloadLoad(nftnl_rule* r, uint32_t base, uint32_t offset, uint32_t len) {
  nftnl_expr* e = nftnl_expr_alloc("payload");
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
  addExpr(r, e);
}

void addCmpEq(nftnl_rule* r, const void* data, uint32_t len) {
  nftnl_expr* e = nftnl_expr_alloc("cmp");
  nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
  nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, NFT_CMP_EQ);
  nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
  addExpr(r, e);
}

RulePtr buildRule(const std::string& table, const Translated& t) {
  RulePtr rule(nftnl_rule_alloc());
  nftnl_rule* r = rule.get();
  nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
  nftnl_rule_set_str(r, NFTNL_RULE_TABLE, table.c_str());
  nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, t.chain->name);
  const bool v6 = t.ip.family == LocalIp::kInet6;
  const uint8_t nfproto = v6 ? NFPROTO_IPV6 : NFPROTO_IPV4;
  addMetaLoad(r, NFT_META_NFPROTO);
  addCmpEq(r, &nfproto, sizeof(nfproto));
  // IPv4: saddr at 12, daddr at 16 (4 bytes); IPv6: saddr at 8, daddr at 24 (16 bytes).
  const uint32_t alen = v6 ? 16 : 4;
  const uint32_t aoff = v6 ? (t.match_source ? 8 : 24) : (t.match_source ? 12 : 16);
  addPayloadLoad(r, NFT_PAYLOAD_NETWORK_HEADER, aoff, alen);
  addCmpEq(r, t.ip.bytes.data(), alen);
  addMetaLoad(r, NFT_META_L4PROTO);
  addCmpEq(r, &t.l4proto, sizeof(t.l4proto));
  const uint16_t port = htons(t.port);
  addPayloadLoad(r, NFT_PAYLOAD_TRANSPORT_HEADER, t.match_source ? 0 : 2, 2);
  addCmpEq(r, &port, sizeof(port));
  if (t.notrack) {
    addExpr(r, nftnl_expr_alloc("notrack"));
  } else {
    nftnl_expr* e = nftnl_expr_alloc("immediate");
    nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
    nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, NF_ACCEPT);
    addExpr(r, e);
  }
  if (!t.comment.empty()) {
    // The comment as `nft` stores it (NFTNL_UDATA_RULE_COMMENT), so `nft list` shows it.
    nftnl_udata_buf* ud = nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN);
    if (ud != nullptr && nftnl_udata_put_strz(ud, NFTNL_UDATA_RULE_COMMENT, t.comment.c_str())) {
      nftnl_rule_set_data(r, NFTNL_RULE_USERDATA, nftnl_udata_buf_data(ud),
                          nftnl_udata_buf_len(ud));
    }
    if (ud != nullptr) nftnl_udata_buf_free(ud);
  }
  return rule;
}

// A rule's identity for comparison: chain + libnftnl's text of its expressions and userdata,
// without the kernel-assigned handle/position.
std::string fingerprint(nftnl_rule* r) {
  nftnl_rule_unset(r, NFTNL_RULE_HANDLE);
  nftnl_rule_unset(r, NFTNL_RULE_POSITION);
  nftnl_rule_unset(r, NFTNL_RULE_ID);
  nftnl_rule_unset(r, NFTNL_RULE_POSITION_ID);
  nftnl_rule_unset(r, NFTNL_RULE_COMPAT_PROTO);
  nftnl_rule_unset(r, NFTNL_RULE_COMPAT_FLAGS);
  std::string buf(4096, '\0');
  const int n = nftnl_rule_snprintf(buf.data(), buf.size(), r, NFTNL_OUTPUT_DEFAULT, 0);
  buf.resize(n < 0 ? 0 : std::min<size_t>(static_cast<size_t>(n), buf.size() - 1));
  return buf;
}

// ---- netlink ----

// Receive buffer: libmnl's recommended dump size (the kernel sizes dump messages up to what the
// reader has asked for before, at most 32 KiB); a smaller one could truncate a message.
constexpr size_t kReceiveBuffer = 32768;

class NfSocket {
 public:
  Result<void> open(std::chrono::milliseconds timeout) {
    sock_.reset(mnl_socket_open(NETLINK_NETFILTER));
    if (!sock_) return sysFail("netlink socket");
    if (mnl_socket_bind(sock_.get(), 0, MNL_SOCKET_AUTOPID) < 0) return sysFail("bind");
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
    if (setsockopt(mnl_socket_get_fd(sock_.get()), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
      return sysFail("SO_RCVTIMEO");
    }
    portid_ = mnl_socket_get_portid(sock_.get());
    seq_ = static_cast<uint32_t>(time(nullptr)) | 1u;  // never 0 (0 = "none yet" in ensure)
    return {};
  }

  uint32_t nextSeq() { return seq_++; }

  // Sends one dump request built by `build` (given the buffer and the seq) and calls `each` for
  // every answer message. ENOENT of the request is reported as *missing = true, not an error.
  Result<void> dump(const std::function<nlmsghdr*(char*, uint32_t)>& build,
                    const std::function<void(const nlmsghdr*)>& each, bool* missing) {
    std::vector<char> buf(kReceiveBuffer);
    const uint32_t seq = nextSeq();
    nlmsghdr* nlh = build(buf.data(), seq);
    if (mnl_socket_sendto(sock_.get(), nlh, nlh->nlmsg_len) < 0) return sysFail("send");
    if (missing) *missing = false;
    struct Ctx {
      const std::function<void(const nlmsghdr*)>* each;
    } ctx{&each};
    const auto cb = [](const nlmsghdr* m, void* data) -> int {
      (*static_cast<Ctx*>(data)->each)(m);
      return MNL_CB_OK;
    };
    while (true) {
      const ssize_t n = mnl_socket_recvfrom(sock_.get(), buf.data(), buf.size());
      if (n < 0) return sysFail("receive");
      const int ret = mnl_cb_run(buf.data(), static_cast<size_t>(n), seq, portid_, cb, &ctx);
      if (ret == MNL_CB_STOP) return {};
      if (ret < 0) {
        if (errno == ENOENT && missing) {
          *missing = true;
          return {};
        }
        return sysFail("dump");
      }
    }
  }

  // Sends a batch whose messages (all with NLM_F_ACK) have sequence numbers first..last and waits
  // for every ack; the first error fails the call (the kernel aborts the whole transaction).
  // *code (optional) receives the errno of the failed message.
  Result<void> transact(nftnl_batch* batch, uint32_t first, uint32_t last,
                        const std::map<uint32_t, std::string>& what, int* code = nullptr) {
    std::vector<iovec> iov(static_cast<size_t>(nftnl_batch_iovec_len(batch)));
    nftnl_batch_iovec(batch, iov.data(), static_cast<uint32_t>(iov.size()));
    sockaddr_nl snl{};
    snl.nl_family = AF_NETLINK;
    msghdr msg{};
    msg.msg_name = &snl;
    msg.msg_namelen = sizeof(snl);
    msg.msg_iov = iov.data();
    msg.msg_iovlen = iov.size();
    if (sendmsg(mnl_socket_get_fd(sock_.get()), &msg, 0) < 0) return sysFail("send batch");
    size_t acked = 0;
    const size_t want = last - first + 1;
    std::vector<char> buf(kReceiveBuffer);
    while (acked < want) {
      const ssize_t n = mnl_socket_recvfrom(sock_.get(), buf.data(), buf.size());
      if (n < 0) return sysFail("receive acks");
      int len = static_cast<int>(n);
      for (auto* m = reinterpret_cast<nlmsghdr*>(buf.data()); mnl_nlmsg_ok(m, len);
           m = mnl_nlmsg_next(m, &len)) {
        if (m->nlmsg_type != NLMSG_ERROR) continue;
        const auto* e = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(m));
        if (e->error != 0) {
          if (code) *code = -e->error;
          const auto it = what.find(m->nlmsg_seq);
          return fail(std::string(std::strerror(-e->error)) +
                      (it != what.end() ? " (" + it->second + ")" : std::string()));
        }
        ++acked;
      }
    }
    return {};
  }

 private:
  static tl::unexpected<Error> sysFail(const char* what) {
    return fail(std::string("netlink ") + what + ": " + std::strerror(errno));
  }

  std::unique_ptr<mnl_socket, SocketDeleter> sock_;
  uint32_t portid_ = 0;
  uint32_t seq_ = 0;
};

}  // namespace

Result<std::vector<NftRuleSpec>> nftRuleSpecs(const std::vector<IptablesRule>& rules) {
  std::vector<NftRuleSpec> out;
  for (const IptablesRule& r : rules) {
    auto t = translate(r);
    if (!t) return fail(std::move(t).error());
    out.push_back({t->chain->name, specText(*t)});
  }
  return out;
}

Nftables::Nftables(NftablesSettings settings, std::vector<IptablesRule> rules,
                   ErrorCallback on_error)
    : settings_(std::move(settings)), rules_(std::move(rules)), on_error_(std::move(on_error)) {}

int Nftables::failCount(std::string message) {
  fail(std::move(message));
  return -1;
}

bool Nftables::fail(std::string message) {
  log::error("{}", message);
  last_error_ = std::move(message);
  if (on_error_) on_error_("iptables");
  return false;
}

int Nftables::ensure() {
  last_error_.clear();
  std::vector<Translated> wanted;
  for (const IptablesRule& r : rules_) {
    auto t = translate(r);
    if (!t) return failCount(std::move(t).error().message());
    wanted.push_back(std::move(*t));
  }
  const std::string& table = settings_.table;
  NfSocket sock;
  if (auto opened = sock.open(settings_.timeout); !opened) {
    return failCount("nftables: " + opened.error().message());
  }

  // 1. What is there: our chains (name → hook, priority) and rules (fingerprints).
  std::map<std::string, std::pair<uint32_t, int32_t>> chains;
  bool missing = false;
  const auto chains_ok = sock.dump(
      [&](char* buf, uint32_t seq) {
        nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETCHAIN, NFPROTO_INET, NLM_F_DUMP, seq);
        ChainPtr c(nftnl_chain_alloc());
        nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TABLE, table.c_str());
        nftnl_chain_nlmsg_build_payload(nlh, c.get());
        return nlh;
      },
      [&](const nlmsghdr* m) {
        ChainPtr c(nftnl_chain_alloc());
        if (nftnl_chain_nlmsg_parse(m, c.get()) < 0) return;
        if (table != orEmpty(nftnl_chain_get_str(c.get(), NFTNL_CHAIN_TABLE))) return;
        const bool base = nftnl_chain_is_set(c.get(), NFTNL_CHAIN_HOOKNUM);
        chains[orEmpty(nftnl_chain_get_str(c.get(), NFTNL_CHAIN_NAME))] = {
            base ? nftnl_chain_get_u32(c.get(), NFTNL_CHAIN_HOOKNUM) : ~0u,
            base ? nftnl_chain_get_s32(c.get(), NFTNL_CHAIN_PRIO) : 0};
      },
      &missing);
  if (!chains_ok) {
    return failCount("nftables: listing chains of inet " + table + ": " +
                     chains_ok.error().message());
  }
  std::vector<std::string> have_rules;
  if (!chains.empty()) {
    const auto rules_ok = sock.dump(
        [&](char* buf, uint32_t seq) {
          nlmsghdr* nlh =
              nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETRULE, NFPROTO_INET, NLM_F_DUMP, seq);
          RulePtr r(nftnl_rule_alloc());
          nftnl_rule_set_str(r.get(), NFTNL_RULE_TABLE, table.c_str());
          nftnl_rule_nlmsg_build_payload(nlh, r.get());
          return nlh;
        },
        [&](const nlmsghdr* m) {
          RulePtr r(nftnl_rule_alloc());
          if (nftnl_rule_nlmsg_parse(m, r.get()) < 0) return;
          if (table != orEmpty(nftnl_rule_get_str(r.get(), NFTNL_RULE_TABLE))) return;
          have_rules.push_back(fingerprint(r.get()));
        },
        &missing);
    if (!rules_ok) {
      return failCount("nftables: listing rules of inet " + table + ": " +
                       rules_ok.error().message());
    }
  }

  // 2. Compare with what we want (as multisets: order inside a chain does not matter, the rules
  //    of one chain are disjoint matches with the same verdict).
  std::vector<RulePtr> built;
  std::vector<std::string> want_rules;
  for (const Translated& t : wanted) {
    built.push_back(buildRule(table, t));
    RulePtr copy = buildRule(table, t);
    want_rules.push_back(fingerprint(copy.get()));
  }
  std::string why;
  if (chains.empty()) {
    why = "table missing";
  } else {
    for (const ChainDef& c : kChains) {
      const auto it = chains.find(c.name);
      if (it == chains.end() || it->second != std::make_pair(c.hook, c.priority)) {
        why = std::string("chain ") + c.name + " missing or changed";
        break;
      }
    }
    if (why.empty() && chains.size() != std::size(kChains)) why = "unexpected chain";
    std::sort(have_rules.begin(), have_rules.end());
    std::vector<std::string> sorted_want = want_rules;
    std::sort(sorted_want.begin(), sorted_want.end());
    if (why.empty() && have_rules != sorted_want) why = "rules differ";
  }
  if (why.empty()) return 0;

  // 3. Replace the table in one transaction. NEWTABLE without NLM_F_EXCL makes the DELTABLE
  //    valid whether or not the table existed.
  std::unique_ptr<nftnl_batch, BatchDeleter> batch(
      nftnl_batch_alloc(MNL_SOCKET_BUFFER_SIZE, MNL_SOCKET_BUFFER_SIZE));
  std::map<uint32_t, std::string> what;
  nftnl_batch_begin(static_cast<char*>(nftnl_batch_buffer(batch.get())), sock.nextSeq());
  nftnl_batch_update(batch.get());
  // Every message gets the socket's next sequence number; they are consecutive, first..last.
  uint32_t first = 0, seq = 0;
  auto table_msg = [&](uint16_t type, uint16_t flags, const char* desc) {
    TablePtr t(nftnl_table_alloc());
    nftnl_table_set_str(t.get(), NFTNL_TABLE_NAME, table.c_str());
    seq = sock.nextSeq();
    if (first == 0) first = seq;
    nlmsghdr* nlh = nftnl_nlmsg_build_hdr(static_cast<char*>(nftnl_batch_buffer(batch.get())), type,
                                          NFPROTO_INET, flags | NLM_F_ACK, seq);
    nftnl_table_nlmsg_build_payload(nlh, t.get());
    what[seq] = desc;
    nftnl_batch_update(batch.get());
  };
  table_msg(NFT_MSG_NEWTABLE, NLM_F_CREATE, "add table");
  table_msg(NFT_MSG_DELTABLE, 0, "delete table");
  table_msg(NFT_MSG_NEWTABLE, NLM_F_CREATE | NLM_F_EXCL, "create table");
  for (const ChainDef& c : kChains) {
    ChainPtr ch(nftnl_chain_alloc());
    nftnl_chain_set_str(ch.get(), NFTNL_CHAIN_TABLE, table.c_str());
    nftnl_chain_set_str(ch.get(), NFTNL_CHAIN_NAME, c.name);
    nftnl_chain_set_str(ch.get(), NFTNL_CHAIN_TYPE, "filter");
    nftnl_chain_set_u32(ch.get(), NFTNL_CHAIN_HOOKNUM, c.hook);
    nftnl_chain_set_s32(ch.get(), NFTNL_CHAIN_PRIO, c.priority);
    nftnl_chain_set_u32(ch.get(), NFTNL_CHAIN_POLICY, NF_ACCEPT);
    seq = sock.nextSeq();
    nlmsghdr* nlh =
        nftnl_nlmsg_build_hdr(static_cast<char*>(nftnl_batch_buffer(batch.get())), NFT_MSG_NEWCHAIN,
                              NFPROTO_INET, NLM_F_CREATE | NLM_F_ACK, seq);
    nftnl_chain_nlmsg_build_payload(nlh, ch.get());
    what[seq] = std::string("add chain ") + c.name;
    nftnl_batch_update(batch.get());
  }
  for (size_t i = 0; i < built.size(); ++i) {
    seq = sock.nextSeq();
    nlmsghdr* nlh =
        nftnl_nlmsg_build_hdr(static_cast<char*>(nftnl_batch_buffer(batch.get())), NFT_MSG_NEWRULE,
                              NFPROTO_INET, NLM_F_CREATE | NLM_F_APPEND | NLM_F_ACK, seq);
    nftnl_rule_nlmsg_build_payload(nlh, built[i].get());
    what[seq] = "add rule " + specText(wanted[i]);
    nftnl_batch_update(batch.get());
  }
  const uint32_t last = seq;
  nftnl_batch_end(static_cast<char*>(nftnl_batch_buffer(batch.get())), sock.nextSeq());
  nftnl_batch_update(batch.get());
  if (auto written = sock.transact(batch.get(), first, last, what); !written) {
    return failCount("nftables: writing table inet " + table +
                     " failed: " + written.error().message());
  }
  log::info("nftables: wrote table inet {} ({}): {} rules", table, why, wanted.size());
  for (const Translated& t : wanted) {
    log::info("Added back nodelocaldns rule - inet {} {} {}", table, t.chain->name, specText(t));
  }
  return static_cast<int>(wanted.size());
}

bool Nftables::teardown() {
  last_error_.clear();
  NfSocket sock;
  if (auto opened = sock.open(settings_.timeout); !opened) {
    return fail("nftables: " + opened.error().message());
  }
  std::unique_ptr<nftnl_batch, BatchDeleter> batch(
      nftnl_batch_alloc(MNL_SOCKET_BUFFER_SIZE, MNL_SOCKET_BUFFER_SIZE));
  nftnl_batch_begin(static_cast<char*>(nftnl_batch_buffer(batch.get())), sock.nextSeq());
  nftnl_batch_update(batch.get());
  const uint32_t seq = sock.nextSeq();
  TablePtr t(nftnl_table_alloc());
  nftnl_table_set_str(t.get(), NFTNL_TABLE_NAME, settings_.table.c_str());
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(static_cast<char*>(nftnl_batch_buffer(batch.get())),
                                        NFT_MSG_DELTABLE, NFPROTO_INET, NLM_F_ACK, seq);
  nftnl_table_nlmsg_build_payload(nlh, t.get());
  nftnl_batch_update(batch.get());
  nftnl_batch_end(static_cast<char*>(nftnl_batch_buffer(batch.get())), sock.nextSeq());
  nftnl_batch_update(batch.get());
  int code = 0;
  if (auto deleted = sock.transact(batch.get(), seq, seq, {{seq, "delete table"}}, &code);
      !deleted) {
    if (code == ENOENT) return true;  // already gone
    return fail("nftables: deleting table inet " + settings_.table +
                " failed: " + deleted.error().message());
  }
  log::info("nftables: deleted table inet {}", settings_.table);
  return true;
}

Result<std::vector<std::pair<std::string, std::string>>> listNftTables() {
  std::vector<std::pair<std::string, std::string>> out;
  NfSocket sock;
  if (auto opened = sock.open(std::chrono::seconds(5)); !opened) return fail(opened.error());
  auto listed = sock.dump(
      [](char* buf, uint32_t seq) {
        return nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETTABLE, NFPROTO_UNSPEC, NLM_F_DUMP, seq);
      },
      [&](const nlmsghdr* m) {
        TablePtr t(nftnl_table_alloc());
        if (nftnl_table_nlmsg_parse(m, t.get()) < 0) return;
        out.emplace_back(familyName(nftnl_table_get_u32(t.get(), NFTNL_TABLE_FAMILY)),
                         orEmpty(nftnl_table_get_str(t.get(), NFTNL_TABLE_NAME)));
      },
      nullptr);
  if (!listed) return fail(std::move(listed).error());
  return out;
}

bool binaryOnPath(std::string_view name) {
  const char* env = std::getenv("PATH");
  const std::string path =
      env ? env : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(start, end - start);
    if (dir.empty()) dir = ".";
    const std::string file = dir + "/" + std::string(name);
    struct stat st {};
    if (::stat(file.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(file.c_str(), X_OK) == 0) {
      return true;
    }
    start = end + 1;
  }
  return false;
}

FirewallChoice chooseFirewallFrom(Firewall requested,
                                  const std::vector<std::pair<std::string, std::string>>& tables,
                                  const std::string& tables_error, bool iptables_on_path) {
  if (requested != Firewall::kAuto)
    return {requested, "-firewall=" + std::string(firewallName(requested))};
  for (const auto& [family, name] : tables) {
    if (name == "kube-proxy" && (family == "ip" || family == "ip6" || family == "inet")) {
      return {Firewall::kNftables,
              "kube-proxy runs in nftables mode (table " + family + " kube-proxy exists)"};
    }
  }
  if (!iptables_on_path) return {Firewall::kNftables, "no iptables binary on PATH"};
  std::string reason = "no kube-proxy nftables table and iptables is on PATH";
  if (!tables_error.empty()) reason += " (nftables tables not listed: " + tables_error + ")";
  return {Firewall::kIptables, reason};
}

FirewallChoice chooseFirewall(Firewall requested) {
  if (requested != Firewall::kAuto) return chooseFirewallFrom(requested, {}, {}, true);
  std::vector<std::pair<std::string, std::string>> tables;
  std::string error;
  if (auto listed = listNftTables()) {
    tables = std::move(*listed);
  } else {
    error = std::move(listed).error().message();
  }
  return chooseFirewallFrom(requested, tables, error, binaryOnPath("iptables"));
}

}  // namespace nld::node
