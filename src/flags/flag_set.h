#pragma once
// Command-line parsing with the exact semantics of Go's standard `flag` package.
//
// Hand-written on purpose: gflags, CLI11 and cxxopts cannot express single-dash long names that
// contain dots and dashes (`-dns.port`, `-metrics-listen-address`) with Go's rules (`-x v`,
// `-x=v`, `--x`, bool flags never consume the next argument, parsing stops at the first non-flag
// argument, Go's error messages). node-cache and the OVN controller must accept exactly the
// command lines the Go binaries they replace accept, so the parser follows flag.FlagSet.parseOne.
//
// Thread affinity: a FlagSet is used from one thread (main, at startup). It throws: command-line
// errors are startup errors, never on the packet path.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/go_text.h"

namespace nld::flags {

/// A command-line error with Go's message ("flag provided but not defined: -x", ...).
struct FlagError : std::runtime_error {
  using runtime_error::runtime_error;
};

/// Thrown by FlagSet::parse for -h / -help / --help (when no flag of that name is defined).
/// The caller prints FlagSet::usage() and exits (Go exits with status 0 for -h, 2 for errors).
struct HelpRequested : std::exception {
  const char* what() const noexcept override { return "flag: help requested"; }
};

/// A set of flags, like Go's flag.FlagSet with ContinueOnError.
class FlagSet {
 public:
  explicit FlagSet(std::string program);
  ~FlagSet();
  FlagSet(const FlagSet&) = delete;
  FlagSet& operator=(const FlagSet&) = delete;

  /// Defines a flag; *target receives the default immediately. A duplicate name throws FlagError
  /// ("flag redefined: x"), like Go's panic.
  void addString(const std::string& name, std::string* target, std::string def, std::string help);
  void addBool(const std::string& name, bool* target, bool def, std::string help);
  void addInt(const std::string& name, int64_t* target, int64_t def, std::string help);
  /// Go duration ("300ms", "1m30s"); if bare_int_unit is non-zero a bare integer ("60") means
  /// that many bare_int_units (node-cache's -syncinterval compatibility).
  void addDuration(const std::string& name, std::chrono::nanoseconds* target,
                   std::chrono::nanoseconds def, std::string help,
                   std::chrono::nanoseconds bare_int_unit = {});
  /// Makes `alias` another name for flag `name` (e.g. -p for -dns.port). Both names share the
  /// target and the "set" state.
  void alias(const std::string& alias, const std::string& name);

  /// Parses argv[1..argc). Forms: -name value | -name=value | --name | --name=value | -bool |
  /// -bool=false. "--" ends the flags; parsing stops at the first non-flag argument ("-" alone is
  /// a non-flag). Returns the remaining positional arguments.
  /// @throws FlagError with Go's message on unknown flags, missing or bad values.
  /// @throws HelpRequested for -h, -help, --help unless such a flag is defined.
  std::vector<std::string> parse(int argc, const char* const* argv);

  /// True if the flag (or one of its aliases) was given on the command line.
  bool isSet(const std::string& name) const;
  /// True if a flag (or alias) of this name is defined.
  bool has(const std::string& name) const;

  /// Go's "Usage of <program>:" text followed by PrintDefaults() output (flags sorted by name).
  std::string usage() const;

  const std::string& program() const { return program_; }

 private:
  struct Flag;
  Flag& define(const std::string& name, std::string help);
  Flag* find(const std::string& name) const;
  void setValue(Flag& flag, const std::string& shown_name, const std::string& value,
                bool has_value);

  std::string program_;
  std::map<std::string, std::shared_ptr<Flag>> flags_;  // by name, aliases included
};

/// Parses a Go duration string like time.ParseDuration (common/go_text.h).
/// @throws FlagError with Go's message, e.g. `time: missing unit in duration "5"`.
std::chrono::nanoseconds parseGoDuration(std::string_view text);

using nld::formatGoDuration;
using nld::goQuote;

}  // namespace nld::flags
