// Fuzz target: the HTTP request-head parser of the /health and /metrics listeners
// (observability/http_request.h) on arbitrary bytes, with the listeners' head limit and a small
// one. Checks the parser's contract: results agree with the limit, views stay inside the parsed
// head, a complete head is complete on its own and not before its last byte. Any violation
// aborts so libFuzzer / the corpus replay reports it.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "observability/http_request.h"

namespace {

using nld::observability::HttpParse;
using nld::observability::HttpRequest;
using nld::observability::parseHttpRequest;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "http_request_fuzz: invariant violated: %s\n", what);
    std::abort();
  }
}

bool inside(std::string_view part, std::string_view whole) {
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

void exercise(std::string_view data, size_t limit) {
  HttpRequest req;
  size_t used = 0;
  const HttpParse p = parseHttpRequest(data, limit, &req, &used);
  switch (p) {
    case HttpParse::kIncomplete:
      check(data.size() < limit, "incomplete although the limit is reached");
      break;
    case HttpParse::kTooLarge:
      check(data.size() >= limit, "too large below the limit");
      break;
    case HttpParse::kBad:
      break;
    case HttpParse::kComplete: {
      check(used > 0 && used <= data.size() && used <= limit, "consumed out of range");
      const std::string_view head = data.substr(0, used);
      check(head.back() == '\n', "head does not end with a line end");
      check(!req.method.empty() && inside(req.method, head), "method outside the head");
      check(!req.target.empty() && inside(req.target, head), "target outside the head");
      check(req.target.starts_with(req.path), "path not a prefix of the target");
      check(req.version_minor >= 0 && req.version_minor <= 9, "version out of range");
      // The head alone parses the same; one byte less is not complete.
      HttpRequest again;
      size_t used_again = 0;
      check(parseHttpRequest(head, limit, &again, &used_again) == HttpParse::kComplete &&
                used_again == used && again.keep_alive == req.keep_alive &&
                again.has_body == req.has_body,
            "head alone parses differently");
      const HttpParse shorter =
          parseHttpRequest(head.substr(0, used - 1), limit, &again, &used_again);
      check(shorter == HttpParse::kIncomplete, "complete before its last byte");
      break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  exercise(text, 8192);                             // the listeners' default
  exercise(text, size > 0 ? 1 + data[0] % 64 : 1);  // small limits: the boundary cases
  return 0;
}
