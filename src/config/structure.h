#pragma once
// The caddyfile structure pass: server blocks (keys + directive lines), with {$ENV}
// substitution, `import FILE|GLOB` and snippets expanded. Internal to nld::config.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "config/corefile.h"
#include "config/lexer.h"

namespace nld::config::detail {

/// One directive line: `head arg... [{ line... }]`. Args and nested heads are env-substituted.
struct Line {
  Token head;
  std::vector<Token> args;
  bool has_block = false;
  Token open_brace;  ///< the "{" when has_block
  std::vector<Line> block;
};

/// A server block before directive interpretation.
struct RawBlock {
  std::vector<Token> keys;  ///< one token per key (comma-separated keys already split)
  std::vector<Line> lines;
};

/// Limits that bound the work done on hostile input.
inline constexpr int kMaxImportNesting = 64;
inline constexpr int kMaxSnippetExpansions = 10000;
inline constexpr int kMaxFileExpansions = 100000;
inline constexpr int kMaxBlockNesting = 16;
inline constexpr size_t kMaxFileSize = 16 * 1024 * 1024;
inline constexpr size_t kMaxTokens = 200000;

/// Replaces {$NAME} and {%NAME%} (repeatedly, bounded) using options.getenv.
/// Throws ConfigError at `at` when substitution does not terminate.
std::string substituteEnv(const std::string& s, const ParseOptions& options, const Token& at);

/// Runs the structure pass over `text` (named `filename` for errors and relative imports).
std::vector<RawBlock> parseStructure(std::string_view text, const std::string& filename,
                                     const ParseOptions& options);

/// Reads a whole regular file (at most kMaxFileSize bytes), or why not ("No such file or
/// directory", "not a regular file", ...).
Result<std::string> readWholeFile(const std::string& path);

}  // namespace nld::config::detail
