#include "server/server.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <future>
#include <stdexcept>

#include "cache/snapshot.h"
#include "common/log.h"
#include "fmt/format.h"
#include "net/socket.h"

namespace nld::server {

struct Server::Worker {
  Worker(ServerMetrics& m, size_t idx, TcpLimits limits, const std::string& identity)
      : index(idx), metrics(m), pipeline(loop, m, idx, identity), tcp_limits(limits) {}
  size_t index;
  ServerMetrics& metrics;
  net::EventLoop loop;
  Pipeline pipeline;
  TcpLimits tcp_limits;
  std::thread thread;
  struct Handlers {
    std::vector<std::unique_ptr<UdpHandler>> udp;  // [0] this worker's group member, then extras
    std::vector<std::unique_ptr<TcpListener>> tcp;
  };
  std::map<ListenerKey, Handlers> handlers;

  // Loop thread: switch to `plan`, adopting new sockets and dropping listeners that went away.
  void apply(const std::shared_ptr<const Plan>& plan, std::map<ListenerKey, GroupFds>& fresh) {
    for (auto& [key, fds] : fresh) {
      Handlers h;
      for (net::Fd& fd : fds.udp) {
        h.udp.push_back(std::make_unique<UdpHandler>(loop, pipeline, std::move(fd),
                                                     net::isWildcard(key.first)));
      }
      for (net::Fd& fd : fds.tcp) {
        h.tcp.push_back(
            std::make_unique<TcpListener>(loop, pipeline, std::move(fd), tcp_limits, &metrics));
      }
      handlers[key] = std::move(h);
    }
    pipeline.setPlan(plan);
    std::map<ListenerKey, size_t> positions;
    for (size_t i = 0; i < plan->listeners.size(); ++i) {
      positions[{plan->listeners[i].address, plan->listeners[i].port}] = i;
    }
    for (auto it = handlers.begin(); it != handlers.end();) {
      auto found = positions.find(it->first);
      if (found == positions.end()) {
        // Removed listener: stop now, destroy after this dispatch round.
        for (auto& u : it->second.udp) u->stop();
        for (auto& t : it->second.tcp) t->stop();
        auto doomed = std::make_shared<Handlers>(std::move(it->second));
        loop.post([doomed] {});
        it = handlers.erase(it);
        continue;
      }
      // start() leaves paused UDP sockets and draining TCP listeners alone (handover).
      for (auto& u : it->second.udp) {
        u->setListener(found->second);
        u->start();
      }
      const ListenerPlan& lp = plan->listeners[found->second];
      for (auto& t : it->second.tcp) {
        t->setListener(found->second);
        t->setDeadlines(lp.tcp_read.value_or(tcp_limits.first_read),
                        lp.tcp_read.value_or(tcp_limits.frame),
                        lp.tcp_idle.value_or(tcp_limits.idle));
        t->start();
      }
      ++it;
    }
  }

  void pause() {
    for (auto& [key, h] : handlers) {
      for (auto& u : h.udp) u->pauseReading();
      for (auto& t : h.tcp) t->drain();
    }
  }

  void resume() {
    for (auto& [key, h] : handlers) {
      for (auto& u : h.udp) u->resumeReading();
      for (auto& t : h.tcp) t->undrain();
    }
  }

  size_t tcpConnections() const {
    size_t n = 0;
    for (const auto& [key, h] : handlers) {
      for (const auto& t : h.tcp) n += t->connections();
    }
    return n;
  }

  void shutdown() {
    for (auto& [key, h] : handlers) {
      for (auto& u : h.udp) u->stop();
      for (auto& t : h.tcp) t->stop();
    }
    pipeline.shutdown();
  }
};

Server::Server(ServerMetrics& metrics, ServerOptions options)
    : metrics_(metrics), options_(options) {
  if (options_.workers == 0) options_.workers = 1;
  for (size_t i = 0; i < options_.workers; ++i) {
    workers_.push_back(std::make_unique<Worker>(metrics_, i, options_.tcp, options_.identity));
  }
  std::vector<Pipeline*> peers;
  for (auto& w : workers_) peers.push_back(&w->pipeline);
  for (auto& w : workers_) w->pipeline.setPeers(peers);
}

Server::~Server() { stop(); }

void Server::load(const std::shared_ptr<const Plan>& plan) {
  std::lock_guard<std::mutex> lock(mu_);
  // 1. Bind what is new, on the control thread, so a failure leaves everything as it was. A
  //    listener handed over by a predecessor (node/handover.h) adopts its sockets instead: the
  //    same kernel sockets, with whatever they have queued.
  const size_t workers = workers_.size();
  const size_t tcp_workers =
      options_.tcp_workers == 0 ? workers : std::min(workers, options_.tcp_workers);
  // The new sockets, owned until each worker's handlers adopt them: if a bind fails below, they
  // close as `fresh` goes out of scope.
  std::vector<std::map<ListenerKey, GroupFds>> fresh(workers);
  std::map<ListenerKey, Group> next;
  for (const auto& l : plan->listeners) {
    ListenerKey key{l.address, l.port};
    if (auto old = bound_.find(key); old != bound_.end()) {
      next[key] = old->second;
      continue;
    }
    GroupFds g;
    for (int fd : inheritedSockets().takeAll(SocketKind::kDnsUdp, l.address, l.port)) {
      g.udp.emplace_back(fd);
    }
    for (int fd : inheritedSockets().takeAll(SocketKind::kDnsTcp, l.address, l.port)) {
      g.tcp.emplace_back(fd);
    }
    const bool inherited = !g.udp.empty() || !g.tcp.empty();
    while (g.udp.size() < workers) {
      g.udp.push_back(net::bindUdp(l.address, l.port, options_.udp_rcvbuf, options_.udp_sndbuf));
    }
    while (g.tcp.size() < tcp_workers) g.tcp.push_back(net::listenTcp(l.address, l.port));
    if (inherited) {
      log::info("listener {}: serving {} UDP and {} TCP sockets handed over", l.server_label,
                g.udp.size(), g.tcp.size());
    }
    Group& view = next[key];
    for (const net::Fd& fd : g.udp) view.udp.push_back(fd.get());
    for (const net::Fd& fd : g.tcp) view.tcp.push_back(fd.get());
    if (!net::attachQueryNameSteering(view.udp[0], unsigned(workers))) {
      for (auto& w : workers_) w->pipeline.setHandOffUdp(true);
      log::warn(
          "listener {}: kernel refused the query-name steering program ({}); UDP "
          "queries are spread by client address, so each worker's cache sees a share",
          l.server_label, std::strerror(errno));
    }
    for (size_t i = 0; i < g.udp.size(); ++i) {
      fresh[i % workers][key].udp.push_back(std::move(g.udp[i]));
    }
    for (size_t i = 0; i < g.tcp.size(); ++i) {
      fresh[i % workers][key].tcp.push_back(std::move(g.tcp[i]));
    }
  }

  // 2. Hand the plan to the workers (RCU-style) and wait until each has switched. Each worker
  //    reports the cache partitions it now uses (its own slot of `caches`).
  std::vector<std::vector<std::shared_ptr<cache::Cache>>> caches(workers_.size());
  auto collect = [](Worker& wk, std::vector<std::shared_ptr<cache::Cache>>& mine) {
    for (const BlockRuntime& rt : wk.pipeline.workerPlan()->blocks) mine.push_back(rt.cache);
  };
  if (!started_) {
    for (size_t w = 0; w < workers_.size(); ++w) {
      workers_[w]->apply(plan, fresh[w]);
      collect(*workers_[w], caches[w]);
    }
  } else {
    std::vector<std::future<void>> done;
    for (size_t w = 0; w < workers_.size(); ++w) {
      auto prom = std::make_shared<std::promise<void>>();
      done.push_back(prom->get_future());
      Worker* wk = workers_[w].get();
      // Shared: EventLoop::Task is a std::function, which must be copyable.
      auto f = std::make_shared<std::map<ListenerKey, GroupFds>>(std::move(fresh[w]));
      wk->loop.post([wk, plan, f, prom, &collect, mine = &caches[w]] {
        wk->apply(plan, *f);
        collect(*wk, *mine);
        prom->set_value();
      });
    }
    for (auto& d : done) d.wait();
  }
  // 3. With several workers, every worker gets every worker's partitions of this plan, so a
  //    query for a name another worker owns is answered from the owner's partition where it
  //    arrived (Pipeline::handle). Until a worker has them it hands such queries over.
  if (workers_.size() > 1) {
    auto peer_caches = std::make_shared<PeerCaches>();
    peer_caches->plan = plan;
    peer_caches->blocks.resize(plan->blocks.size());
    for (size_t b = 0; b < plan->blocks.size(); ++b) {
      for (size_t w = 0; w < workers_.size(); ++w) peer_caches->blocks[b].push_back(caches[w][b]);
    }
    std::shared_ptr<const PeerCaches> shared = std::move(peer_caches);
    if (!started_) {
      for (auto& w : workers_) w->pipeline.setPeerCaches(shared);
    } else {
      onEveryWorker([&shared](Worker& w) { w.pipeline.setPeerCaches(shared); });
    }
  }
  if (!started_) {
    for (auto& w : workers_) {
      Worker* wk = w.get();
      wk->thread = std::thread([wk] { wk->loop.run(); });
    }
    started_ = true;
  }
  bound_ = std::move(next);
  plan_ = plan;
}

void Server::onEveryWorker(const std::function<void(Worker&)>& f) {
  std::vector<std::future<void>> done;
  for (auto& w : workers_) {
    auto prom = std::make_shared<std::promise<void>>();
    done.push_back(prom->get_future());
    Worker* wk = w.get();
    wk->loop.post([wk, &f, prom] {
      f(*wk);
      prom->set_value();
    });
  }
  for (auto& d : done) d.wait();
}

std::vector<PassedSocket> Server::listeningSockets() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<PassedSocket> out;
  for (const auto& [key, g] : bound_) {
    for (int fd : g.udp) out.push_back({SocketKind::kDnsUdp, key.first, key.second, fd});
    for (int fd : g.tcp) out.push_back({SocketKind::kDnsTcp, key.first, key.second, fd});
  }
  return out;
}

void Server::pauseListeners() {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_) onEveryWorker([](Worker& w) { w.pause(); });
}

void Server::resumeListeners() {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_) onEveryWorker([](Worker& w) { w.resume(); });
}

size_t Server::tcpConnections() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!started_) return 0;
  std::atomic<size_t> n{0};
  onEveryWorker([&n](Worker& w) { n += w.tcpConnections(); });
  return n.load();
}

void Server::stop() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!started_) return;
  for (auto& w : workers_) {
    Worker* wk = w.get();
    wk->loop.post([wk] { wk->shutdown(); });
    wk->loop.stop();
  }
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
  started_ = false;
  workers_.clear();
}

namespace {

// Bound for the workers to finish a snapshot export/import (they answer queries in between).
constexpr auto kSnapshotWorkerTimeout = std::chrono::seconds(30);

// Runs `step` on `loop` again and again (one call per loop round) until it returns true, then
// fulfils `done`. The shared state lives as long as any posted round.
struct Repeater : std::enable_shared_from_this<Repeater> {
  net::EventLoop* loop = nullptr;
  std::function<bool()> step;
  std::promise<void> done;
  void post() {
    loop->post([self = shared_from_this()] {
      if (self->step()) {
        self->done.set_value();
      } else {
        self->post();
      }
    });
  }
};

void waitAll(std::vector<std::future<void>>& done, const char* what) {
  const auto deadline = std::chrono::steady_clock::now() + kSnapshotWorkerTimeout;
  for (auto& d : done) {
    if (d.wait_until(deadline) != std::future_status::ready) {
      throw std::runtime_error(
          fmt::format("cache snapshot: workers did not finish the {} within "
                      "{} s",
                      what, kSnapshotWorkerTimeout.count()));
    }
  }
}

}  // namespace

size_t Server::writeSnapshot(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!started_ || !plan_) throw std::runtime_error("cache snapshot: server not running");
  std::vector<std::string> groups;
  size_t group_bytes = 0;
  for (const auto& b : plan_->blocks) {
    groups.push_back(b.cache_identity);
    group_bytes += 2 + b.cache_identity.size();
  }
  const size_t budget =
      (cache::kMaxSnapshotBytes - cache::kSnapshotHeaderSize - group_bytes) / workers_.size();
  std::vector<std::shared_ptr<SnapshotExport>> parts;
  std::vector<std::future<void>> done;
  for (auto& w : workers_) {
    auto st = std::make_shared<SnapshotExport>(budget);
    auto r = std::make_shared<Repeater>();
    r->loop = &w->loop;
    Pipeline* p = &w->pipeline;
    r->step = [p, st] { return p->exportSlice(*st, kSnapshotSliceEntries); };
    done.push_back(r->done.get_future());
    parts.push_back(st);
    r->post();
  }
  waitAll(done, "export");
  std::vector<const cache::SnapshotBuffer*> buffers;
  size_t entries = 0;
  for (const auto& st : parts) {
    buffers.push_back(&st->buffer);
    entries += st->buffer.entries();
  }
  const auto now = cache::ClockPair::now();
  cache::writeFileAtomically(
      path, cache::encodeSnapshot(groups, buffers, cache::readBootId(), now.boot_hi_ms));
  return entries;
}

size_t Server::loadSnapshot(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!started_ || !plan_) return 0;
  const auto now = cache::ClockPair::now();
  std::string why;
  bool missing = false;
  auto loaded = cache::readSnapshotFile(path, cache::readBootId(), now.boot_lo_ms, why, missing);
  if (!loaded) {
    if (missing) {
      log::info("Cache snapshot: none at {}, starting cold", path);
    } else {
      log::warn("Cache snapshot {} refused: {}; starting cold", path, why);
    }
    return 0;
  }
  // Group (a block of the process that wrote it) → block of the current plan, by identity.
  std::vector<size_t> block_of_group(loaded->groups.size(), SIZE_MAX);
  for (size_t g = 0; g < loaded->groups.size(); ++g) {
    if (loaded->groups[g].empty()) continue;
    for (size_t b = 0; b < plan_->blocks.size(); ++b) {
      if (plan_->blocks[b].cache_identity == loaded->groups[g]) {
        block_of_group[g] = b;
        break;
      }
    }
  }
  // Each name goes to the worker that owns it now (the stored packet starts with the header and
  // the question name, which is all queryOwner reads).
  auto shared = std::make_shared<cache::LoadedSnapshot>(std::move(*loaded));
  std::vector<std::vector<const cache::SnapshotEntry*>> per_worker(workers_.size());
  for (const auto& e : shared->entries) {
    if (e.group < block_of_group.size() && block_of_group[e.group] != SIZE_MAX) {
      per_worker[Pipeline::queryOwner(e.packet, workers_.size())].push_back(&e);
    }
  }
  std::vector<std::future<void>> done;
  auto stored = std::make_shared<std::vector<size_t>>(workers_.size(), 0);
  for (size_t w = 0; w < workers_.size(); ++w) {
    auto r = std::make_shared<Repeater>();
    r->loop = &workers_[w]->loop;
    Pipeline* p = &workers_[w]->pipeline;
    auto mine =
        std::make_shared<std::vector<const cache::SnapshotEntry*>>(std::move(per_worker[w]));
    auto pos = std::make_shared<size_t>(0);
    r->step = [p, mine, pos, shared, stored, w, block_of_group] {
      // Slices of kSnapshotSliceEntries, like the export: the worker may already be serving.
      const size_t end = std::min(mine->size(), *pos + kSnapshotSliceEntries);
      std::vector<const cache::SnapshotEntry*> slice(mine->begin() + long(*pos),
                                                     mine->begin() + long(end));
      (*stored)[w] += p->importSnapshot(slice, block_of_group);
      *pos = end;
      return end == mine->size();
    };
    done.push_back(r->done.get_future());
    r->post();
  }
  try {
    waitAll(done, "import");
  } catch (const std::exception& e) {
    // The workers still own their counters: report nothing rather than read them racily.
    log::warn("Cache snapshot {}: {}", path, e.what());
    return 0;
  }
  size_t total = 0;
  for (size_t n : *stored) total += n;
  const int64_t age_s = std::max<int64_t>(0, now.boot_lo_ms - shared->written_boot_ms) / 1000;
  log::info("Cache snapshot: loaded {} entries from {} (age {} s)", total, path, age_s);
  return total;
}

size_t Server::inflight() const {
  size_t n = 0;
  for (const auto& w : workers_) n += w->pipeline.inflight();
  return n;
}

std::shared_ptr<const Plan> Server::plan() const {
  std::lock_guard<std::mutex> lock(mu_);
  return plan_;
}

}  // namespace nld::server
