#include "node/config_sync.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "common/log.h"
#include "net/fd.h"
#include "node/sha256.h"

namespace nld::node {

Result<void> writeFileAtomically(const std::string& path, std::string_view text) {
  if (path.empty()) return fail("no output Corefile path (-conf / -corefile is empty)");
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  net::Fd owned(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!owned) return fail("cannot create " + tmp + ": " + std::strerror(errno));
  const int fd = owned.get();
  auto fail_step = [&](const char* what) {
    const int err = errno;
    owned.reset();
    ::unlink(tmp.c_str());
    return fail(std::string(what) + " " + tmp + ": " + std::strerror(err));
  };
  if (::fchmod(fd, 0644) != 0) return fail_step("cannot chmod");  // independent of the umask
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_step("cannot write");
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) return fail_step("cannot fsync");
  if (owned.close() != 0) {  // write-back errors of the file surface here
    const int err = errno;
    ::unlink(tmp.c_str());
    return fail("cannot close " + tmp + ": " + std::strerror(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return fail("cannot rename " + tmp + " to " + path + ": " + std::strerror(err));
  }
  return {};
}

ConfigSync::ConfigSync(ConfigSyncSettings settings, OnWritten on_written, OnError on_error)
    : settings_(std::move(settings)),
      on_written_(std::move(on_written)),
      on_error_(std::move(on_error)) {}

ConfigSync::~ConfigSync() { stop(); }

void ConfigSync::error(const std::string& message) {
  log::error("{}", message);
  if (on_error_) on_error_("configmap");
}

// Name + content of every non-hidden file (through symlinks) of a directory; "" if unreadable.
// Directories here are ConfigMap mounts: a handful of small files, so reading them is cheap.
std::string ConfigSync::dirFingerprint(const std::string& dir) const {
  namespace fs = std::filesystem;
  std::map<std::string, std::string> files;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    std::error_code type_ec;
    if (!fs::is_regular_file(it->path(), type_ec)) continue;
    std::ifstream in(it->path(), std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    files[name] = in ? ss.str() : std::string("\x01unreadable");
  }
  if (ec) return "\x01" + ec.message();
  Sha256 hash;
  for (const auto& [name, content] : files) {
    hash.update(name);
    hash.update(std::string_view("\0", 1));
    hash.update(content);
    hash.update(std::string_view("\0", 1));
  }
  return Sha256::toHex(hash.finish());
}

bool ConfigSync::loadKubeDns(bool force) {
  if (settings_.kube_dns_dir.empty()) return false;
  const std::string fp = dirFingerprint(settings_.kube_dns_dir);
  if (!force && fp == kube_fingerprint_) return false;
  kube_fingerprint_ = fp;
  auto cfg = loadKubeDnsConfigDir(settings_.kube_dns_dir);
  if (!cfg) {
    error(std::string("Failed to load kube-dns config from ") + settings_.kube_dns_dir + ": " +
          cfg.error().message() + " (keeping the last good config, will retry)");
    return false;
  }
  std::lock_guard<std::mutex> lock(mu_);
  const bool changed = !(*cfg == kube_dns_);
  kube_dns_ = std::move(*cfg);
  return changed;
}

bool ConfigSync::renderAndWrite() {
  RenderInput in;
  {
    std::ifstream file(settings_.base_corefile, std::ios::binary);
    if (!file) {
      render_failed_ = true;
      error("Failed to read base Corefile " + settings_.base_corefile + ": " +
            std::strerror(errno));
      return false;
    }
    std::ostringstream ss;
    ss << file.rdbuf();
    in.base = ss.str();
  }
  in.local_ips = settings_.local_ips;
  in.upstream_ip = settings_.upstream_ip;
  in.upstream_env_name = settings_.upstream_env_name;
  in.local_port = settings_.local_port;
  in.kube_dns = currentKubeDns();
  auto rendered = renderCorefile(in);
  if (!rendered) {
    render_failed_ = true;
    error("Failed to render Corefile: " + rendered.error().message());
    return false;
  }
  RenderOutput& out = *rendered;
  for (const auto& w : out.warnings) log::warn("{}", w);
  if (last_written_ && *last_written_ == out.text) {
    render_failed_ = false;
    return false;  // unchanged: no write, no reload
  }
  if (auto written = writeFileAtomically(settings_.output_path, out.text); !written) {
    render_failed_ = true;
    error("Failed to write Corefile: " + written.error().message());
    return false;
  }
  render_failed_ = false;
  last_written_ = out.text;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++writes_;
    log::info(
        "Updated Corefile with {} custom stubdomains and upstream servers {}",
        kube_dns_.stub_domains.size(),
        kube_dns_.upstream_nameservers.empty() ? std::string("/etc/resolv.conf") : [&] {
          std::string s;
          for (const auto& u : kube_dns_.upstream_nameservers) s += (s.empty() ? "" : " ") + u;
          return s;
        }());
  }
  if (on_written_) on_written_(settings_.output_path, out.text);
  return true;
}

bool ConfigSync::initialSync() {
  if (settings_.kube_dns_dir.empty()) {
    log::info("Skipping kube-dns configmap sync as no directory was specified");
  } else {
    loadKubeDns(true);
  }
  base_fingerprint_ =
      dirFingerprint(std::filesystem::path(settings_.base_corefile).parent_path().string());
  return renderAndWrite();
}

bool ConfigSync::pollOnce() {
  const bool kube_changed = loadKubeDns(false);
  const std::string base_fp =
      dirFingerprint(std::filesystem::path(settings_.base_corefile).parent_path().string());
  const bool base_changed = base_fp != base_fingerprint_;
  base_fingerprint_ = base_fp;
  if (!kube_changed && !base_changed && !render_failed_) return false;
  return renderAndWrite();
}

void ConfigSync::start() {
  if (thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    stop_requested_ = false;
  }
  thread_ = std::thread([this] { run(); });
}

void ConfigSync::stop() {
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    stop_requested_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ConfigSync::run() {
  std::unique_lock<std::mutex> lock(stop_mu_);
  while (!stop_requested_) {
    if (stop_cv_.wait_for(lock, settings_.poll_interval, [this] { return stop_requested_; })) break;
    lock.unlock();
    pollOnce();
    lock.lock();
  }
}

KubeDnsConfig ConfigSync::currentKubeDns() const {
  std::lock_guard<std::mutex> lock(mu_);
  return kube_dns_;
}

uint64_t ConfigSync::writes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return writes_;
}

}  // namespace nld::node
