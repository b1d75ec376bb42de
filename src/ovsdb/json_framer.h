#pragma once
// Splits a byte stream of concatenated JSON texts (RFC 7047 §3: JSON-RPC messages are sent back
// to back with no delimiter) into complete messages.
//
// Hand-written because nlohmann::json parses whole documents only; it has no push parser that
// tells where one value ends in a partial buffer. The framer only tracks strings, escapes and
// bracket depth; it does not validate the JSON (the caller parses each framed text).
//
// Thread affinity: none (a plain value type used by one connection on one thread).
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace nld::ovsdb {

class JsonFramer {
 public:
  static constexpr std::size_t kDefaultMaxMessageBytes = 64u * 1024u * 1024u;

  enum class Status {
    kOk,        ///< zero or more messages extracted; a partial message may stay buffered
    kTooLarge,  ///< a message exceeds the size cap; the framer must be reset (drop the connection)
    kSyntax,    ///< a byte outside any JSON object/array that is not whitespace
  };

  explicit JsonFramer(std::size_t max_message_bytes = kDefaultMaxMessageBytes);

  /// Appends bytes and moves every complete top-level JSON object/array into `out`.
  /// After an error status the framer stays in error until reset().
  Status feed(std::string_view bytes, std::vector<std::string>& out);

  /// Drops buffered bytes and error state (call on reconnect).
  void reset();

  /// Bytes of the incomplete message currently buffered.
  std::size_t buffered() const { return buf_.size(); }

 private:
  std::size_t max_message_bytes_;
  std::string buf_;  // bytes of the current, incomplete message (starts at '{' or '[')
  int depth_ = 0;
  bool in_string_ = false;
  bool escape_ = false;
  Status error_ = Status::kOk;
};

}  // namespace nld::ovsdb
