#include "plugin/errors.h"

#include <re2/re2.h>

#include <algorithm>
#include <stdexcept>

namespace nld::plugin {
namespace {

// Throws, as ErrorsPlugin's constructor does: settings the Corefile parser already validated.
log::Level levelOf(const std::string& name) {
  if (name == "error") return log::Level::kError;
  if (name == "warning") return log::Level::kWarning;
  if (name == "info") return log::Level::kInfo;
  if (name == "debug") return log::Level::kDebug;
  throw std::runtime_error("plugin/errors: unknown log level '" + name + "'");
}

}  // namespace

ErrorsPlugin::ErrorsPlugin(const config::ErrorsConfig& cfg) {
  for (const auto& c : cfg.consolidate) {
    auto p = std::make_unique<Pattern>();
    p->re = std::make_unique<re2::RE2>(c.pattern, re2::RE2::Quiet);
    if (!p->re->ok()) {
      throw std::runtime_error("plugin/errors: consolidate: invalid regexp '" + c.pattern +
                               "': " + p->re->error());
    }
    p->text = c.pattern;
    p->period = c.period;
    p->period_text = c.period_text;
    p->level = levelOf(c.level);
    patterns_.push_back(std::move(p));
  }
}

ErrorsPlugin::~ErrorsPlugin() = default;

ErrorsPlugin::Pattern* ErrorsPlugin::match(std::string_view error) const {
  const re2::StringPiece text(error.data(), error.size());
  for (const auto& p : patterns_) {
    if (re2::RE2::PartialMatch(text, *p->re)) return p.get();
  }
  return nullptr;
}

}  // namespace nld::plugin
