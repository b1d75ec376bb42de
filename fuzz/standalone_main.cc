// Replays a fuzz corpus without libFuzzer: every regular file under the given paths (files or
// directories, recursively) is passed once to LLVMFuzzerTestOneInput. A crash, sanitizer report
// or abort fails the ctest that runs this binary.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

int runFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<char> buf((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Copy into an exactly-sized heap block so ASan catches reads past the end.
  std::vector<uint8_t> exact(buf.begin(), buf.end());
  LLVMFuzzerTestOneInput(exact.empty() ? nullptr : exact.data(), exact.size());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  int files = 0;
  for (int i = 1; i < argc; ++i) {
    std::filesystem::path root(argv[i]);
    if (std::filesystem::is_directory(root)) {
      for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
        if (e.is_regular_file()) files += runFile(e.path());
      }
    } else if (std::filesystem::is_regular_file(root)) {
      files += runFile(root);
    } else {
      std::fprintf(stderr, "no such corpus path: %s\n", argv[i]);
      return 2;
    }
  }
  if (files == 0) {
    std::fprintf(stderr, "empty corpus: nothing was replayed\n");
    return 2;
  }
  std::printf("replayed %d corpus files\n", files);
  return 0;
}
