#include "observability/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <iterator>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <system_error>

namespace nld::observability {

namespace detail {

/// Registry internals shared by the Registry, its families and every thread that holds a shard
/// (a thread keeps the Core alive until it exits, so folding into `retired` is always safe).
class Core : public std::enable_shared_from_this<Core> {
 public:
  explicit Core(uint64_t registry_id) : id(registry_id) {}

  const uint64_t id;
  /// Guards everything below and all family maps. Recursive so that a scrape-time callback may
  /// read a handle's value() without deadlocking.
  mutable std::recursive_mutex mu;
  std::vector<Shard*> shards;      // live threads' shards
  std::vector<uint64_t> retired;   // per slot: folded values of exited threads
  std::vector<uint8_t> is_double;  // per slot: 1 if the slot holds double bits (histogram sums)
  uint32_t next_slot = 0;

  /// Allocates `n` consecutive slots inside one chunk; the last one holds a double if
  /// `last_is_double`. Caller holds mu. @throws std::length_error when the registry is full.
  uint32_t allocSlotsLocked(uint32_t n, bool last_is_double) {
    if (n == 0 || n > kChunkSlots) {
      throw std::length_error("metrics: series needs too many slots");
    }
    uint32_t base = next_slot;
    if (base % kChunkSlots + n > kChunkSlots) {
      base = (base / kChunkSlots + 1) * kChunkSlots;
    }
    if (static_cast<uint64_t>(base) + n > static_cast<uint64_t>(kChunkSlots) * kMaxChunks) {
      throw std::length_error("metrics: registry is full (too many series)");
    }
    next_slot = base + n;
    retired.resize(next_slot, 0);
    is_double.resize(next_slot, 0);
    if (last_is_double) {
      is_double[base + n - 1] = 1;
    }
    return base;
  }

  uint64_t shardValue(const Shard* shard, uint32_t slot) const {
    const Chunk* chunk = shard->chunks[slot / kChunkSlots].load(std::memory_order_acquire);
    return chunk == nullptr ? 0 : chunk->v[slot % kChunkSlots].load(std::memory_order_relaxed);
  }

  uint64_t readU64Locked(uint32_t slot) const {
    uint64_t total = retired[slot];
    for (const Shard* s : shards) {
      total += shardValue(s, slot);
    }
    return total;
  }

  double readDoubleLocked(uint32_t slot) const {
    double total = std::bit_cast<double>(retired[slot]);
    for (const Shard* s : shards) {
      total += std::bit_cast<double>(shardValue(s, slot));
    }
    return total;
  }

  void registerShard(Shard* shard) {
    std::lock_guard lock(mu);
    shards.push_back(shard);
  }

  /// Folds an exiting thread's shard into `retired` and forgets it.
  void retire(Shard* shard) {
    std::lock_guard lock(mu);
    for (uint32_t slot = 0; slot < next_slot; ++slot) {
      const uint64_t v = shardValue(shard, slot);
      if (v == 0) {
        continue;
      }
      if (is_double[slot] != 0) {
        retired[slot] = std::bit_cast<uint64_t>(std::bit_cast<double>(retired[slot]) +
                                                std::bit_cast<double>(v));
      } else {
        retired[slot] += v;
      }
    }
    shards.erase(std::remove(shards.begin(), shards.end(), shard), shards.end());
  }
};

Shard::~Shard() {
  for (auto& c : chunks) {
    delete c.load(std::memory_order_relaxed);
  }
}

namespace {

/// Owns the calling thread's shards (one per registry used); folds them on thread exit.
struct ThreadShards {
  struct Entry {
    uint64_t registry_id;
    std::shared_ptr<Core> core;
    std::unique_ptr<Shard> shard;
  };
  std::vector<Entry> entries;

  ~ThreadShards() {
    tls_cache = TlsCache{};
    for (auto& e : entries) {
      e.core->retire(e.shard.get());
    }
  }
};

thread_local ThreadShards t_thread_shards;

}  // namespace

Shard& slowShard(Core* core, uint64_t registry_id) {
  for (auto& e : t_thread_shards.entries) {
    if (e.registry_id == registry_id) {
      tls_cache = TlsCache{registry_id, e.shard.get()};
      return *e.shard;
    }
  }
  auto shard = std::make_unique<Shard>();
  Shard* raw = shard.get();
  core->registerShard(raw);
  t_thread_shards.entries.push_back({registry_id, core->shared_from_this(), std::move(shard)});
  tls_cache = TlsCache{registry_id, raw};
  return *raw;
}

Chunk* allocChunk(Shard& shard, uint32_t index) {
  auto* chunk = new Chunk();
  shard.chunks[index].store(chunk, std::memory_order_release);
  return chunk;
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Formatting helpers

std::string formatValue(double v) {
  if (std::isnan(v)) {
    return "NaN";
  }
  if (std::isinf(v)) {
    return v > 0 ? "+Inf" : "-Inf";
  }
  if (v == 0) {
    return std::signbit(v) ? "-0" : "0";
  }
  // Shortest round-trip digits and decimal exponent (value = 0.d1d2... * 10^(exp + 1)). From
  // fmt's "{}" (shortest round-trip, fixed or exponent form), normalised here, rather than
  // std::to_chars(double): libstdc++'s floating_to_chars.o needs libm (fesetround), which would
  // map ~0.4 MiB more into node-cache for this one scrape-time function.
  const std::string shortest = fmt::format("{}", v);
  std::string_view body = shortest;
  std::string sign;
  if (body.front() == '-') {
    sign = "-";
    body.remove_prefix(1);
  }
  const size_t e_pos = body.find('e');
  int exp = 0;
  if (e_pos != std::string_view::npos) {
    const char* p = body.data() + e_pos + 1;
    if (*p == '+') ++p;
    std::from_chars(p, body.data() + body.size(), exp);
    body = body.substr(0, e_pos);
  }
  const size_t dot = body.find('.');
  int point_pos = static_cast<int>(dot == std::string_view::npos ? body.size() : dot);
  std::string digits;
  for (char c : body) {
    if (c == '.') continue;
    if (digits.empty() && c == '0') {
      --point_pos;  // leading zero of "0.00025"
      continue;
    }
    digits += c;
  }
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();  // "64000"
  exp += point_pos - 1;
  // Go 'g' with shortest precision: %e if exp < -4 || exp >= 6 (eprec is forced to 6).
  if (exp < -4 || exp >= 6) {
    // C's %e layout (two-digit minimum exponent) matches Go's: "-1.2345e+06".
    std::string sci = sign;
    sci += digits[0];
    if (digits.size() > 1) {
      sci += '.';
      sci.append(digits, 1);
    }
    fmt::format_to(std::back_inserter(sci), "e{}{:02}", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    return sci;
  }
  std::string out = sign;
  if (exp < 0) {
    out += "0.";
    out.append(static_cast<size_t>(-exp - 1), '0');
    out += digits;
    return out;
  }
  const auto int_len = static_cast<size_t>(exp) + 1;
  if (digits.size() <= int_len) {
    out += digits;
    out.append(int_len - digits.size(), '0');
  } else {
    out += digits.substr(0, int_len);
    out += '.';
    out += digits.substr(int_len);
  }
  return out;
}

std::string escapeLabelValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

namespace {

std::string escapeHelp(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

bool validMetricName(std::string_view n) {
  if (n.empty()) {
    return false;
  }
  for (size_t i = 0; i < n.size(); ++i) {
    const char c = n[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) {
      return false;
    }
  }
  return true;
}

bool validLabelName(std::string_view n) {
  if (n.empty() || n.starts_with("__")) {
    return false;
  }
  for (size_t i = 0; i < n.size(); ++i) {
    const char c = n[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) {
      return false;
    }
  }
  return true;
}

void appendHeader(std::string& out, const std::string& name, const std::string& help,
                  const char* type) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += escapeHelp(help);
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void appendSample(std::string& out, const std::string& name, std::string_view suffix,
                  const std::string& prefix, double value) {
  out += name;
  out += suffix;
  if (!prefix.empty()) {
    out += prefix;
    out += '}';
  }
  out += ' ';
  out += formatValue(value);
  out += '\n';
}

const char* typeName(MetricType t) {
  switch (t) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Handles

uint64_t Counter::value() const {
  if (core_ == nullptr) {
    return 0;
  }
  std::lock_guard lock(core_->mu);
  return core_->readU64Locked(slot_);
}

uint64_t Histogram::count() const {
  const auto c = cumulativeCounts();
  return c.empty() ? 0 : c.back();
}

double Histogram::sum() const {
  if (core_ == nullptr) {
    return 0;
  }
  std::lock_guard lock(core_->mu);
  return core_->readDoubleLocked(base_ + n_bounds_ + 1);
}

std::vector<uint64_t> Histogram::cumulativeCounts() const {
  if (core_ == nullptr) {
    return {};
  }
  std::lock_guard lock(core_->mu);
  std::vector<uint64_t> out;
  uint64_t acc = 0;
  for (uint32_t i = 0; i <= n_bounds_; ++i) {
    acc += core_->readU64Locked(base_ + i);
    out.push_back(acc);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Families

Family::Family(std::shared_ptr<detail::Core> core, uint64_t registry_id, std::string name,
               std::string help, MetricType type, std::vector<std::string> label_names)
    : core_(std::move(core)),
      registry_id_(registry_id),
      name_(std::move(name)),
      help_(std::move(help)),
      type_(type),
      label_names_(std::move(label_names)) {
  for (size_t i = 0; i < label_names_.size(); ++i) {
    sorted_label_index_.push_back(i);
  }
  std::sort(sorted_label_index_.begin(), sorted_label_index_.end(),
            [this](size_t a, size_t b) { return label_names_[a] < label_names_[b]; });
}

std::vector<std::string> Family::seriesKey(const std::vector<std::string>& label_values) const {
  if (label_values.size() != label_names_.size()) {
    throw std::invalid_argument("metric " + name_ + ": expected " +
                                std::to_string(label_names_.size()) + " label values, got " +
                                std::to_string(label_values.size()));
  }
  std::vector<std::string> key;
  key.reserve(label_values.size());
  for (size_t idx : sorted_label_index_) {
    key.push_back(label_values[idx]);
  }
  return key;
}

std::string Family::labelPrefix(const std::vector<std::string>& key) const {
  std::string out;
  for (size_t i = 0; i < key.size(); ++i) {
    out += i == 0 ? '{' : ',';
    out += label_names_[sorted_label_index_[i]];
    out += "=\"";
    out += escapeLabelValue(key[i]);
    out += '"';
  }
  return out;
}

Counter CounterFamily::with(const std::vector<std::string>& label_values) {
  auto key = seriesKey(label_values);
  std::lock_guard lock(core_->mu);
  auto it = series_.find(key);
  if (it == series_.end()) {
    Series s;
    s.slot = core_->allocSlotsLocked(1, false);
    it = series_.emplace(std::move(key), std::move(s)).first;
  } else if (it->second.callback) {
    throw std::invalid_argument("metric " + name_ + ": series is a callback series");
  }
  return Counter(core_.get(), registry_id_, it->second.slot);
}

void CounterFamily::withCallback(const std::vector<std::string>& label_values,
                                 std::function<double()> fn) {
  if (!fn) {
    throw std::invalid_argument("metric " + name_ + ": empty callback");
  }
  auto key = seriesKey(label_values);
  std::lock_guard lock(core_->mu);
  auto it = series_.find(key);
  if (it != series_.end() && !it->second.callback) {
    throw std::invalid_argument("metric " + name_ + ": series already exists as a counter");
  }
  series_[key] = Series{0, std::move(fn)};
}

void CounterFamily::renderLocked(std::string& out) const {
  if (series_.empty()) {
    return;
  }
  appendHeader(out, name_, help_, "counter");
  for (const auto& [key, s] : series_) {
    const double v = s.callback ? s.callback() : static_cast<double>(core_->readU64Locked(s.slot));
    appendSample(out, name_, "", labelPrefix(key), v);
  }
}

Gauge GaugeFamily::with(const std::vector<std::string>& label_values) {
  auto key = seriesKey(label_values);
  std::lock_guard lock(core_->mu);
  auto& cell = series_[key];
  if (!cell) {
    cell = std::make_unique<detail::GaugeCell>();
  } else if (cell->callback) {
    throw std::invalid_argument("metric " + name_ + ": series is a callback series");
  }
  return Gauge(cell.get());
}

void GaugeFamily::withCallback(const std::vector<std::string>& label_values,
                               std::function<double()> fn) {
  if (!fn) {
    throw std::invalid_argument("metric " + name_ + ": empty callback");
  }
  auto key = seriesKey(label_values);
  std::lock_guard lock(core_->mu);
  auto& cell = series_[key];
  if (cell && !cell->callback) {
    throw std::invalid_argument("metric " + name_ + ": series already exists as a gauge");
  }
  if (!cell) {
    cell = std::make_unique<detail::GaugeCell>();
  }
  cell->callback = std::move(fn);
}

void GaugeFamily::renderLocked(std::string& out) const {
  if (series_.empty()) {
    return;
  }
  appendHeader(out, name_, help_, "gauge");
  for (const auto& [key, cell] : series_) {
    const double v = cell->callback ? cell->callback() : cell->value.load();
    appendSample(out, name_, "", labelPrefix(key), v);
  }
}

HistogramFamily::HistogramFamily(std::shared_ptr<detail::Core> core, uint64_t registry_id,
                                 std::string name, std::string help,
                                 std::vector<std::string> label_names, std::vector<double> bounds)
    : Family(std::move(core), registry_id, std::move(name), std::move(help), MetricType::kHistogram,
             std::move(label_names)),
      bounds_(std::move(bounds)) {}

Histogram HistogramFamily::with(const std::vector<std::string>& label_values) {
  auto key = seriesKey(label_values);
  const auto nb = static_cast<uint32_t>(bounds_.size());
  std::lock_guard lock(core_->mu);
  auto it = series_.find(key);
  if (it == series_.end()) {
    // nb bucket slots + the +Inf bucket + the sum (double bits), all in one chunk.
    it = series_.emplace(std::move(key), core_->allocSlotsLocked(nb + 2, true)).first;
  }
  return Histogram(core_.get(), registry_id_, it->second, bounds_.data(), nb);
}

void HistogramFamily::renderLocked(std::string& out) const {
  if (series_.empty()) {
    return;
  }
  appendHeader(out, name_, help_, "histogram");
  const auto nb = static_cast<uint32_t>(bounds_.size());
  for (const auto& [key, base] : series_) {
    const std::string prefix = labelPrefix(key);
    const std::string bucket_prefix = prefix.empty() ? std::string("{") : prefix + ",";
    uint64_t acc = 0;
    for (uint32_t i = 0; i <= nb; ++i) {
      acc += core_->readU64Locked(base + i);
      const std::string le = i < nb ? formatValue(bounds_[i]) : "+Inf";
      out += name_;
      out += "_bucket";
      out += bucket_prefix;
      out += "le=\"";
      out += le;
      out += "\"} ";
      out += formatValue(static_cast<double>(acc));
      out += '\n';
    }
    appendSample(out, name_, "_sum", prefix, core_->readDoubleLocked(base + nb + 1));
    appendSample(out, name_, "_count", prefix, static_cast<double>(acc));
  }
}

// ---------------------------------------------------------------------------------------------
// Registry

namespace {
std::atomic<uint64_t> g_next_registry_id{1};

void checkNames(const std::string& name, const std::vector<std::string>& label_names,
                bool histogram) {
  if (!validMetricName(name)) {
    throw std::invalid_argument("invalid metric name \"" + name + "\"");
  }
  for (size_t i = 0; i < label_names.size(); ++i) {
    const auto& l = label_names[i];
    if (!validLabelName(l) || (histogram && l == "le")) {
      throw std::invalid_argument("metric " + name + ": invalid label name \"" + l + "\"");
    }
    for (size_t j = 0; j < i; ++j) {
      if (label_names[j] == l) {
        throw std::invalid_argument("metric " + name + ": duplicate label name \"" + l + "\"");
      }
    }
  }
}
}  // namespace

Registry::Registry()
    : core_(std::make_shared<detail::Core>(g_next_registry_id.fetch_add(1))), id_(core_->id) {}

Registry::~Registry() = default;

Family* Registry::findLocked(const std::string& name, MetricType type,
                             const std::vector<std::string>& label_names) const {
  auto it = families_.find(name);
  if (it == families_.end()) {
    return nullptr;
  }
  Family* f = it->second.get();
  if (f->type() != type || f->labelNames() != label_names) {
    throw std::invalid_argument("metric " + name + " already registered as a " +
                                typeName(f->type()) + " with other labels or type");
  }
  return f;
}

CounterFamily& Registry::counter(const std::string& name, const std::string& help,
                                 const std::vector<std::string>& label_names) {
  checkNames(name, label_names, false);
  std::lock_guard lock(core_->mu);
  if (Family* f = findLocked(name, MetricType::kCounter, label_names)) {
    return static_cast<CounterFamily&>(*f);
  }
  auto* f = new CounterFamily(core_, id_, name, help, MetricType::kCounter, label_names);
  families_.emplace(name, std::unique_ptr<Family>(f));
  return *f;
}

GaugeFamily& Registry::gauge(const std::string& name, const std::string& help,
                             const std::vector<std::string>& label_names) {
  checkNames(name, label_names, false);
  std::lock_guard lock(core_->mu);
  if (Family* f = findLocked(name, MetricType::kGauge, label_names)) {
    return static_cast<GaugeFamily&>(*f);
  }
  auto* f = new GaugeFamily(core_, id_, name, help, MetricType::kGauge, label_names);
  families_.emplace(name, std::unique_ptr<Family>(f));
  return *f;
}

HistogramFamily& Registry::histogram(const std::string& name, const std::string& help,
                                     const std::vector<std::string>& label_names,
                                     const std::vector<double>& bounds) {
  checkNames(name, label_names, true);
  std::vector<double> b = bounds;
  if (!b.empty() && std::isinf(b.back()) && b.back() > 0) {
    b.pop_back();
  }
  for (size_t i = 0; i < b.size(); ++i) {
    if (!std::isfinite(b[i]) || (i > 0 && !(b[i - 1] < b[i]))) {
      throw std::invalid_argument("metric " + name +
                                  ": bucket bounds must be finite and strictly increasing");
    }
  }
  if (b.size() + 2 > detail::kChunkSlots) {
    throw std::invalid_argument("metric " + name + ": too many buckets");
  }
  std::lock_guard lock(core_->mu);
  if (Family* f = findLocked(name, MetricType::kHistogram, label_names)) {
    auto& h = static_cast<HistogramFamily&>(*f);
    if (h.bounds() != b) {
      throw std::invalid_argument("metric " + name + " already registered with other buckets");
    }
    return h;
  }
  auto* f = new HistogramFamily(core_, id_, name, help, label_names, std::move(b));
  families_.emplace(name, std::unique_ptr<Family>(f));
  return *f;
}

std::string Registry::render() const {
  std::string out;
  std::lock_guard lock(core_->mu);
  for (const auto& [name, family] : families_) {  // std::map: sorted by name
    family->renderLocked(out);
  }
  return out;
}

Registry& defaultRegistry() {
  // Leaked on purpose: threads exiting during static destruction may still fold into it.
  static Registry* registry = new Registry();
  return *registry;
}

}  // namespace nld::observability
