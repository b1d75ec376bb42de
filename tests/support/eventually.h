#pragma once
// Bounded polling for C++ tests: the only wait helper of the C++ tests (tests/README.md).
// Use it where a test waits for another thread or process to reach a state; never to time
// something (no timed assertions in unit tests).
#include <chrono>
#include <functional>

namespace nld::test {

/// Polls `pred` every `interval` until it returns true (true) or `timeout` has passed; then it
/// asks once more, so a condition that became true during the last sleep still counts.
bool eventually(const std::function<bool()>& pred,
                std::chrono::milliseconds timeout = std::chrono::seconds(5),
                std::chrono::milliseconds interval = std::chrono::milliseconds(5));

}  // namespace nld::test
