// Fuzz target for DNS-over-TCP framing (server/tcp_framer.h): the input is a client's byte
// stream, cut into reads at boundaries chosen by the input itself, with the consumer sometimes
// pausing (as a connection does at its in-flight cap). The frames the framer hands out must be
// exactly those of a straightforward parse of the whole stream, in order, and the buffer it
// holds must never exceed the unconsumed bytes plus one frame. Any violation aborts.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "server/tcp_framer.h"

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "tcp_framing_fuzz invariant violated: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  // First byte: the read-size pattern seed; the rest is the stream.
  const uint8_t seed = data[0];
  const uint8_t* stream = data + 1;
  const size_t n = size - 1;

  // Reference: the frames of the whole stream.
  std::vector<std::vector<uint8_t>> want;
  for (size_t pos = 0; pos + 2 <= n;) {
    const size_t len = size_t(stream[pos]) << 8 | stream[pos + 1];
    if (pos + 2 + len > n) break;
    want.emplace_back(stream + pos + 2, stream + pos + 2 + len);
    pos += 2 + len;
  }

  nld::server::TcpFramer f;
  size_t got = 0;
  size_t pos = 0;
  unsigned step = 0;
  uint8_t read_buf[4096];
  while (pos < n) {
    // Read sizes 1..64 from the seed and the stream, like arbitrary TCP segmenting.
    const size_t chunk = std::min(n - pos, size_t(1 + ((seed + step * 37 + stream[pos]) % 64)));
    std::copy(stream + pos, stream + pos + chunk, read_buf);  // a transient buffer, as a stack
    f.feed(nld::dns::ByteView(read_buf, chunk));
    pos += chunk;
    ++step;
    nld::dns::ByteView msg;
    // Every third read the consumer pauses after one frame (in-flight cap).
    const bool pause = (seed + step) % 3 == 0;
    while (f.next(msg)) {
      check(got < want.size(), "more frames than in the stream");
      check(std::equal(msg.begin(), msg.end(), want[got].begin(), want[got].end()),
            "frame differs from the stream");
      ++got;
      if (pause) break;
    }
    f.keep();
    std::fill(read_buf, read_buf + chunk, 0xAA);  // the transient buffer is reused
    check(f.capacity() <= f.buffered() + 65537 + 64, "buffer larger than needed");
  }
  // Drain what the pauses left.
  nld::dns::ByteView msg;
  while (f.next(msg)) {
    check(got < want.size(), "more frames than in the stream (drain)");
    check(std::equal(msg.begin(), msg.end(), want[got].begin(), want[got].end()),
          "frame differs from the stream (drain)");
    ++got;
  }
  f.keep();
  check(got == want.size(), "frames missing");
  if (f.buffered() == 0) check(f.capacity() == 0, "buffer held with nothing buffered");
  return 0;
}
