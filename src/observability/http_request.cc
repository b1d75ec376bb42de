#include "observability/http_request.h"

namespace nld::observability {

namespace {

// RFC 9110 §5.6.2 tchar.
bool isTchar(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool isToken(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (!isTchar(c)) return false;
  }
  return true;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    unsigned char x = static_cast<unsigned char>(a[i]);
    unsigned char y = static_cast<unsigned char>(b[i]);
    if (x >= 'A' && x <= 'Z') x = static_cast<unsigned char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<unsigned char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view trimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// request-line = method SP request-target SP HTTP-version (RFC 9112 §3), strictly.
bool parseRequestLine(std::string_view line, HttpRequest* req) {
  const size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return false;
  const size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return false;
  req->method = line.substr(0, sp1);
  req->target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!isToken(req->method) || req->target.empty()) return false;
  for (unsigned char c : req->target) {
    if (c <= 0x20 || c == 0x7f) return false;  // no CTL, no SP: one target only
  }
  if (version.size() != 8 || version.substr(0, 7) != "HTTP/1." || version[7] < '0' ||
      version[7] > '9') {
    return false;
  }
  req->version_minor = version[7] - '0';
  req->path = req->target.substr(0, req->target.find('?'));
  return true;
}

}  // namespace

HttpParse parseHttpRequest(std::string_view data, size_t max_head_bytes, HttpRequest* req,
                           size_t* consumed) {
  const std::string_view window = data.substr(0, max_head_bytes);
  HttpRequest out;
  bool saw_request_line = false;
  bool conn_close = false;
  bool conn_keep_alive = false;
  bool have_length = false;
  uint64_t content_length = 0;
  size_t pos = 0;
  for (;;) {
    const size_t nl = window.find('\n', pos);
    if (nl == std::string_view::npos) {
      return data.size() >= max_head_bytes ? HttpParse::kTooLarge : HttpParse::kIncomplete;
    }
    std::string_view line = window.substr(pos, nl - pos);
    pos = nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!saw_request_line) {
      if (line.empty()) continue;  // leading empty lines before the request line
      if (!parseRequestLine(line, &out)) return HttpParse::kBad;
      saw_request_line = true;
      continue;
    }
    if (line.empty()) break;                                                  // end of the head
    if (line.front() == ' ' || line.front() == '\t') return HttpParse::kBad;  // obs-fold
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) return HttpParse::kBad;
    const std::string_view name = line.substr(0, colon);
    if (!isToken(name)) return HttpParse::kBad;  // also catches "Name :" (space before colon)
    const std::string_view value = trimOws(line.substr(colon + 1));
    for (unsigned char c : value) {
      if ((c < 0x20 && c != '\t') || c == 0x7f) return HttpParse::kBad;
    }
    if (iequals(name, "Connection")) {
      std::string_view rest = value;
      while (!rest.empty()) {
        const size_t comma = rest.find(',');
        const std::string_view tok = trimOws(rest.substr(0, comma));
        if (iequals(tok, "close")) conn_close = true;
        if (iequals(tok, "keep-alive")) conn_keep_alive = true;
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      }
    } else if (iequals(name, "Content-Length")) {
      if (value.empty() || value.size() > 18) return HttpParse::kBad;
      uint64_t n = 0;
      for (char c : value) {
        if (c < '0' || c > '9') return HttpParse::kBad;
        n = n * 10 + static_cast<uint64_t>(c - '0');
      }
      if (have_length && n != content_length) return HttpParse::kBad;  // request smuggling shape
      have_length = true;
      content_length = n;
    } else if (iequals(name, "Transfer-Encoding")) {
      out.has_body = true;
    }
  }
  if (content_length > 0) out.has_body = true;
  out.keep_alive = !conn_close && (out.version_minor >= 1 || conn_keep_alive);
  *req = out;
  *consumed = pos;
  return HttpParse::kComplete;
}

}  // namespace nld::observability
