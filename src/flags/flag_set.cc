// Go flag-package compatible parser; see flag_set.h for why it is hand-written.
#include "flags/flag_set.h"

#include <functional>
#include <limits>
#include <utility>

namespace nld::flags {

enum class Kind { kString, kBool, kInt, kDuration };

struct FlagSet::Flag {
  std::string name;  // canonical name (the one passed to add*)
  std::string help;
  Kind kind = Kind::kString;
  std::string def_text;                         // Go's DefValue
  std::function<void(const std::string&)> set;  // throws std::invalid_argument(reason)
  bool is_set = false;
};

namespace {

// Go's strconv.ParseBool.
bool parseGoBool(const std::string& s) {
  if (s == "1" || s == "t" || s == "T" || s == "TRUE" || s == "true" || s == "True") return true;
  if (s == "0" || s == "f" || s == "F" || s == "FALSE" || s == "false" || s == "False")
    return false;
  throw std::invalid_argument("parse error");
}

// Go's strconv.ParseInt(s, 0, 64): sign, 0x/0o/0b/0 prefixes, '_' separators after a prefix.
int64_t parseGoInt(const std::string& text) {
  std::string_view s = text;
  if (s.empty()) throw std::invalid_argument("parse error");
  bool neg = false;
  if (s[0] == '+' || s[0] == '-') {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  unsigned base = 10;
  bool prefixed = false;
  if (s.size() >= 2 && s[0] == '0') {
    const char p = static_cast<char>(s[1] | 0x20);
    if (p == 'x') {
      base = 16;
      s.remove_prefix(2);
      prefixed = true;
    } else if (p == 'o') {
      base = 8;
      s.remove_prefix(2);
      prefixed = true;
    } else if (p == 'b') {
      base = 2;
      s.remove_prefix(2);
      prefixed = true;
    } else {
      base = 8;
      s.remove_prefix(1);
      prefixed = true;
    }
  }
  if (s.empty() && base != 8) throw std::invalid_argument("parse error");
  uint64_t v = 0;
  bool out_of_range = false;
  char prev = prefixed ? '_' : '0';  // '_' may follow a base prefix, never two in a row
  for (char c : s) {
    if (c == '_') {
      if (!prefixed || prev == '_') throw std::invalid_argument("parse error");
      prev = c;
      continue;
    }
    unsigned d;
    if (c >= '0' && c <= '9') {
      d = static_cast<unsigned>(c - '0');
    } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') {
      d = static_cast<unsigned>((c | 0x20) - 'a') + 10;
    } else {
      throw std::invalid_argument("parse error");
    }
    if (d >= base) throw std::invalid_argument("parse error");
    if (v > (std::numeric_limits<uint64_t>::max() - d) / base) {
      out_of_range = true;
    } else {
      v = v * base + d;
    }
    prev = c;
  }
  if (prev == '_' && !s.empty()) throw std::invalid_argument("parse error");
  const uint64_t limit = neg ? uint64_t{1} << 63 : (uint64_t{1} << 63) - 1;
  if (out_of_range || v > limit) throw std::invalid_argument("value out of range");
  return neg ? static_cast<int64_t>(~v + 1) : static_cast<int64_t>(v);
}

bool allDigits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace

FlagSet::FlagSet(std::string program) : program_(std::move(program)) {}
FlagSet::~FlagSet() = default;

FlagSet::Flag& FlagSet::define(const std::string& name, std::string help) {
  if (name.empty() || name[0] == '-' || name.find('=') != std::string::npos) {
    throw FlagError("flag " + goQuote(name) + " has an invalid name");
  }
  if (flags_.count(name) != 0) throw FlagError(program_ + " flag redefined: " + name);
  auto flag = std::make_shared<Flag>();
  flag->name = name;
  flag->help = std::move(help);
  flags_[name] = flag;
  return *flag;
}

FlagSet::Flag* FlagSet::find(const std::string& name) const {
  auto it = flags_.find(name);
  return it == flags_.end() ? nullptr : it->second.get();
}

void FlagSet::addString(const std::string& name, std::string* target, std::string def,
                        std::string help) {
  Flag& f = define(name, std::move(help));
  f.kind = Kind::kString;
  f.def_text = def;
  *target = std::move(def);
  f.set = [target](const std::string& v) { *target = v; };
}

void FlagSet::addBool(const std::string& name, bool* target, bool def, std::string help) {
  Flag& f = define(name, std::move(help));
  f.kind = Kind::kBool;
  f.def_text = def ? "true" : "false";
  *target = def;
  f.set = [target](const std::string& v) { *target = parseGoBool(v); };
}

void FlagSet::addInt(const std::string& name, int64_t* target, int64_t def, std::string help) {
  Flag& f = define(name, std::move(help));
  f.kind = Kind::kInt;
  f.def_text = std::to_string(def);
  *target = def;
  f.set = [target](const std::string& v) { *target = parseGoInt(v); };
}

void FlagSet::addDuration(const std::string& name, std::chrono::nanoseconds* target,
                          std::chrono::nanoseconds def, std::string help,
                          std::chrono::nanoseconds bare_int_unit) {
  Flag& f = define(name, std::move(help));
  f.kind = Kind::kDuration;
  f.def_text = formatGoDuration(def);
  *target = def;
  f.set = [target, bare_int_unit](const std::string& v) {
    if (bare_int_unit.count() != 0 && allDigits(v)) {
      int64_t n = 0;
      try {
        n = parseGoInt(v.find_first_not_of('0') == std::string::npos
                           ? "0"
                           : v.substr(v.find_first_not_of('0')));
      } catch (const std::invalid_argument&) {
        throw std::invalid_argument("value out of range");
      }
      if (n > std::numeric_limits<int64_t>::max() / bare_int_unit.count()) {
        throw std::invalid_argument("value out of range");
      }
      *target = bare_int_unit * n;
      return;
    }
    try {
      *target = parseGoDuration(v);
    } catch (const FlagError&) {
      throw std::invalid_argument("parse error");  // Go's durationValue.Set reports errParse
    }
  };
}

void FlagSet::alias(const std::string& alias_name, const std::string& name) {
  auto it = flags_.find(name);
  if (it == flags_.end()) throw FlagError("alias " + alias_name + " for undefined flag " + name);
  if (flags_.count(alias_name) != 0) throw FlagError(program_ + " flag redefined: " + alias_name);
  flags_[alias_name] = it->second;
}

bool FlagSet::has(const std::string& name) const { return find(name) != nullptr; }

bool FlagSet::isSet(const std::string& name) const {
  const Flag* f = find(name);
  return f != nullptr && f->is_set;
}

void FlagSet::setValue(Flag& flag, const std::string& shown_name, const std::string& value,
                       bool has_value) {
  if (flag.kind == Kind::kBool) {
    try {
      flag.set(has_value ? value : "true");
    } catch (const std::invalid_argument& e) {
      throw FlagError("invalid boolean value " + goQuote(value) + " for -" + shown_name + ": " +
                      e.what());
    }
  } else {
    try {
      flag.set(value);
    } catch (const std::invalid_argument& e) {
      throw FlagError("invalid value " + goQuote(value) + " for flag -" + shown_name + ": " +
                      e.what());
    }
  }
  flag.is_set = true;
}

std::vector<std::string> FlagSet::parse(int argc, const char* const* argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i] != nullptr ? argv[i] : "");
  size_t pos = 0;
  while (pos < args.size()) {
    const std::string& s = args[pos];
    if (s.size() < 2 || s[0] != '-') break;  // first non-flag argument (or "-")
    size_t minuses = 1;
    if (s[1] == '-') {
      minuses = 2;
      if (s.size() == 2) {  // "--" terminates the flags
        ++pos;
        break;
      }
    }
    std::string name = s.substr(minuses);
    if (name.empty() || name[0] == '-' || name[0] == '=') {
      throw FlagError("bad flag syntax: " + s);
    }
    ++pos;
    bool has_value = false;
    std::string value;
    const size_t eq = name.find('=', 1);
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      has_value = true;
      name.resize(eq);
    }
    Flag* flag = find(name);
    if (flag == nullptr) {
      if (name == "help" || name == "h") throw HelpRequested();
      throw FlagError("flag provided but not defined: -" + name);
    }
    if (flag->kind != Kind::kBool && !has_value) {
      if (pos < args.size()) {
        value = args[pos++];
        has_value = true;
      } else {
        throw FlagError("flag needs an argument: -" + name);
      }
    }
    setValue(*flag, name, value, has_value);
  }
  return {args.begin() + static_cast<std::ptrdiff_t>(pos), args.end()};
}

std::string FlagSet::usage() const {
  std::string out = "Usage of " + program_ + ":\n";
  for (const auto& [name, flag] : flags_) {  // std::map: sorted like Go's VisitAll
    std::string line = "  -" + name;
    std::string help = flag->help;
    // Go's UnquoteUsage: a `back-quoted` word in the usage names the value.
    std::string value_name;
    const size_t open = help.find('`');
    const size_t close = open == std::string::npos ? std::string::npos : help.find('`', open + 1);
    if (close != std::string::npos) {
      value_name = help.substr(open + 1, close - open - 1);
      help = help.substr(0, open) + value_name + help.substr(close + 1);
    } else {
      switch (flag->kind) {
        case Kind::kString:
          value_name = "string";
          break;
        case Kind::kInt:
          value_name = "int";
          break;
        case Kind::kDuration:
          value_name = "duration";
          break;
        case Kind::kBool:
          break;
      }
    }
    if (!value_name.empty()) line += " " + value_name;
    line += line.size() <= 4 ? "\t" : "\n    \t";
    for (char c : help) {
      if (c == '\n') {
        line += "\n    \t";
      } else {
        line += c;
      }
    }
    const std::string& d = flag->def_text;
    const bool zero = d.empty() || d == "false" || d == "0" || d == "0s";
    if (!zero) {
      line +=
          flag->kind == Kind::kString ? " (default " + goQuote(d) + ")" : " (default " + d + ")";
    }
    out += line + "\n";
  }
  return out;
}

std::chrono::nanoseconds parseGoDuration(std::string_view text) {
  auto d = nld::parseGoDuration(text);
  if (!d) throw FlagError(std::move(d).error().message());
  return *d;
}

}  // namespace nld::flags
