#pragma once
// Test support: captures what the process writes to stdout (fd 1), e.g. nld::log lines.
#include <unistd.h>

#include <cstdio>
#include <string>

#include "net/fd.h"

namespace nld::test {

// Redirects fd 1 to a temporary file for the lifetime of the object; text() returns what was
// written.
class CaptureStdout {
 public:
  CaptureStdout() {
    std::fflush(stdout);
    file_ = std::tmpfile();
    saved_.reset(::dup(1));
    ::dup2(::fileno(file_), 1);
  }
  ~CaptureStdout() {
    restore();
    if (file_) std::fclose(file_);
  }
  /// What was written so far, while capturing goes on (pread: the shared file offset that
  /// stdout writes at is not moved).
  std::string peek() {
    std::fflush(stdout);
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::pread(::fileno(file_), buf, sizeof(buf), static_cast<off_t>(out.size()))) > 0) {
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }
  std::string text() {
    restore();
    std::string out;
    std::rewind(file_);
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), file_)) > 0) out.append(buf, n);
    return out;
  }

 private:
  void restore() {
    if (!saved_) return;
    std::fflush(stdout);
    ::dup2(saved_.get(), 1);
    saved_.reset();
  }
  std::FILE* file_ = nullptr;
  net::Fd saved_;  ///< the real stdout while capturing
};

}  // namespace nld::test
