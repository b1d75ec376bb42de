#pragma once
// Reassembly of DNS-over-TCP frames (RFC 1035 §4.2.2, RFC 7766 §8: a 2-byte big-endian length,
// then the message) from what one connection's read() calls return.
//
// Memory is held only for what is not consumed yet. The caller reads into a transient buffer
// (its stack), hands it over with feed(), takes the complete frames with next() straight out of
// that buffer (no copy), and calls keep() before the transient buffer goes away: only then are
// the bytes left over (normally the beginning of one frame) copied, into a buffer reserved for
// exactly that frame once its length is known. When everything is consumed the buffer is freed,
// so an idle connection holds no buffer at all (issue 11: 64 KiB per connection up front made
// 2,000 idle clients cost 133 MiB).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "dns/message.h"

namespace nld::server {

class TcpFramer {
 public:
  /// Sets the transient input (not copied). Any previous input must have been kept.
  void feed(dns::ByteView data) {
    input_ = data;
    in_pos_ = 0;
  }

  /// The next complete message (without its length prefix), or false if none is complete yet.
  /// The view stays valid until the next call of next(), feed(), keep() or release().
  bool next(dns::ByteView& msg);

  /// Copies the unconsumed rest of the input into the owned buffer (call before the memory
  /// given to feed() is reused).
  void keep();

  /// Bytes held or still unconsumed in the input: a partial frame, or complete frames the
  /// caller has not taken yet.
  size_t buffered() const { return (buf_.size() - buf_pos_) + (input_.size() - in_pos_); }
  /// Heap bytes held (for the connection table's memory budget).
  size_t capacity() const { return buf_.capacity(); }
  /// Frees the buffer (connection closed).
  void release() {
    releaseOwned();
    input_ = {};
    in_pos_ = 0;
  }

 private:
  /// Moves input bytes into buf_ until it holds `want` unconsumed bytes (or the input ends).
  void pull(size_t want);
  /// Drops the consumed prefix of buf_.
  void compact();
  void releaseOwned();

  std::vector<uint8_t> buf_;  // owned bytes; [buf_pos_, size) are unconsumed
  size_t buf_pos_ = 0;
  dns::ByteView input_;
  size_t in_pos_ = 0;
};

}  // namespace nld::server
