#include "support/counting_allocator.h"

#include <cstdlib>
#include <new>

namespace {
// Constant-initialised, so reading them needs no TLS guard (safe from inside operator new).
thread_local uint64_t t_allocations = 0;
thread_local uint64_t t_deallocations = 0;

// Out of line so the compiler cannot pair an inlined malloc with a visible delete
// (GCC's -Wmismatched-new-delete).
[[gnu::noinline]] void* countedAlloc(std::size_t n) {
  ++t_allocations;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void* countedAllocNothrow(std::size_t n) noexcept {
  ++t_allocations;
  return std::malloc(n == 0 ? 1 : n);
}
[[gnu::noinline]] void countedFree(void* p) noexcept {
  if (p) ++t_deallocations;
  std::free(p);
}
}  // namespace

namespace nld::test {
uint64_t threadAllocations() { return t_allocations; }
uint64_t threadDeallocations() { return t_deallocations; }
}  // namespace nld::test

void* operator new(std::size_t n) { return countedAlloc(n); }
void* operator new[](std::size_t n) { return countedAlloc(n); }
void operator delete(void* p) noexcept { countedFree(p); }
void operator delete[](void* p) noexcept { countedFree(p); }
void operator delete(void* p, std::size_t) noexcept { countedFree(p); }
void operator delete[](void* p, std::size_t) noexcept { countedFree(p); }
// The nothrow forms too (std::stable_sort's temporary buffer uses them): every form that pairs
// with the replaced deletes must come from the same allocator, or ASan reports a mismatch.
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return countedAllocNothrow(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  return countedAllocNothrow(n);
}
void operator delete(void* p, const std::nothrow_t&) noexcept { countedFree(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { countedFree(p); }
