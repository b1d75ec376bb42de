#include "server/tcp_framer.h"

#include <algorithm>

namespace nld::server {

bool TcpFramer::next(dns::ByteView& msg) {
  if (buf_pos_ > 0 && buf_pos_ == buf_.size()) releaseOwned();
  if (buf_pos_ < buf_.size()) {
    // Owned bytes come first: complete the frame they begin with input bytes.
    pull(2);
    if (buf_.size() - buf_pos_ < 2) return false;
    const size_t len = dns::load16(buf_.data() + buf_pos_);
    pull(2 + len);
    if (buf_.size() - buf_pos_ < 2 + len) return false;
    msg = dns::ByteView(buf_.data() + buf_pos_ + 2, len);
    buf_pos_ += 2 + len;
    return true;
  }
  // Nothing owned: frames are taken straight out of the input (the common case, no copy).
  const size_t rest = input_.size() - in_pos_;
  if (rest < 2) return false;
  const size_t len = dns::load16(input_.data() + in_pos_);
  if (rest < 2 + len) return false;
  msg = input_.subspan(in_pos_ + 2, len);
  in_pos_ += 2 + len;
  return true;
}

void TcpFramer::pull(size_t want) {
  const size_t have = buf_.size() - buf_pos_;
  if (have >= want) return;
  compact();
  // Sized for this frame: the 2-byte prefix first, then exactly the announced message.
  if (buf_.capacity() < want) buf_.reserve(want);
  const size_t take = std::min(want - have, input_.size() - in_pos_);
  if (take == 0) return;
  buf_.insert(buf_.end(), input_.begin() + static_cast<std::ptrdiff_t>(in_pos_),
              input_.begin() + static_cast<std::ptrdiff_t>(in_pos_ + take));
  in_pos_ += take;
}

void TcpFramer::keep() {
  if (buf_pos_ > 0 && buf_pos_ == buf_.size()) releaseOwned();
  const size_t rest = input_.size() - in_pos_;
  if (rest > 0) {
    compact();
    size_t want = buf_.size() + rest;
    if (buf_.empty() && rest >= 2) {
      // Room for the whole first frame at once: its remainder arrives by the next reads.
      want = std::max(want, 2 + size_t(dns::load16(input_.data() + in_pos_)));
    }
    if (buf_.capacity() < want) buf_.reserve(want);
    buf_.insert(buf_.end(), input_.begin() + static_cast<std::ptrdiff_t>(in_pos_), input_.end());
  }
  input_ = {};
  in_pos_ = 0;
}

void TcpFramer::compact() {
  if (buf_pos_ == 0) return;
  buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(buf_pos_));
  buf_pos_ = 0;
}

void TcpFramer::releaseOwned() {
  std::vector<uint8_t>().swap(buf_);
  buf_pos_ = 0;
}

}  // namespace nld::server
