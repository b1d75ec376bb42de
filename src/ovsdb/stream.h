#pragma once
// A byte stream to an OVSDB server: a unix or TCP socket, optionally wrapped in TLS (OpenSSL).
// Non-blocking after open(); the owner polls fd() for readability.
//
// Thread affinity: one connection thread. Never throws; errors are returned as nld::Result.
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"
#include "ovsdb/remote.h"

namespace nld::ovsdb {

/// Files for ssl: remotes (kube-ovn's --ovn-nb-ssl-key/cert/ca, i.e. ovn-nbctl -p/-c/-C).
struct SslOptions {
  std::string private_key;
  std::string certificate;
  std::string ca_cert;
};

class Stream {
 public:
  virtual ~Stream() = default;

  /// Connects (and completes the TLS handshake for ssl:) within timeout_ms.
  /// @return the stream (never null), or why it could not be opened.
  static Result<std::unique_ptr<Stream>> open(const Remote& remote, const SslOptions& ssl,
                                              int timeout_ms);

  /// File descriptor to poll for POLLIN.
  virtual int fd() const = 0;

  /// Reads available bytes. @return the number of bytes read (>0), 0 if nothing is available
  /// now, or an error on EOF or failure.
  virtual Result<std::size_t> read(char* buf, std::size_t len) = 0;

  /// Writes all of data, waiting up to timeout_ms for socket space.
  virtual Result<void> writeAll(std::string_view data, int timeout_ms) = 0;

  /// True if decrypted bytes are buffered inside the stream (TLS) so read() has data without the
  /// fd becoming readable.
  virtual bool hasBufferedData() const { return false; }
};

}  // namespace nld::ovsdb
