#pragma once
// A fresh directory under $TMPDIR (or /tmp), removed with its contents when the object goes.
// mkdtemp names it, so tests running concurrently never share one.
#include <filesystem>
#include <string>

namespace nld::test {

class TempDir {
 public:
  /// Creates `<tmp>/<prefix>XXXXXX`; throws std::runtime_error (with errno's text) on failure.
  explicit TempDir(const std::string& prefix = "nld-test-");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  /// path()/name as a string.
  std::string file(const std::string& name) const;
  /// Writes `content` to path()/name (creating parent directories) and returns the full path.
  std::string write(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

}  // namespace nld::test
