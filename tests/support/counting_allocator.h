#pragma once
// Heap-allocation counting for the "this path must not allocate" tests. Linking the object
// library nld_test_counting_alloc (never the static support library: a replacement operator new
// in an archive would be pulled into every test) replaces the global operator new/delete, in all
// their forms, with counting versions over malloc/free.
//
// The counters are per thread: a test measures only what its own thread does, so background
// threads (a forwarder's health checks, a loop thread) cannot make it flaky.
#include <cstdint>

namespace nld::test {

/// operator new calls (all forms) made by the calling thread so far.
uint64_t threadAllocations();
/// operator delete calls with a non-null pointer made by the calling thread so far.
uint64_t threadDeallocations();

}  // namespace nld::test
