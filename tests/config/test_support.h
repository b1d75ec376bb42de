#pragma once
// Helpers shared by the config unit tests (scratch directories: support/temp_dir.h): fake
// env/interfaces, and an assertion that a Corefile is refused with a given line and message.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "config/corefile.h"
#include "support/temp_dir.h"

namespace nld::config::testing {

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
