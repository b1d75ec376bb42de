#pragma once
// nld::Result<T>: the one error type of fallible calls below the command line.
//
// The rule (issue 14):
// - A call that can fail for an ordinary, expected reason (bad input text, a missing file, a
//   kernel refusal the caller reports) returns Result<T> (Result<void> when there is no value):
//   either the value or an nld::Error holding the message the user will read. The caller decides
//   what to add (a Corefile file:line, a flag name) and whether to log, count or stop. Callers
//   attach their own context, so Error is only the message: no file:line of the C++ source.
// - Exceptions stay where the code says why, one line at the `throw`:
//   * constructors that cannot build a usable object from settings already validated upstream
//     (a constructor has no return value; e.g. forward's SharedState, the plugin builders);
//   * resource failures of start-up plumbing that end the process anyway (epoll_create1,
//     getrandom, binding a listen socket), caught once at the top;
//   * the two parsers whose errors travel through many nested frames to one catch at the top
//     (the Corefile's ConfigError with file:line, the command line's FlagError): unwinding is
//     the clearest way to abandon a deeply nested parse, and the message is built once, at the
//     throw, byte-identical to upstream's;
//   * nothing for programming errors: those are assert()s or std::logic_error in test hooks.
// - The per-packet hot path (dns/, cache/, server/ request handling, upstream exchanges) keeps
//   its allocation-free enums, sentinel sizes and bools on purpose: an Error owns a std::string,
//   and building one per malformed packet would allocate on exactly the path a flood of bad
//   packets hammers; those failures are counted, not described.
//
// Built on tl::expected (Debian's libexpected-dev, header-only): C++20 has no std::expected.
// Result adds [[nodiscard]] (a dropped Result is a dropped error) and ok(); everything else is
// tl::expected's interface (value(), error(), operator*, operator->, value_or()). value() on an
// error throws tl::bad_expected_access: reading the value of a failed call is a programming
// error, and it surfaces loudly rather than as undefined behaviour.
#include <string>
#include <tl/expected.hpp>
#include <utility>

namespace nld {

/// Why a call failed: the message as the user reads it (callers may prefix their context).
class Error {
 public:
  explicit Error(std::string message) : message_(std::move(message)) {}
  const std::string& message() const& { return message_; }
  std::string message() && { return std::move(message_); }

 private:
  std::string message_;
};

template <class T>
class [[nodiscard]] Result : public tl::expected<T, Error> {
 public:
  using tl::expected<T, Error>::expected;
  Result() = default;  // as tl::expected: a value-initialized T (Result<void>: success)
  // A Result from another Result-shaped value (e.g. the tl::expected a monadic call returns).
  Result(tl::expected<T, Error> e)  // NOLINT(google-explicit-constructor): as a plain return
      : tl::expected<T, Error>(std::move(e)) {}

  bool ok() const { return this->has_value(); }
};

/// The failed state of any Result: `return nld::fail("cannot read " + path);`.
inline tl::unexpected<Error> fail(std::string message) {
  return tl::unexpected<Error>(Error(std::move(message)));
}
/// Passes a callee's error up unchanged: `if (!r) return nld::fail(r.error());`.
inline tl::unexpected<Error> fail(Error error) { return tl::unexpected<Error>(std::move(error)); }

}  // namespace nld
