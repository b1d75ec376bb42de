#pragma once
// OVSDB JSON-RPC client (RFC 7047 plus ovsdb-server(7) extensions) with an in-memory replica,
// modelled on ovs lib/ovsdb-idl: connect to the first usable remote of a list (a clustered NB
// follower is skipped by reading the _Server database), fetch the schema, monitor_cond the
// requested tables (falling back to monitor), keep the replica current from update/update2
// notifications, answer and send "echo" keepalives, and run transactions synchronously.
//
// Reconnection policy (backoff) belongs to the caller: after a lost connection, connect() again;
// the replica is cleared and fully resynchronised by every successful connect().
//
// Thread affinity: one thread (the controller loop). Nothing here throws on server input; errors
// are returned and logged by the caller.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "ovsdb/datum.h"
#include "ovsdb/json_framer.h"
#include "ovsdb/remote.h"
#include "ovsdb/replica.h"
#include "ovsdb/schema.h"
#include "ovsdb/stream.h"

namespace nld::ovsdb {

struct ClientOptions {
  std::vector<Remote> remotes;
  SslOptions ssl;
  std::string database = "OVN_Northbound";
  /// Tables to monitor → columns (empty = every column). Tables absent from the server's schema
  /// are skipped.
  std::map<std::string, std::vector<std::string>> monitor;
  /// Send an echo after this much silence; drop the connection after as much again.
  std::chrono::milliseconds probe_interval{5000};
  std::chrono::milliseconds connect_timeout{5000};
  /// Skip clustered servers that are not the leader (kube-ovn connects to the leader too).
  bool leader_only = true;
  /// Opens the byte stream to a remote; empty means Stream::open. The fuzz target and unit tests
  /// of the protocol handling substitute an in-memory server here (no sockets, no timing).
  std::function<Result<std::unique_ptr<Stream>>(const Remote&, const SslOptions&, int timeout_ms)>
      open_stream;
};

/// Outcome of a transaction.
struct TxnResult {
  enum class Status {
    kOk,            ///< committed
    kConflict,      ///< a "wait" operation failed: the data changed; re-read and retry
    kError,         ///< an operation or the request failed (see error)
    kNotLeader,     ///< the server is not the cluster leader; reconnect elsewhere and retry
    kDisconnected,  ///< no connection, or it was lost before the reply
    kTimeout,       ///< no reply in time (the connection is dropped: the outcome is unknown)
  };
  Status status = Status::kDisconnected;
  Json reply;         ///< the "result" array for kOk/kConflict/kError
  std::string error;  ///< human-readable reason when not kOk
};

/// Exponential backoff for reconnects: 1 s, 2 s, 4 s, 8 s, 8 s ...
class Backoff {
 public:
  explicit Backoff(std::chrono::milliseconds initial = std::chrono::milliseconds(1000),
                   std::chrono::milliseconds cap = std::chrono::milliseconds(8000))
      : initial_(initial), cap_(cap), next_(initial) {}
  /// The delay to wait before the next attempt; doubles the following one up to the cap.
  std::chrono::milliseconds next() {
    auto d = next_;
    next_ = std::min(cap_, next_ * 2);
    return d;
  }
  void reset() { next_ = initial_; }

 private:
  std::chrono::milliseconds initial_;
  std::chrono::milliseconds cap_;
  std::chrono::milliseconds next_;
};

class Client {
 public:
  explicit Client(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /// Tries every remote once, starting after the one used last, until one accepts (is the leader
  /// for clustered databases, serves the database, and the monitor succeeds).
  /// @return an error listing why each remote failed.
  Result<void> connect();

  /// Closes the connection (the replica is kept until the next connect()).
  void disconnect(const std::string& why);

  bool connected() const { return stream_ != nullptr; }

  /// The remote of the current (or last) connection, as text.
  std::string currentRemote() const;

  /// Why the last connection was dropped (empty if never).
  const std::string& lastError() const { return last_error_; }

  /// Waits up to `timeout` for server messages and processes all available ones (updates,
  /// echo requests); sends and checks the inactivity probe.
  /// @return false if the connection is (now) down.
  bool poll(std::chrono::milliseconds timeout);

  /// Sends {"method":"transact","params":[database, ops...]} and waits for its reply, processing
  /// notifications that arrive meanwhile (so the replica already reflects the commit on kOk).
  TxnResult transact(const Json& operations, std::chrono::milliseconds timeout);

  const Replica& replica() const { return replica_; }
  const Schema& schema() const { return schema_; }

  /// Number of successful connects so far (each one is a full resync).
  uint64_t connectCount() const { return connect_count_; }

  /// True if monitor_cond was accepted (false: plain monitor fallback).
  bool usingMonitorCond() const { return monitor_cond_; }

 private:
  Result<void> tryRemote(const Remote& remote);
  bool send(const Json& message);
  int64_t sendRequest(const std::string& method, Json params);
  /// Reads until the reply to `id` arrives or the deadline passes.
  std::optional<Json> waitReply(int64_t id, std::chrono::steady_clock::time_point deadline);
  /// Dispatches queued messages, or reads once (waiting up to timeout_ms) and dispatches the
  /// complete messages read. Stops right after the reply awaited_ (the rest stays queued), so the
  /// waiter acts on its reply before any later message is applied.
  bool readOnce(int timeout_ms);
  bool dispatchQueued();
  void dispatch(Json message);
  void checkProbe();

  ClientOptions options_;
  std::unique_ptr<Stream> stream_;
  JsonFramer framer_;
  Replica replica_;
  Schema schema_;
  std::size_t remote_index_ = 0;
  int64_t next_id_ = 1;
  std::map<int64_t, Json> replies_;
  /// Framed messages not dispatched yet: those behind the reply a waitReply() returned. The
  /// monitor reply must replace the replica before the update2 notifications that follow it in
  /// the same read are applied, or they would be applied first and wiped by the reset.
  std::deque<std::string> queued_;
  std::optional<int64_t> awaited_;
  bool monitor_cond_ = true;
  uint64_t connect_count_ = 0;
  std::string last_error_;
  std::chrono::steady_clock::time_point last_rx_{};
  std::optional<std::chrono::steady_clock::time_point> probe_sent_;
};

/// Builds the monitor_cond "params" third element from ClientOptions::monitor and a schema.
Json buildMonitorRequests(const std::map<std::string, std::vector<std::string>>& monitor,
                          const Schema& schema, bool conditional);

}  // namespace nld::ovsdb
