#pragma once
// In-memory replica of monitored OVSDB tables: table → row UUID → row (a JSON object mapping
// column name → <value>), kept up to date from monitor/monitor_cond replies and update/update2
// notifications. Like ovsdb-idl, it exposes a seqno that changes whenever the contents change.
//
// Thread affinity: owned by the connection's thread; not thread-safe.
#include <cstdint>
#include <map>
#include <string>

#include "common/result.h"
#include "ovsdb/datum.h"
#include "ovsdb/schema.h"

namespace nld::ovsdb {

class Replica {
 public:
  using Row = Json;                          ///< JSON object: column → <value>
  using Table = std::map<std::string, Row>;  ///< row UUID → row

  /// Removes every row (before a resync); bumps the seqno.
  void clear();

  /// Applies a <table-updates> object (RFC 7047 §4.1.6, "monitor" reply / "update").
  /// On malformed input returns an error; rows processed before the error stay.
  Result<void> applyUpdate(const Json& table_updates);

  /// Applies a <table-updates2> object (monitor_cond reply / "update2"); `schema` gives the column
  /// kinds needed for "modify" differences.
  Result<void> applyUpdate2(const Json& table_updates2, const Schema& schema);

  /// The rows of a table, or an empty table if nothing was received for it.
  const Table& table(const std::string& name) const;

  /// A row, or nullptr.
  const Row* row(const std::string& table, const std::string& uuid) const;

  /// Changes whenever the replica contents change.
  uint64_t seqno() const { return seqno_; }

  std::size_t rowCount() const;

 private:
  std::map<std::string, Table> tables_;
  uint64_t seqno_ = 0;
};

/// Column of a row, or a null JSON value if the column is absent (default value omitted).
const Json& column(const Replica::Row& row, const std::string& name);

}  // namespace nld::ovsdb
