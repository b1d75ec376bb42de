#include "config/lexer.h"

#include <string>

#include "config/corefile.h"

namespace nld::config::detail {

void failAt(const std::string& file, int line, std::string_view msg) {
  std::string s = file;
  if (line > 0) s += ":" + std::to_string(line);
  s += ": ";
  s += msg;
  // Exception, not Result (see common/result.h): a Corefile error abandons a parse many frames
  // deep (imports, snippets, blocks, plugin options) and reaches parseCorefile's caller whole.
  throw ConfigError(s);
}

namespace {

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f'; }

}  // namespace

std::vector<Token> lex(std::string_view text, const std::string& file) {
  std::vector<Token> out;
  int line = 1;
  int prev_end = 0;
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
      ++i;
      continue;
    }
    if (c == '\r' || isSpace(c)) {
      ++i;
      continue;
    }
    if (c == '#') {
      while (i < n && text[i] != '\n') ++i;
      continue;
    }
    Token t;
    t.file = file;
    t.line = line;
    if (c == '"') {
      t.quoted = true;
      ++i;
      bool escaped = false;
      bool closed = false;
      while (i < n) {
        const char d = text[i++];
        if (d == '\r') continue;
        if (!escaped) {
          if (d == '\\') {
            escaped = true;
            continue;
          }
          if (d == '"') {
            closed = true;
            break;
          }
        }
        if (d == '\n') ++line;
        // Only \" is an escape; any other backslash is kept literally (caddy lexer).
        if (escaped && d != '"') t.text += '\\';
        escaped = false;
        t.text += d;
      }
      if (!closed) failAt(file, t.line, "unterminated quoted string");
    } else {
      while (i < n) {
        const char d = text[i];
        if (d == '\r') {
          ++i;
          continue;
        }
        if (isSpace(d) || d == '#') break;
        t.text += d;
        ++i;
      }
    }
    t.end_line = line;
    t.newline = out.empty() || t.line > prev_end;
    prev_end = t.end_line;
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace nld::config::detail
