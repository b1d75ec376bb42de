#pragma once
// The HTTP/1.x request-head parser of the /health and /metrics listeners, kept free of sockets
// so that it can be unit-tested and fuzzed (fuzz/http_request). It parses untrusted bytes from
// any pod on the node: it never reads past `data`, allocates nothing, and bounds the head size.
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace nld::observability {

/// The parts of a request head the listeners act on. Views point into the parsed buffer.
struct HttpRequest {
  std::string_view method;  // "GET", "HEAD", ... (a token, case-sensitive as in RFC 9110)
  std::string_view target;  // request-target as sent, e.g. "/metrics?x=1"
  std::string_view path;    // target without the query ("/metrics")
  int version_minor = 1;    // HTTP/1.<minor>
  /// The connection may serve another request after this one: HTTP/1.1 unless "Connection:
  /// close", HTTP/1.0 only with "Connection: keep-alive".
  bool keep_alive = true;
  /// The request announces a body (Content-Length > 0 or any Transfer-Encoding). The listeners
  /// never read bodies: they answer and close the connection.
  bool has_body = false;
};

enum class HttpParse {
  kIncomplete,  // the head has not ended yet and is within the limit: read more
  kComplete,    // *req filled, *consumed = bytes of the head (including its blank line)
  kBad,         // malformed head: answer 400 and close
  kTooLarge,    // head longer than max_head_bytes: answer 431 and close
};

/// Parses one request head at the start of `data` (leading empty lines are skipped, as RFC 9112
/// §2.2 allows). Line ends are CRLF or a bare LF. Rejected as kBad: a request line that is not
/// `token SP target SP HTTP/1.<digit>`, control characters in it, header lines without a colon,
/// whitespace before the colon, obsolete line folding, a non-numeric or conflicting
/// Content-Length. `max_head_bytes` bounds everything up to and including the blank line.
HttpParse parseHttpRequest(std::string_view data, size_t max_head_bytes, HttpRequest* req,
                           size_t* consumed);

}  // namespace nld::observability
