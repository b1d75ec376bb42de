#pragma once
// The part of an OVSDB database schema (RFC 7047 §3.2) the client needs: which tables and
// columns exist, and each column's kind (scalar, set, map) for update2 diff application.
//
// Thread affinity: immutable after construction; safe to read from any thread.
#include <map>
#include <string>

#include "common/result.h"
#include "ovsdb/datum.h"

namespace nld::ovsdb {

class Schema {
 public:
  Schema() = default;

  /// Parses a <database-schema> object (the result of get_schema).
  /// @return the schema, or an error if the object is not a schema.
  static Result<Schema> fromJson(const Json& schema);

  const std::string& name() const { return name_; }
  bool hasTable(const std::string& table) const { return tables_.count(table) != 0; }
  bool hasColumn(const std::string& table, const std::string& column) const;
  /// Kind of a column; unknown columns are treated as scalars (the diff is the new value).
  ColumnKind kind(const std::string& table, const std::string& column) const;

 private:
  std::string name_;
  std::map<std::string, std::map<std::string, ColumnKind>> tables_;
};

}  // namespace nld::ovsdb
