#pragma once
// SHA-256 (FIPS 180-4), used only for the kube-dns ConfigMap version hash (as kube-dns does).
// Hand-written (~80 lines) because the build links no crypto library and adding OpenSSL for one
// change-detection hash is not worth the dependency. Not used on any security boundary.
//
// Thread affinity: none (a value type; one instance per thread).
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace nld::node {

class Sha256 {
 public:
  Sha256();
  void update(std::string_view data);
  /// Finishes and returns the 32-byte digest; the object must not be updated afterwards.
  std::array<uint8_t, 32> finish();
  /// Lower-case hex digest of `data`.
  static std::string hex(std::string_view data);
  static std::string toHex(const std::array<uint8_t, 32>& digest);

 private:
  void block(const uint8_t* p);
  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buf_{};
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

}  // namespace nld::node
