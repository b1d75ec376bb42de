#include "ovsdb/schema.h"

namespace nld::ovsdb {

namespace {

// RFC 7047 §3.2 <type>: an atomic-type string, or {"key", "value"?, "min"?, "max"?}.
ColumnKind kindOfType(const Json& type) {
  if (!type.is_object()) return ColumnKind::kScalar;
  if (type.contains("value")) return ColumnKind::kMap;
  long long min = 1;
  long long max = 1;
  if (auto it = type.find("min"); it != type.end() && it->is_number_integer())
    min = it->get<long long>();
  if (auto it = type.find("max"); it != type.end()) {
    if (it->is_number_integer()) {
      max = it->get<long long>();
    } else if (it->is_string()) {
      max = -1;  // "unlimited"
    }
  }
  return (min == 1 && max == 1) ? ColumnKind::kScalar : ColumnKind::kSet;
}

}  // namespace

Result<Schema> Schema::fromJson(const Json& schema) {
  if (!schema.is_object() || !schema.contains("tables") || !schema["tables"].is_object()) {
    return fail("schema has no \"tables\" object");
  }
  Schema s;
  if (auto it = schema.find("name"); it != schema.end() && it->is_string())
    s.name_ = it->get<std::string>();
  for (auto table_it = schema["tables"].begin(); table_it != schema["tables"].end(); ++table_it) {
    const std::string& table = table_it.key();
    const Json& def = table_it.value();
    auto& cols = s.tables_[table];
    if (!def.is_object() || !def.contains("columns") || !def["columns"].is_object()) continue;
    for (auto col_it = def["columns"].begin(); col_it != def["columns"].end(); ++col_it) {
      const std::string& col = col_it.key();
      const Json& cdef = col_it.value();
      cols[col] = cdef.is_object() && cdef.contains("type") ? kindOfType(cdef["type"])
                                                            : ColumnKind::kScalar;
    }
  }
  return s;
}

bool Schema::hasColumn(const std::string& table, const std::string& column) const {
  auto t = tables_.find(table);
  return t != tables_.end() && t->second.count(column) != 0;
}

ColumnKind Schema::kind(const std::string& table, const std::string& column) const {
  auto t = tables_.find(table);
  if (t == tables_.end()) return ColumnKind::kScalar;
  auto c = t->second.find(column);
  return c == t->second.end() ? ColumnKind::kScalar : c->second;
}

}  // namespace nld::ovsdb
