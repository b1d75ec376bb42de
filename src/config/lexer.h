#pragma once
// Corefile tokens and the lexer (coredns/caddy caddyfile/lexer.go rules). Internal to nld::config.
// Hand-written: there is no caddyfile lexer for C++, and the rules are a few lines.
#include <string>
#include <string_view>
#include <vector>

namespace nld::config::detail {

/// One lexical token with its position.
struct Token {
  std::string text;
  std::string file;
  int line = 0;          ///< line where the token starts (1-based)
  int end_line = 0;      ///< line where it ends (quoted tokens may span lines)
  bool quoted = false;   ///< came from "..." (then braces and `import` are plain text)
  bool newline = false;  ///< first token of its source, or on a later line than the previous one
};

/// True for an unquoted "{" / "}".
inline bool isOpen(const Token& t) { return !t.quoted && t.text == "{"; }
inline bool isClose(const Token& t) { return !t.quoted && t.text == "}"; }

/// Throws ConfigError "file:line: msg".
[[noreturn]] void failAt(const std::string& file, int line, std::string_view msg);
[[noreturn]] inline void failAt(const Token& at, std::string_view msg) {
  failAt(at.file, at.line, msg);
}

/// Splits `text` into tokens. Whitespace separates, '\r' is ignored, '#' starts a comment to end
/// of line outside quotes (even mid-token), "..." quotes (only \" is an escape).
/// Throws ConfigError on an unterminated quote.
std::vector<Token> lex(std::string_view text, const std::string& file);

}  // namespace nld::config::detail
