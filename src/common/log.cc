#include "common/log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace nld::log {
namespace {

// CoreDNS prints levels as INFO, WARNING, ERROR, FATAL, DEBUG.
class CoreDnsLevel final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string_view s;
    switch (msg.level) {
      case spdlog::level::trace:
      case spdlog::level::debug: s = "DEBUG"; break;
      case spdlog::level::info: s = "INFO"; break;
      case spdlog::level::warn: s = "WARNING"; break;
      case spdlog::level::err: s = "ERROR"; break;
      case spdlog::level::critical: s = "FATAL"; break;
      default: s = "INFO"; break;
    }
    dest.append(s.data(), s.data() + s.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<CoreDnsLevel>();
  }
};

}  // namespace

void init(bool quiet) {
  auto logger = std::make_shared<spdlog::logger>(
      "nld", std::make_shared<spdlog::sinks::stdout_sink_mt>());
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<CoreDnsLevel>('*').set_pattern("[%*] %v");
  logger->set_formatter(std::move(formatter));
  logger->set_level(quiet ? spdlog::level::warn : spdlog::level::info);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(std::move(logger));
}

}  // namespace nld::log
