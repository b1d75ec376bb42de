#include "node/handover.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "common/log.h"
#include "net/fd.h"

namespace nld::node {

namespace {

using Json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;
constexpr size_t kMaxMessage = 64 * 1024;

std::string sysError(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

sockaddr_un unixAddress(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof(a.sun_path)) {
    // Handover's start-up failures are exceptions: node-cache cannot run without its state
    // directory and locks; the catch at the top (main) reports them and exits.
    throw std::runtime_error("handover socket path too long: " + path);
  }
  std::memcpy(a.sun_path, path.data(), path.size());
  return a;
}

int remainingMs(SteadyClock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
  return left.count() > 0 ? int(left.count()) : 0;
}

/// Sends one message (JSON text) with `fds` attached. False on any error.
bool sendMessage(int fd, const Json& j, const std::vector<int>& fds = {}) {
  std::string text = j.dump();
  iovec iov{text.data(), text.size()};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  std::vector<char> control;
  if (!fds.empty()) {
    control.assign(CMSG_SPACE(sizeof(int) * fds.size()), 0);
    m.msg_control = control.data();
    m.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&m);
    if (c == nullptr) return false;
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  do {
    n = ::sendmsg(fd, &m, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  return n == ssize_t(text.size());
}

enum class Recv { kOk, kEof, kTimeout, kBad };

/// Receives one message before `deadline`; attached fds are appended to `fds` (close-on-exec).
/// A message that is not a JSON object, is truncated or carries fds of another kind is Bad (its
/// fds are closed).
Recv recvMessage(int fd, SteadyClock::time_point deadline, Json& out, std::vector<net::Fd>* fds,
                 const std::atomic<bool>* stop = nullptr) {
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    int wait = std::min(remainingMs(deadline), 200);
    int r = ::poll(&p, 1, wait);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Recv::kBad;
    if (r == 0) {
      if (remainingMs(deadline) == 0 || (stop != nullptr && stop->load())) return Recv::kTimeout;
      continue;
    }
    break;
  }
  std::vector<char> buf(kMaxMessage);
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 253)];
  iovec iov{buf.data(), buf.size()};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = control;
  m.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = ::recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  std::vector<net::Fd> got;  // closed unless the message is accepted
  for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int f;
        std::memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        got.emplace_back(f);
      }
    }
  }
  auto reject = [](Recv why) { return why; };
  if (n == 0) return reject(Recv::kEof);
  if (n < 0 || (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0) return reject(Recv::kBad);
  try {
    out = Json::parse(buf.data(), buf.data() + n);
  } catch (const std::exception&) {
    return reject(Recv::kBad);
  }
  if (!out.is_object() || (fds == nullptr && !got.empty())) return reject(Recv::kBad);
  if (fds != nullptr) {
    for (auto& f : got) fds->push_back(std::move(f));
  }
  return Recv::kOk;
}

net::Fd openLock(const std::string& path) {
  net::Fd fd(::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600));
  if (!fd) throw std::runtime_error(sysError("cannot open", path));
  return fd;
}

}  // namespace

Handover::Handover(std::string dir, std::string pod_uid, std::chrono::milliseconds timeout)
    : dir_(std::move(dir)), pod_uid_(std::move(pod_uid)), timeout_(timeout) {}

Handover::~Handover() { stop(); }  // the lock files and sockets close with their Fds

void Handover::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

bool Handover::tryOwner() {
  if (::flock(owner_fd_.get(), LOCK_EX | LOCK_NB) == 0) {
    owner_ = true;
    return true;
  }
  if (errno != EWOULDBLOCK) throw std::runtime_error(sysError("cannot lock", dir_ + "/owner.lock"));
  return false;
}

net::Fd Handover::connectOwner() {
  const std::string path = dir_ + "/handover.sock";
  sockaddr_un a = unixAddress(path);
  net::Fd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!fd) return {};
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return {};
  return fd;
}

Handover::Start Handover::begin() {
  if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST) {
    throw std::runtime_error(sysError("cannot create state directory", dir_));
  }
  owner_fd_ = openLock(dir_ + "/owner.lock");
  // successor.lock first, even when no owner is alive: it is held from here until this process
  // holds owner.lock and listens on handover.sock (becomeOwner). A successor waiting for its
  // predecessor to exit holds it, so a candidate arriving the moment the predecessor exits (e.g.
  // the old pod's container restarted by the kubelet) cannot take the free owner.lock first and
  // become a second owner; it queues and then asks the successor.
  successor_fd_ = openLock(dir_ + "/successor.lock");
  if (::flock(successor_fd_.get(), LOCK_EX | LOCK_NB) != 0) {
    log::info("Handover: another node-cache is starting or taking over; waiting for it");
    while (::flock(successor_fd_.get(), LOCK_EX) != 0) {
      if (errno != EINTR)
        throw std::runtime_error(sysError("cannot lock", dir_ + "/successor.lock"));
    }
  }
  if (tryOwner()) return Start::kFresh;  // no owner alive (or it went away while we queued)

  const auto deadline = SteadyClock::now() + timeout_;
  for (;;) {
    net::Fd fd = connectOwner();
    if (!fd) {
      // Not listening yet (it is itself still taking over) or gone: retry until the deadline.
      if (tryOwner()) return Start::kFresh;
      if (remainingMs(deadline) == 0) {
        log::error(
            "Handover: the running node-cache does not accept handovers on {}/handover.sock;"
            " binding our own sockets next to it",
            dir_);
        return Start::kFresh;
      }
      ::usleep(50 * 1000);
      continue;
    }
    Json hello = {{"hello", 1}, {"pid", int(::getpid())}, {"pod_uid", pod_uid_}};
    if (!sendMessage(fd.get(), hello)) continue;
    std::vector<PassedSocket> sockets;
    std::vector<net::Fd> fds;
    for (;;) {
      Json reply;
      Recv r = recvMessage(fd.get(), deadline, reply, &fds);
      bool well_formed = r == Recv::kOk;
      try {
        if (well_formed && reply.contains("refused")) {
          log::error("Handover: refused by the running node-cache (pid {}): {}",
                     reply.value("pid", 0), reply["refused"].get<std::string>());
          successor_fd_.reset();  // let other candidates go ahead
          return Start::kRefused;
        }
        if (well_formed) {
          const auto& list = reply.at("sockets");
          for (const auto& s : list) {
            PassedSocket p;
            if (!parseSocketKind(s.at("kind").get<std::string>(), &p.kind)) {
              // Joins nlohmann's own exceptions (at(), get<>()) in the catch below.
              throw std::runtime_error("unknown socket kind");
            }
            p.address = s.at("address").get<std::string>();
            p.port = s.at("port").get<uint16_t>();
            sockets.push_back(std::move(p));
          }
          if (!reply.value("more", false)) {
            predecessor_.pid = reply.value("pid", 0);
            predecessor_.pod_uid = reply.value("pod_uid", std::string());
            predecessor_.snapshot = reply.value("snapshot", std::string());
            if (sockets.size() != fds.size()) throw std::runtime_error("socket count mismatch");
            break;
          }
          continue;
        }
      } catch (const std::exception& e) {
        log::error("Handover: malformed reply from the running node-cache: {}", e.what());
        well_formed = false;
      }
      fds.clear();
      fd.reset();
      if (tryOwner()) return Start::kFresh;
      log::error(
          "Handover: no usable reply from the running node-cache ({}); binding our own "
          "sockets next to it",
          r == Recv::kTimeout ? "timed out"
          : r == Recv::kEof   ? "it closed the connection"
                              : "malformed message");
      return Start::kFresh;
    }
    // PassedSocket carries a raw int: the registry (common/inherited_sockets.h) hands each one
    // on to the listener that adopts it, which owns it from then on.
    for (size_t i = 0; i < sockets.size(); ++i) sockets[i].fd = fds[i].release();
    log::info("Handover: took {} listening sockets from node-cache pid {}", sockets.size(),
              predecessor_.pid);
    inheritedSockets().add(std::move(sockets));
    predecessor_fd_ = std::move(fd);
    return Start::kInherited;
  }
}

void Handover::serve(Hooks hooks) {
  if (predecessor_fd_) {
    if (!sendMessage(predecessor_fd_.get(), Json{{"ready", 1}})) {
      log::warn("Handover: could not tell node-cache pid {} that we serve (it has exited?)",
                predecessor_.pid);
    }
  }
  thread_ = std::thread([this, hooks = std::move(hooks)] { run(hooks); });
}

void Handover::becomeOwner() {
  const std::string path = dir_ + "/handover.sock";
  const std::string tmp = path + "." + std::to_string(::getpid());
  ::unlink(tmp.c_str());
  sockaddr_un a = unixAddress(tmp);
  net::Fd owned(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  const int fd = owned.get();
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::chmod(tmp.c_str(), 0600) != 0 || ::listen(fd, 4) != 0 ||
      ::rename(tmp.c_str(), path.c_str()) != 0) {
    log::error("Handover: {}; successors will start without our sockets",
               sysError("cannot listen on", path));
    ::unlink(tmp.c_str());
  } else {
    listen_fd_ = std::move(owned);
  }
  successor_fd_.reset();  // the next candidate may go ahead now
}

void Handover::run(Hooks hooks) {
  // Successor side: wait for the predecessor to exit (owner.lock), watching our connection.
  while (!owner_ && !stop_) {
    if (tryOwner()) break;
    if (predecessor_fd_) {
      pollfd p{predecessor_fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, 100) == 1) {
        predecessor_fd_.reset();  // it has exited (or closed): owner.lock follows at once
      }
    } else {
      ::usleep(100 * 1000);
    }
  }
  if (stop_) return;
  predecessor_fd_.reset();
  becomeOwner();
  while (!stop_ && listen_fd_) {
    pollfd p{listen_fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, 200) != 1) continue;
    const net::Fd conn(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn) continue;
    serveOne(conn.get(), hooks);
  }
}

void Handover::serveOne(int conn, const Hooks& hooks) {
  Json hello;
  if (recvMessage(conn, SteadyClock::now() + timeout_, hello, nullptr, &stop_) != Recv::kOk ||
      !hello.contains("hello")) {
    log::warn("Handover: a candidate connected but sent no hello; ignored");
    return;
  }
  int pid = 0;
  std::string uid;
  try {
    pid = hello.value("pid", 0);
    uid = hello.value("pod_uid", std::string());
  } catch (const std::exception&) {
    log::warn("Handover: malformed hello; ignored");
    return;
  }
  const Json me = {{"pid", int(::getpid())}, {"pod_uid", pod_uid_}};
  if (!uid.empty() && uid == predecessor_.pod_uid) {
    Json refuse = me;
    refuse["refused"] = "pod " + uid + " was replaced by this node-cache; not handing back";
    sendMessage(conn, refuse);
    log::info("Handover: refused node-cache pid {} of pod {}, the pod this one replaced", pid, uid);
    return;
  }
  log::info("Handover: node-cache pid {} asks to take over", pid);
  std::string snapshot = hooks.snapshot ? hooks.snapshot() : std::string();
  std::vector<PassedSocket> sockets = hooks.sockets ? hooks.sockets() : std::vector<PassedSocket>{};
  size_t sent = 0;
  do {
    size_t n = std::min(kMaxFdsPerMessage, sockets.size() - sent);
    Json msg = me;
    msg["sockets"] = Json::array();
    std::vector<int> fds;
    for (size_t i = sent; i < sent + n; ++i) {
      msg["sockets"].push_back({{"kind", socketKindName(sockets[i].kind)},
                                {"address", sockets[i].address},
                                {"port", sockets[i].port}});
      fds.push_back(sockets[i].fd);
    }
    sent += n;
    msg["more"] = sent < sockets.size();
    if (sent == sockets.size()) msg["snapshot"] = snapshot;
    if (!sendMessage(conn, msg, fds)) {
      log::warn("Handover: node-cache pid {} went away during the handover; still serving", pid);
      return;
    }
  } while (sent < sockets.size());

  Json ready;
  Recv r = recvMessage(conn, SteadyClock::now() + timeout_, ready, nullptr, &stop_);
  if (r != Recv::kOk || !ready.contains("ready")) {
    log::warn("Handover: node-cache pid {} did not start serving ({}); still serving", pid,
              r == Recv::kEof       ? "it exited"
              : r == Recv::kTimeout ? "timed out"
                                    : "malformed reply");
    return;
  }
  log::info("Handover: node-cache pid {} serves now; draining and exiting", pid);
  transition(Phase::kServing, Phase::kHandedOver);
  // Keep the connection until we exit: if the successor dies first, resume serving.
  while (!stop_) {
    pollfd p{conn, POLLIN, 0};
    if (::poll(&p, 1, 200) == 1) {
      if (transition(Phase::kHandedOver, Phase::kServing, 1)) {
        log::error("Handover: node-cache pid {} exited before we did; resuming service", pid);
      } else {
        log::error(
            "Handover: node-cache pid {} exited after this one had drained and decided to exit; "
            "no node-cache serves this node until one starts again",
            pid);
      }
      return;
    }
  }
}

bool Handover::commitExit() { return transition(Phase::kHandedOver, Phase::kExiting); }

bool Handover::transition(Phase from, Phase to, uint64_t lost) {
  uint64_t cur = state_.load();
  while (phaseOf(cur) == from) {
    if (state_.compare_exchange_weak(cur, withPhase(cur + (lost << 2), to))) return true;
  }
  return false;
}

}  // namespace nld::node
