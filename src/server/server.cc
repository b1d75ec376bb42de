#include "server/server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <future>
#include <stdexcept>

#include "common/log.h"

namespace nld::server {

struct Server::Worker {
  Worker(ServerMetrics& m, size_t idx, TcpLimits limits)
      : index(idx), metrics(m), pipeline(loop, m, idx), tcp_limits(limits) {}
  size_t index;
  ServerMetrics& metrics;
  net::EventLoop loop;
  Pipeline pipeline;
  TcpLimits tcp_limits;
  std::thread thread;
  struct Handlers {
    std::unique_ptr<UdpHandler> udp;
    std::unique_ptr<TcpListener> tcp;
  };
  std::map<ListenerKey, Handlers> handlers;

  // Loop thread: switch to `plan`, adopting new sockets and dropping listeners that went away.
  void apply(const std::shared_ptr<const Plan>& plan,
             const std::map<ListenerKey, std::pair<int, int>>& fresh) {
    for (const auto& [key, fds] : fresh) {
      Handlers h;
      h.udp = std::make_unique<UdpHandler>(loop, pipeline, fds.first, isWildcard(key.first));
      h.tcp = std::make_unique<TcpListener>(loop, pipeline, fds.second, tcp_limits, &metrics);
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
        it->second.udp->stop();
        it->second.tcp->stop();
        auto doomed = std::make_shared<Handlers>(std::move(it->second));
        loop.post([doomed] {});
        it = handlers.erase(it);
        continue;
      }
      it->second.udp->setListener(found->second);
      it->second.tcp->setListener(found->second);
      it->second.udp->start();
      it->second.tcp->start();
      ++it;
    }
  }

  void shutdown() {
    for (auto& [key, h] : handlers) {
      h.udp->stop();
      h.tcp->stop();
    }
    pipeline.shutdown();
  }
};

Server::Server(ServerMetrics& metrics, ServerOptions options)
    : metrics_(metrics), options_(options) {
  if (options_.workers == 0) options_.workers = 1;
  for (size_t i = 0; i < options_.workers; ++i) {
    workers_.push_back(std::make_unique<Worker>(metrics_, i, options_.tcp));
  }
  std::vector<Pipeline*> peers;
  for (auto& w : workers_) peers.push_back(&w->pipeline);
  for (auto& w : workers_) w->pipeline.setPeers(peers);
}

Server::~Server() { stop(); }

void Server::load(const std::shared_ptr<const Plan>& plan) {
  std::lock_guard<std::mutex> lock(mu_);
  // 1. Bind what is new, on the control thread, so a failure leaves everything as it was.
  std::vector<std::map<ListenerKey, std::pair<int, int>>> fresh(workers_.size());
  std::map<ListenerKey, bool> next;
  try {
    for (const auto& l : plan->listeners) {
      ListenerKey key{l.address, l.port};
      next[key] = true;
      if (bound_.count(key)) continue;
      for (size_t w = 0; w < workers_.size(); ++w) {
        int u = bindUdp(l.address, l.port, options_.udp_rcvbuf, options_.udp_sndbuf);
        int t = -1;
        try {
          t = listenTcp(l.address, l.port);
        } catch (...) {
          ::close(u);
          throw;
        }
        fresh[w][key] = {u, t};
      }
      if (!attachQueryNameSteering(fresh[0][key].first, unsigned(workers_.size()))) {
        for (auto& w : workers_) w->pipeline.setHandOffUdp(true);
        log::warn("listener {}: kernel refused the query-name steering program ({}); UDP "
                  "queries are spread by client address, so each worker's cache sees a share",
                  l.server_label, std::strerror(errno));
      }
    }
  } catch (...) {
    for (auto& m : fresh) {
      for (auto& [k, fds] : m) {
        ::close(fds.first);
        ::close(fds.second);
      }
    }
    throw;
  }

  // 2. Hand the plan to the workers (RCU-style) and wait until each has switched.
  if (!started_) {
    for (size_t w = 0; w < workers_.size(); ++w) {
      workers_[w]->apply(plan, fresh[w]);
      Worker* wk = workers_[w].get();
      wk->thread = std::thread([wk] { wk->loop.run(); });
    }
    started_ = true;
  } else {
    std::vector<std::future<void>> done;
    for (size_t w = 0; w < workers_.size(); ++w) {
      auto prom = std::make_shared<std::promise<void>>();
      done.push_back(prom->get_future());
      Worker* wk = workers_[w].get();
      auto f = fresh[w];
      wk->loop.post([wk, plan, f, prom] {
        wk->apply(plan, f);
        prom->set_value();
      });
    }
    for (auto& d : done) d.wait();
  }
  bound_ = std::move(next);
  plan_ = plan;
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
