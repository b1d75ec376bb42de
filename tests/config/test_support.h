#pragma once
// Helpers shared by the config unit tests: a scratch directory, fake env/interfaces, and an
// assertion that a Corefile is refused with a given line and message.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "config/corefile.h"

namespace nld::config::testing {

/// A fresh directory under the test temp dir, removed in the destructor.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }
  /// Writes `content` to path()/name and returns the full path.
  std::string write(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

/// Options with a fake environment and fake interfaces (eth0: 10.0.0.5 + fe80::1%eth0,
/// lo: 127.0.0.1 + ::1, empty0: no addresses).
ParseOptions fakeOptions(std::map<std::string, std::string> env = {});

/// Parses with fakeOptions() and file name "Corefile".
Corefile parse(const std::string& text, const ParseOptions& options = fakeOptions());

/// The ConfigError message of parsing `text`, or "" if it parsed.
std::string errorOf(const std::string& text, const ParseOptions& options = fakeOptions(),
                    const std::string& filename = "Corefile");

}  // namespace nld::config::testing

/// Asserts that parsing TEXT fails with "Corefile:LINE: ..." containing SUBSTR.
#define EXPECT_CONFIG_ERROR(text, line, substr)                                               \
  do {                                                                                        \
    const std::string nld_err_ = ::nld::config::testing::errorOf(text);                       \
    EXPECT_EQ(nld_err_.rfind("Corefile:" + std::to_string(line) + ": ", 0), 0u)               \
        << "error was: '" << nld_err_ << "'";                                                 \
    EXPECT_NE(nld_err_.find(substr), std::string::npos) << "error was: '" << nld_err_ << "'"; \
  } while (0)
