#include "ovsdb/replica.h"

namespace nld::ovsdb {

namespace {

const Json& nullJson() {
  static const Json kNull;
  return kNull;
}

bool fail(std::string* error, std::string msg) {
  if (error) *error = std::move(msg);
  return false;
}

}  // namespace

const Json& column(const Replica::Row& row, const std::string& name) {
  if (!row.is_object()) return nullJson();
  auto it = row.find(name);
  return it == row.end() ? nullJson() : *it;
}

void Replica::clear() {
  tables_.clear();
  ++seqno_;
}

const Replica::Table& Replica::table(const std::string& name) const {
  static const Table kEmpty;
  auto it = tables_.find(name);
  return it == tables_.end() ? kEmpty : it->second;
}

const Replica::Row* Replica::row(const std::string& tableName, const std::string& uuid) const {
  const auto& t = table(tableName);
  auto it = t.find(uuid);
  return it == t.end() ? nullptr : &it->second;
}

std::size_t Replica::rowCount() const {
  std::size_t n = 0;
  for (const auto& [name, t] : tables_) n += t.size();
  return n;
}

bool Replica::applyUpdate(const Json& tableUpdates, std::string* error) {
  if (!tableUpdates.is_object()) return fail(error, "table-updates is not an object");
  bool changed = false;
  for (auto tableNameIt = tableUpdates.begin(); tableNameIt != tableUpdates.end(); ++tableNameIt) {
    const std::string& tableName = tableNameIt.key();
    const Json& rows = tableNameIt.value();
    if (!rows.is_object()) return fail(error, "table-update for " + tableName + " is not an object");
    auto& t = tables_[tableName];
    for (auto uuidIt = rows.begin(); uuidIt != rows.end(); ++uuidIt) {
      const std::string& uuid = uuidIt.key();
      const Json& ru = uuidIt.value();
      if (!ru.is_object()) return fail(error, "row-update " + uuid + " is not an object");
      const Json& newRow = column(ru, "new");
      if (newRow.is_null()) {
        changed |= t.erase(uuid) != 0;
        continue;
      }
      if (!newRow.is_object()) return fail(error, "row-update " + uuid + " \"new\" is not an object");
      // "new" holds every monitored column for inserts, only changed ones for modifications.
      auto& row = t[uuid];
      if (!row.is_object()) row = Json::object();
      for (auto colIt = newRow.begin(); colIt != newRow.end(); ++colIt) row[colIt.key()] = colIt.value();
      changed = true;
    }
  }
  if (changed) ++seqno_;
  return true;
}

bool Replica::applyUpdate2(const Json& tableUpdates2, const Schema& schema, std::string* error) {
  if (!tableUpdates2.is_object()) return fail(error, "table-updates2 is not an object");
  bool changed = false;
  bool ok = true;
  for (auto tableNameIt = tableUpdates2.begin(); tableNameIt != tableUpdates2.end(); ++tableNameIt) {
    const std::string& tableName = tableNameIt.key();
    const Json& rows = tableNameIt.value();
    if (!rows.is_object()) {
      ok = fail(error, "table-update2 for " + tableName + " is not an object");
      break;
    }
    auto& t = tables_[tableName];
    for (auto uuidIt = rows.begin(); uuidIt != rows.end(); ++uuidIt) {
      const std::string& uuid = uuidIt.key();
      const Json& ru = uuidIt.value();
      if (!ru.is_object() || ru.size() != 1) {
        ok = fail(error, "row-update2 " + uuid + " must have exactly one member");
        break;
      }
      const auto first = ru.begin();
      const std::string& op = first.key();
      const Json& body = first.value();
      if (op == "delete") {
        changed |= t.erase(uuid) != 0;
      } else if (op == "initial" || op == "insert") {
        if (!body.is_object()) {
          ok = fail(error, "row-update2 " + uuid + " row is not an object");
          break;
        }
        t[uuid] = body;
        changed = true;
      } else if (op == "modify") {
        if (!body.is_object()) {
          ok = fail(error, "row-update2 " + uuid + " row is not an object");
          break;
        }
        auto& row = t[uuid];
        if (!row.is_object()) row = Json::object();
        for (auto colIt = body.begin(); colIt != body.end(); ++colIt) {
          const std::string& col = colIt.key();
          const Json& diff = colIt.value();
          auto next = applyDiff(column(row, col), diff, schema.kind(tableName, col));
          if (!next) {
            ok = fail(error, "bad modify difference for " + tableName + "." + col);
            break;
          }
          row[col] = std::move(*next);
        }
        changed = true;
        if (!ok) break;
      } else {
        ok = fail(error, "unknown row-update2 member \"" + op + "\"");
        break;
      }
    }
    if (!ok) break;
  }
  if (changed) ++seqno_;
  return ok;
}

}  // namespace nld::ovsdb
