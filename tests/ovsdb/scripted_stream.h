#pragma once
// An in-memory OVSDB "server" for ovsdb::Client, plugged in through ClientOptions::open_stream:
// a script of server turns, one per client request. When the client sends a request (a message
// with "method" and an "id"), the next turn's bytes become readable, with every "$ID" replaced by
// that request's id; replies the client sends (to "echo") consume no turn. Bytes are handed out
// `chunk` at a time so partial messages reach the framer. Once the readable bytes are used up a
// read reports end of stream, so the client never waits on a clock: every run is deterministic.
//
// Used by the ovsdb_client fuzz target and the Client unit tests. Not thread-safe.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ovsdb/client.h"

namespace nld::ovsdb::testing {

/// The turns of a scripted server, shared by every connection the client opens (a reconnect
/// continues with the next unused turn).
struct ServerScript {
  std::vector<std::string> turns;
  std::size_t next = 0;
  std::size_t chunk = 65536;
  std::vector<std::string> requests;  ///< every message the client sent, in order
  int opens = 0;
};

class ScriptedStream final : public Stream {
 public:
  explicit ScriptedStream(ServerScript& script) : script_(script) {}

  /// A descriptor poll() reports readable at once (the client polls it only when no bytes are
  /// buffered; the read that follows then reports end of stream).
  int fd() const override {
    static const int kAlwaysReadable = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    return kAlwaysReadable;
  }

  Result<std::size_t> read(char* buf, std::size_t len) override {
    if (pos_ >= rx_.size()) return fail("end of script");
    const std::size_t n = std::min({len, script_.chunk, rx_.size() - pos_});
    std::memcpy(buf, rx_.data() + pos_, n);
    pos_ += n;
    return n;
  }

  Result<void> writeAll(std::string_view data, int) override {
    script_.requests.emplace_back(data);
    Json m = Json::parse(data, nullptr, false);
    if (!m.is_object() || !m.contains("method") || m["id"].is_null()) return {};
    if (script_.next >= script_.turns.size()) return {};
    const std::string id = m["id"].dump();
    std::string turn = script_.turns[script_.next++];
    for (std::size_t at = turn.find("$ID"); at != std::string::npos;
         at = turn.find("$ID", at + id.size())) {
      turn.replace(at, 3, id);
    }
    rx_.erase(0, pos_);
    pos_ = 0;
    rx_ += turn;
    return {};
  }

  bool hasBufferedData() const override { return pos_ < rx_.size(); }

 private:
  ServerScript& script_;
  std::string rx_;
  std::size_t pos_ = 0;
};

/// ClientOptions for a client of `script` (no probes, no real timeouts).
inline ClientOptions scriptedOptions(ServerScript& script) {
  ClientOptions o;
  o.remotes = {Remote{Remote::Kind::kUnix, "/scripted", "", 0}};
  o.probe_interval = std::chrono::milliseconds(0);
  o.connect_timeout = std::chrono::hours(1);
  o.open_stream = [&script](const Remote&, const SslOptions&,
                            int) -> Result<std::unique_ptr<Stream>> {
    ++script.opens;
    return std::make_unique<ScriptedStream>(script);
  };
  return o;
}

}  // namespace nld::ovsdb::testing
