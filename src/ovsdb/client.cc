#include "ovsdb/client.h"

#include <poll.h>

#include <cerrno>

#include "common/log.h"

namespace nld::ovsdb {

namespace {

using Clock = std::chrono::steady_clock;

int msUntil(Clock::time_point deadline) {
  auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

// The "error" of a JSON-RPC reply or of the first failed operation, as text.
std::string describeError(const Json& e) {
  if (e.is_string()) return e.get<std::string>();
  if (e.is_object()) {
    // Server input: a member of the wrong type is shown as JSON, never thrown on.
    auto err = e.find("error");
    std::string s = err == e.end()     ? "error"
                    : err->is_string() ? err->get<std::string>()
                                       : err->dump();
    if (auto d = e.find("details"); d != e.end() && d->is_string())
      s += ": " + d->get<std::string>();
    return s;
  }
  return e.dump();
}

bool mentionsNotLeader(const std::string& s) { return s.find("not leader") != std::string::npos; }

}  // namespace

Json buildMonitorRequests(const std::map<std::string, std::vector<std::string>>& monitor,
                          const Schema& schema, bool conditional) {
  Json requests = Json::object();
  for (const auto& [table, columns] : monitor) {
    if (!schema.hasTable(table)) continue;
    Json req = Json::object();
    if (!columns.empty()) {
      Json cols = Json::array();
      for (const auto& c : columns) {
        if (schema.hasColumn(table, c)) cols.push_back(c);
      }
      req["columns"] = cols;
    }
    requests[table] = conditional ? Json::array({req}) : req;
  }
  return requests;
}

Client::Client(ClientOptions options) : options_(std::move(options)) {}

Client::~Client() = default;

std::string Client::currentRemote() const {
  if (options_.remotes.empty()) return {};
  return options_.remotes[remote_index_ % options_.remotes.size()].toString();
}

void Client::disconnect(const std::string& why) {
  if (stream_) {
    last_error_ = why;
    stream_.reset();
  }
  framer_.reset();
  replies_.clear();
  queued_.clear();
  probe_sent_.reset();
}

Result<void> Client::connect() {
  disconnect("reconnecting");
  std::string all;
  const std::size_t n = options_.remotes.size();
  if (n == 0) return fail("no OVSDB remote configured");
  for (std::size_t i = 0; i < n; ++i) {
    // Start with the remote that worked last; move on from it if it fails.
    std::size_t idx = (remote_index_ + i) % n;
    auto tried = tryRemote(options_.remotes[idx]);
    if (tried) {
      remote_index_ = idx;
      ++connect_count_;
      return {};
    }
    const std::string& why = tried.error().message();
    disconnect(why);
    if (n > 1) log::info("ovsdb: skipping {}: {}", options_.remotes[idx].toString(), why);
    if (!all.empty()) all += "; ";
    all += options_.remotes[idx].toString() + ": " + why;
  }
  remote_index_ = (remote_index_ + 1) % n;
  last_error_ = all;
  return fail(std::move(all));
}

Result<void> Client::tryRemote(const Remote& remote) {
  const int timeout_ms = static_cast<int>(options_.connect_timeout.count());
  auto opened = options_.open_stream ? options_.open_stream(remote, options_.ssl, timeout_ms)
                                     : Stream::open(remote, options_.ssl, timeout_ms);
  if (!opened) return fail(std::move(opened).error());
  stream_ = std::move(*opened);
  last_rx_ = Clock::now();
  const auto deadline = Clock::now() + options_.connect_timeout;

  if (options_.leader_only) {
    Json select = {{"op", "select"},
                   {"table", "Database"},
                   {"where", Json::array({Json::array({"name", "==", options_.database})})},
                   {"columns", Json::array({"leader", "model", "connected"})}};
    auto reply = waitReply(sendRequest("transact", Json::array({"_Server", select})), deadline);
    if (!reply) return fail(stream_ ? "no reply to _Server query" : last_error_);
    // Servers without a _Server database (or standalone ones) are accepted as they are.
    const Json& result = (*reply)["result"];
    if (result.is_array() && !result.empty() && result[0].is_object() &&
        result[0].contains("rows") && result[0]["rows"].is_array() && !result[0]["rows"].empty()) {
      const Json& row = result[0]["rows"][0];
      // Typed lookups only: a row or member of the wrong type reads as absent.
      auto member = [&row](const char* name) -> const Json* {
        if (!row.is_object()) return nullptr;
        auto it = row.find(name);
        return it == row.end() ? nullptr : &*it;
      };
      const Json* model = member("model");
      const Json* leader_j = member("leader");
      const Json* conn_j = member("connected");
      const bool clustered =
          model && model->is_string() && model->get_ref<const std::string&>() == "clustered";
      const bool leader = leader_j && leader_j->is_boolean() && leader_j->get<bool>();
      const bool conn = !conn_j || !conn_j->is_boolean() || conn_j->get<bool>();
      if (clustered && (!leader || !conn)) {
        return fail("not leader of clustered database " + options_.database);
      }
    }
  }

  auto schema_reply =
      waitReply(sendRequest("get_schema", Json::array({options_.database})), deadline);
  if (!schema_reply) return fail(stream_ ? "no reply to get_schema" : last_error_);
  if (!(*schema_reply)["error"].is_null()) {
    return fail("get_schema: " + describeError((*schema_reply)["error"]));
  }
  auto schema = Schema::fromJson((*schema_reply)["result"]);
  if (!schema) return fail(std::move(schema).error());
  schema_ = std::move(*schema);

  monitor_cond_ = true;
  auto reply =
      waitReply(sendRequest("monitor_cond",
                            Json::array({options_.database, "nld",
                                         buildMonitorRequests(options_.monitor, schema_, true)})),
                deadline);
  if (reply && !(*reply)["error"].is_null()) {
    // Servers older than OVS 2.6 only know RFC 7047 "monitor".
    log::debug("ovsdb: monitor_cond refused ({}), falling back to monitor",
               describeError((*reply)["error"]));
    monitor_cond_ = false;
    reply = waitReply(
        sendRequest("monitor",
                    Json::array({options_.database, "nld",
                                 buildMonitorRequests(options_.monitor, schema_, false)})),
        deadline);
  }
  if (!reply) return fail(stream_ ? "no reply to monitor request" : last_error_);
  if (!(*reply)["error"].is_null()) return fail("monitor: " + describeError((*reply)["error"]));
  replica_.clear();
  auto applied = monitor_cond_ ? replica_.applyUpdate2((*reply)["result"], schema_)
                               : replica_.applyUpdate((*reply)["result"]);
  if (!applied) return fail("bad monitor reply: " + applied.error().message());
  // Notifications that came in the same read as the reply apply on top of it, now.
  if (!dispatchQueued()) return fail(last_error_);
  return {};
}

bool Client::send(const Json& message) {
  if (!stream_) return false;
  if (auto written = stream_->writeAll(message.dump(), 5000); !written) {
    disconnect(written.error().message());
    return false;
  }
  return true;
}

int64_t Client::sendRequest(const std::string& method, Json params) {
  const int64_t id = next_id_++;
  send(Json{{"method", method}, {"params", std::move(params)}, {"id", id}});
  return id;
}

std::optional<Json> Client::waitReply(int64_t id, Clock::time_point deadline) {
  while (stream_) {
    if (auto it = replies_.find(id); it != replies_.end()) {
      Json r = std::move(it->second);
      replies_.erase(it);
      return r;
    }
    if (Clock::now() >= deadline) return std::nullopt;
    awaited_ = id;
    readOnce(std::min(msUntil(deadline), 200));
    awaited_.reset();
    checkProbe();
  }
  return std::nullopt;
}

bool Client::dispatchQueued() {
  while (!queued_.empty() && stream_) {
    Json j = Json::parse(queued_.front(), nullptr, false);
    queued_.pop_front();
    if (j.is_discarded() || !j.is_object()) {
      disconnect("invalid JSON from server");
      return false;
    }
    const bool awaited_reply = awaited_ && !j.contains("method") && j.contains("id") &&
                               j["id"].is_number_integer() && j["id"].get<int64_t>() == *awaited_;
    dispatch(std::move(j));
    if (awaited_reply) break;
  }
  return stream_ != nullptr;
}

bool Client::readOnce(int timeout_ms) {
  if (!stream_) return false;
  if (!queued_.empty()) return dispatchQueued();
  if (!stream_->hasBufferedData()) {
    pollfd p{stream_->fd(), POLLIN, 0};
    int r = ::poll(&p, 1, timeout_ms);
    if (r < 0 && errno != EINTR) {
      disconnect("poll failed");
      return false;
    }
    if (r <= 0) return true;
  }
  char buf[65536];
  std::vector<std::string> messages;
  // Drain what is readable now (bounded so one busy server cannot starve the caller).
  for (int i = 0; i < 64 && stream_; ++i) {
    auto got = stream_->read(buf, sizeof buf);
    if (!got) {
      disconnect(got.error().message());
      return false;
    }
    const std::size_t n = *got;
    if (n == 0) break;
    last_rx_ = Clock::now();
    probe_sent_.reset();
    auto st = framer_.feed(std::string_view(buf, n), messages);
    if (st != JsonFramer::Status::kOk) {
      disconnect(st == JsonFramer::Status::kTooLarge ? "JSON-RPC message too large"
                                                     : "JSON-RPC framing error");
      return false;
    }
    if (n < sizeof buf && !stream_->hasBufferedData()) break;
  }
  for (auto& m : messages) queued_.push_back(std::move(m));
  return dispatchQueued();
}

void Client::dispatch(Json message) {
  auto method = message.find("method");
  if (method != message.end() && method->is_string()) {
    const std::string& m = method->get_ref<const std::string&>();
    const Json& params = message["params"];
    if (m == "echo") {
      send(Json{{"result", params}, {"error", nullptr}, {"id", message["id"]}});
    } else if ((m == "update" || m == "update2") && params.is_array() && params.size() == 2) {
      auto applied = m == "update2" ? replica_.applyUpdate2(params[1], schema_)
                                    : replica_.applyUpdate(params[1]);
      // A bad notification drops the connection: the next connect() resyncs.
      if (!applied) disconnect("bad " + m + " notification: " + applied.error().message());
    } else if (!message["id"].is_null()) {
      send(Json{{"result", nullptr}, {"error", "unknown method"}, {"id", message["id"]}});
    }
    return;
  }
  // A reply: keep it for whoever waits on its id (echo replies just count as traffic).
  const Json& id = message["id"];
  if (id.is_number_integer()) replies_[id.get<int64_t>()] = std::move(message);
}

void Client::checkProbe() {
  if (!stream_ || options_.probe_interval.count() <= 0) return;
  const auto now = Clock::now();
  if (probe_sent_) {
    if (now - *probe_sent_ >= options_.probe_interval) {
      disconnect("inactivity probe: no reply to echo after " +
                 std::to_string(options_.probe_interval.count()) + " ms");
    }
    return;
  }
  if (now - last_rx_ >= options_.probe_interval) {
    probe_sent_ = now;
    send(Json{{"method", "echo"}, {"params", Json::array()}, {"id", "echo"}});
  }
}

bool Client::poll(std::chrono::milliseconds timeout) {
  if (!stream_) return false;
  readOnce(static_cast<int>(timeout.count()));  // queued messages first, without waiting
  checkProbe();
  return stream_ != nullptr;
}

TxnResult Client::transact(const Json& operations, std::chrono::milliseconds timeout) {
  TxnResult res;
  if (!stream_) {
    res.error = "not connected";
    return res;
  }
  Json params = Json::array({options_.database});
  for (const auto& op : operations) params.push_back(op);
  auto reply = waitReply(sendRequest("transact", std::move(params)), Clock::now() + timeout);
  if (!reply) {
    if (stream_) {
      disconnect("transaction timed out");
      res.status = TxnResult::Status::kTimeout;
      res.error = "no reply to transaction";
    } else {
      res.error = last_error_;
    }
    return res;
  }
  const Json& err = (*reply)["error"];
  if (!err.is_null()) {
    res.error = describeError(err);
    res.status =
        mentionsNotLeader(res.error) ? TxnResult::Status::kNotLeader : TxnResult::Status::kError;
    if (res.status == TxnResult::Status::kNotLeader) disconnect("server is not the leader");
    return res;
  }
  res.reply = (*reply)["result"];
  res.status = TxnResult::Status::kOk;
  if (!res.reply.is_array()) {
    res.status = TxnResult::Status::kError;
    res.error = "transaction result is not an array";
    return res;
  }
  for (std::size_t i = 0; i < res.reply.size(); ++i) {
    const Json& r = res.reply[i];
    if (!r.is_object() || !r.contains("error") || r["error"].is_null()) continue;
    res.error = describeError(r);
    const bool wait_op = i < operations.size() && operations[i].is_object() &&
                         operations[i].value("op", std::string()) == "wait";
    if (mentionsNotLeader(res.error)) {
      res.status = TxnResult::Status::kNotLeader;
      disconnect("server is not the leader");
    } else if (wait_op && r["error"] == "timed out") {
      res.status = TxnResult::Status::kConflict;
    } else {
      res.status = TxnResult::Status::kError;
    }
    break;
  }
  return res;
}

}  // namespace nld::ovsdb
