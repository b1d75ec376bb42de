#include "config/structure.h"

#include <glob.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <optional>

#include "common/log.h"

namespace nld::config::detail {

Result<std::string> readWholeFile(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return fail(std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return fail("not a regular file");
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(std::strerror(errno));
  std::string out;
  char buf[65536];
  while (in) {
    in.read(buf, sizeof(buf));
    out.append(buf, static_cast<size_t>(in.gcount()));
    if (out.size() > kMaxFileSize) {
      return fail("file larger than " + std::to_string(kMaxFileSize) + " bytes");
    }
  }
  if (in.bad()) return fail("read error");
  return out;
}

namespace {

std::string lookupEnv(const ParseOptions& options, const std::string& name) {
  if (options.getenv) return options.getenv(name).value_or("");
  const char* v = std::getenv(name.c_str());
  return v ? std::string(v) : std::string();
}

// caddy's replaceEnvReferences: replace the first reference, then rescan from the start.
bool replaceOne(std::string& s, std::string_view open, std::string_view close,
                const ParseOptions& options) {
  const size_t start = s.find(open);
  if (start == std::string::npos) return false;
  const size_t end = s.find(close, start + open.size());
  if (end == std::string::npos || end == start + open.size()) return false;
  const std::string ref = s.substr(start, end + close.size() - start);
  const std::string name = s.substr(start + open.size(), end - start - open.size());
  const std::string value = lookupEnv(options, name);
  // Replace every occurrence of this reference (strings.Replace(..., -1)).
  std::string out;
  size_t pos = 0;
  for (size_t at = s.find(ref); at != std::string::npos; at = s.find(ref, pos)) {
    out.append(s, pos, at - pos);
    out += value;
    pos = at + ref.size();
  }
  out.append(s, pos, std::string::npos);
  s = std::move(out);
  return true;
}

}  // namespace

std::string substituteEnv(const std::string& s, const ParseOptions& options, const Token& at) {
  if (s.find('{') == std::string::npos) return s;
  std::string out = s;
  constexpr int kMaxRounds = 256;
  constexpr size_t kMaxLength = 65536;
  for (int round = 0;; ++round) {
    if (round >= kMaxRounds || out.size() > kMaxLength) {
      failAt(at, "environment variable substitution in '" + s + "' does not terminate");
    }
    if (replaceOne(out, "{$", "}", options)) continue;
    if (replaceOne(out, "{%", "%}", options)) continue;
    return out;
  }
}

namespace {

using TokenList = std::shared_ptr<const std::vector<Token>>;

/// Token source with a stack of spliced-in frames (imports). Each token carries the nesting
/// level of the frame it came from so import cycles are caught even when frames are popped.
class TokenStream {
 public:
  void push(TokenList tokens, int level) {
    if (!tokens->empty()) frames_.push_back(Frame{std::move(tokens), 0, level});
  }

  const Token* peek() {
    while (!frames_.empty() && frames_.back().pos >= frames_.back().tokens->size()) {
      frames_.pop_back();
    }
    if (frames_.empty()) return nullptr;
    return &(*frames_.back().tokens)[frames_.back().pos];
  }

  /// Takes the next token; *level receives its frame's nesting level. Requires peek() != null.
  Token take(int* level = nullptr) {
    peek();
    Frame& f = frames_.back();
    if (level) *level = f.level;
    last_ = (*f.tokens)[f.pos++];
    return last_;
  }

  const Token& last() const { return last_; }

 private:
  struct Frame {
    TokenList tokens;
    size_t pos;
    int level;
  };
  std::vector<Frame> frames_;
  Token last_;
};

class StructureParser {
 public:
  StructureParser(const std::string& filename, const ParseOptions& options)
      : filename_(filename), options_(options) {}

  std::vector<RawBlock> run(std::string_view text) {
    auto tokens = std::make_shared<std::vector<Token>>(lex(text, filename_));
    total_tokens_ = tokens->size();
    stream_.push(std::move(tokens), 0);
    std::vector<RawBlock> blocks;
    while (stream_.peek()) {
      RawBlock b;
      if (parseServerBlock(b)) blocks.push_back(std::move(b));
    }
    return blocks;
  }

 private:
  Token env(Token t) {
    t.text = substituteEnv(t.text, options_, t);
    return t;
  }

  // Reads the arguments of `import` (same line) and splices the snippet or files.
  void doImport(const Token& import_tok, int level) {
    std::vector<Token> args;
    while (const Token* p = stream_.peek()) {
      if (p->newline || isOpen(*p) || isClose(*p)) break;
      args.push_back(stream_.take());
    }
    if (args.size() != 1) {
      failAt(import_tok, "Import takes only one argument (glob pattern or file)");
    }
    if (level + 1 > kMaxImportNesting) {
      failAt(args[0], "import nested more than " + std::to_string(kMaxImportNesting) +
                          " levels deep (import cycle?)");
    }
    const std::string pattern = substituteEnv(args[0].text, options_, args[0]);
    if (pattern.empty()) failAt(args[0], "Import requires a non-empty filepath");
    if (auto it = snippets_.find(pattern); it != snippets_.end()) {
      if (++snippet_expansions_ > kMaxSnippetExpansions) {
        failAt(args[0], "maximum number of snippet imports (" +
                            std::to_string(kMaxSnippetExpansions) + ") exceeded");
      }
      addTokens(it->second->size(), args[0]);
      stream_.push(it->second, level + 1);
      return;
    }
    importFiles(args[0], pattern, level);
  }

  void importFiles(const Token& at, const std::string& pattern, int level) {
    if (!options_.allow_file_imports) {
      failAt(at, "import of files is disabled here; '" + pattern + "' is not a defined snippet");
    }
    std::string path = pattern;
    if (path.front() != '/') {
      const size_t slash = at.file.rfind('/');
      if (slash != std::string::npos) path = at.file.substr(0, slash + 1) + pattern;
    }
    const auto stars = std::count(pattern.begin(), pattern.end(), '*');
    const auto questions = std::count(pattern.begin(), pattern.end(), '?');
    if (stars > 1 || questions > 1 || (stars + questions) > 1) {
      failAt(at, "Glob pattern may only contain one wildcard (*), but has others: " + pattern);
    }
    if (pattern.find('[') != std::string::npos) {
      failAt(at, "Glob pattern may not contain '[...]': " + pattern);
    }
    std::vector<std::string> matches;
    if (stars + questions == 0) {
      matches.push_back(path);
    } else {
      glob_t g{};
      const int rc = ::glob(path.c_str(), GLOB_NOSORT | GLOB_NOESCAPE, nullptr, &g);
      if (rc == 0) {
        for (size_t i = 0; i < g.gl_pathc; ++i) matches.emplace_back(g.gl_pathv[i]);
      }
      ::globfree(&g);
      if (rc != 0 && rc != GLOB_NOMATCH) failAt(at, "Failed to use import pattern " + pattern);
      std::sort(matches.begin(), matches.end());
      if (matches.empty()) {
        nld::log::warn("No files matching import glob pattern: {}", pattern);
        return;
      }
    }
    auto tokens = std::make_shared<std::vector<Token>>();
    for (const auto& file : matches) {
      if (++file_expansions_ > kMaxFileExpansions) {
        failAt(at, "maximum number of file imports (" + std::to_string(kMaxFileExpansions) +
                       ") exceeded");
      }
      auto text = readWholeFile(file);
      if (!text) failAt(at, "Could not import " + file + ": " + text.error().message());
      auto toks = lex(*text, file);
      addTokens(toks.size(), at);
      for (auto& t : toks) tokens->push_back(std::move(t));
    }
    stream_.push(std::move(tokens), level + 1);
  }

  void addTokens(size_t n, const Token& at) {
    total_tokens_ += n;
    if (total_tokens_ > kMaxTokens) {
      failAt(at, "Corefile too large after imports (more than " + std::to_string(kMaxTokens) +
                     " tokens)");
    }
  }

  // Returns false for snippet definitions and key-less trailing imports (nothing to keep).
  bool parseServerBlock(RawBlock& b) {
    bool expecting_another = false;
    bool braced = false;
    while (true) {
      const Token* p = stream_.peek();
      if (!p) {
        if (expecting_another) failAt(stream_.last(), "unexpected EOF, expected another address");
        break;
      }
      int level = 0;
      Token t = stream_.take(&level);
      if (!t.quoted && t.text == "import" && t.newline) {
        doImport(t, level);
        continue;
      }
      if (isOpen(t)) {
        if (expecting_another) {
          failAt(t, "Expected another address but had '{' - check for extra comma");
        }
        braced = true;
        break;
      }
      if (isClose(t)) failAt(t, "Unexpected '}' because no matching opening brace");
      t = env(std::move(t));
      std::string v = t.text;
      if (!v.empty()) {
        expecting_another = v.back() == ',';
        // Keys may also be comma-separated inside one token ("a.org,b.org").
        size_t start = 0;
        while (start <= v.size()) {
          size_t comma = v.find(',', start);
          if (comma == std::string::npos) comma = v.size();
          if (comma > start) {
            Token k = t;
            k.text = v.substr(start, comma - start);
            b.keys.push_back(std::move(k));
          }
          start = comma + 1;
        }
      }
      const Token* next = stream_.peek();
      if (!next) {
        if (expecting_another) failAt(t, "unexpected EOF, expected another address");
        break;
      }
      if (!expecting_another && next->newline && !isOpen(*next)) break;
    }
    if (!braced) {
      if (const Token* p = stream_.peek(); p && isOpen(*p)) {
        stream_.take();
        braced = true;
      }
    }
    if (b.keys.empty()) {
      if (!braced && !stream_.peek()) return false;  // e.g. only a trailing import of nothing
      failAt(stream_.last(), "server block without any key (zone)");
    }
    const std::string& first = b.keys.front().text;
    if (b.keys.size() == 1 && first.size() >= 2 && first.front() == '(' && first.back() == ')') {
      defineSnippet(b.keys.front(), braced);
      return false;
    }
    b.lines = parseLines(braced, 0);
    return true;
  }

  void defineSnippet(const Token& key, bool braced) {
    const std::string name = key.text.substr(1, key.text.size() - 2);
    if (!braced) failAt(key, "snippet " + key.text + " must be followed by '{'");
    if (snippets_.count(name)) {
      failAt(key, "redeclaration of previously declared snippet " + name);
    }
    auto body = std::make_shared<std::vector<Token>>();
    int depth = 1;
    while (true) {
      if (!stream_.peek()) failAt(stream_.last(), "unexpected EOF in snippet " + key.text);
      Token t = stream_.take();
      if (isOpen(t)) ++depth;
      if (isClose(t) && --depth == 0) break;
      body->push_back(std::move(t));
    }
    if (!body->empty()) body->front().newline = true;
    snippets_.emplace(name, std::move(body));
  }

  std::vector<Line> parseLines(bool braced, int depth) {
    std::vector<Line> lines;
    while (true) {
      const Token* p = stream_.peek();
      if (!p) {
        if (braced) failAt(stream_.last(), "unexpected EOF, expected '}'");
        return lines;
      }
      if (isClose(*p)) {
        Token t = stream_.take();
        if (!braced) failAt(t, "Unexpected '}' because no matching opening brace");
        return lines;
      }
      if (isOpen(*p)) failAt(*p, "Unexpected '{' without a directive before it");
      int level = 0;
      Token head = stream_.take(&level);
      if (!head.quoted && head.text == "import") {
        doImport(head, level);
        continue;
      }
      Line line;
      line.head = depth > 0 ? env(std::move(head)) : std::move(head);
      while (const Token* a = stream_.peek()) {
        if (a->newline || isOpen(*a) || isClose(*a)) break;
        line.args.push_back(env(stream_.take()));
      }
      if (const Token* a = stream_.peek(); a && !a->newline && isOpen(*a)) {
        line.open_brace = stream_.take();
        if (depth + 1 >= kMaxBlockNesting) failAt(line.open_brace, "blocks nested too deeply");
        line.has_block = true;
        line.block = parseLines(true, depth + 1);
      }
      lines.push_back(std::move(line));
    }
  }

  const std::string& filename_;
  const ParseOptions& options_;
  TokenStream stream_;
  std::map<std::string, TokenList> snippets_;
  int snippet_expansions_ = 0;
  int file_expansions_ = 0;
  size_t total_tokens_ = 0;
};

}  // namespace

std::vector<RawBlock> parseStructure(std::string_view text, const std::string& filename,
                                     const ParseOptions& options) {
  StructureParser parser(filename, options);
  return parser.run(text);
}

}  // namespace nld::config::detail
