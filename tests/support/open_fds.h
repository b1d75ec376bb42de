#pragma once
// How many descriptors the process has open, for tests that check a code path closes what it
// opened (net::Fd owners, error returns): compare the count before and after. The test must not
// run other threads that open or close descriptors meanwhile.
#include <dirent.h>

#include <cstddef>
#include <stdexcept>

namespace nld::test {

/// Entries of /proc/self/fd, less the one the listing itself holds open.
inline size_t openFdCount() {
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) throw std::runtime_error("cannot list /proc/self/fd");
  size_t n = 0;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n - 1;
}

}  // namespace nld::test
