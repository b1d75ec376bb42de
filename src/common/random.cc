#include "common/random.h"

#include <sys/random.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace nld {
namespace {

struct Xoshiro {
  uint64_t s[4];
  uint32_t uses = 0;

  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

  void seed() {
    secureRandomBytes(s, sizeof(s));
    if ((s[0] | s[1] | s[2] | s[3]) == 0) s[0] = 1;
    uses = 0;
  }

  uint64_t next() {
    // Reseed from the kernel every 2^16 outputs so a long-lived worker's stream stays fresh.
    if (++uses == 0 || (uses & 0xffff) == 0) seed();
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
  }
};

thread_local Xoshiro tls_rng = [] {
  Xoshiro x{};
  x.seed();
  return x;
}();

}  // namespace

void secureRandomBytes(void* buf, unsigned long len) {
  auto* p = static_cast<unsigned char*>(buf);
  while (len > 0) {
    ssize_t n = getrandom(p, len, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      // Exception, not Result: no caller can go on without its seed (getrandom fails only on a
      // broken kernel); it ends start-up at the catch in main.
      throw std::runtime_error(std::string("getrandom: ") + std::strerror(errno));
    }
    p += n;
    len -= static_cast<unsigned long>(n);
  }
}

uint64_t random64() { return tls_rng.next(); }

uint64_t randomBelow(uint64_t bound) {
  // Lemire's nearly-divisionless method would be faster; modulo bias is negligible for
  // bounds <= 2^16 drawn from 64 bits, which is all we use it for.
  return random64() % bound;
}

}  // namespace nld
