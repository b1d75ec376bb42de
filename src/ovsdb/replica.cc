#include "ovsdb/replica.h"

namespace nld::ovsdb {

namespace {

const Json& nullJson() {
  static const Json kNull;
  return kNull;
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

const Replica::Row* Replica::row(const std::string& table_name, const std::string& uuid) const {
  const auto& t = table(table_name);
  auto it = t.find(uuid);
  return it == t.end() ? nullptr : &it->second;
}

std::size_t Replica::rowCount() const {
  std::size_t n = 0;
  for (const auto& [name, t] : tables_) n += t.size();
  return n;
}

Result<void> Replica::applyUpdate(const Json& table_updates) {
  if (!table_updates.is_object()) return fail("table-updates is not an object");
  bool changed = false;
  for (auto table_name_it = table_updates.begin(); table_name_it != table_updates.end();
       ++table_name_it) {
    const std::string& table_name = table_name_it.key();
    const Json& rows = table_name_it.value();
    if (!rows.is_object()) return fail("table-update for " + table_name + " is not an object");
    auto& t = tables_[table_name];
    for (auto uuid_it = rows.begin(); uuid_it != rows.end(); ++uuid_it) {
      const std::string& uuid = uuid_it.key();
      const Json& ru = uuid_it.value();
      if (!ru.is_object()) return fail("row-update " + uuid + " is not an object");
      const Json& new_row = column(ru, "new");
      if (new_row.is_null()) {
        changed |= t.erase(uuid) != 0;
        continue;
      }
      if (!new_row.is_object()) return fail("row-update " + uuid + " \"new\" is not an object");
      // "new" holds every monitored column for inserts, only changed ones for modifications.
      auto& row = t[uuid];
      if (!row.is_object()) row = Json::object();
      for (auto col_it = new_row.begin(); col_it != new_row.end(); ++col_it)
        row[col_it.key()] = col_it.value();
      changed = true;
    }
  }
  if (changed) ++seqno_;
  return {};
}

Result<void> Replica::applyUpdate2(const Json& table_updates2, const Schema& schema) {
  if (!table_updates2.is_object()) return fail("table-updates2 is not an object");
  bool changed = false;
  Result<void> result;
  for (auto table_name_it = table_updates2.begin(); table_name_it != table_updates2.end();
       ++table_name_it) {
    const std::string& table_name = table_name_it.key();
    const Json& rows = table_name_it.value();
    if (!rows.is_object()) {
      result = fail("table-update2 for " + table_name + " is not an object");
      break;
    }
    auto& t = tables_[table_name];
    for (auto uuid_it = rows.begin(); uuid_it != rows.end(); ++uuid_it) {
      const std::string& uuid = uuid_it.key();
      const Json& ru = uuid_it.value();
      if (!ru.is_object() || ru.size() != 1) {
        result = fail("row-update2 " + uuid + " must have exactly one member");
        break;
      }
      const auto first = ru.begin();
      const std::string& op = first.key();
      const Json& body = first.value();
      if (op == "delete") {
        changed |= t.erase(uuid) != 0;
      } else if (op == "initial" || op == "insert") {
        if (!body.is_object()) {
          result = fail("row-update2 " + uuid + " row is not an object");
          break;
        }
        t[uuid] = body;
        changed = true;
      } else if (op == "modify") {
        if (!body.is_object()) {
          result = fail("row-update2 " + uuid + " row is not an object");
          break;
        }
        auto& row = t[uuid];
        if (!row.is_object()) row = Json::object();
        for (auto col_it = body.begin(); col_it != body.end(); ++col_it) {
          const std::string& col = col_it.key();
          const Json& diff = col_it.value();
          auto next = applyDiff(column(row, col), diff, schema.kind(table_name, col));
          if (!next) {
            result = fail("bad modify difference for " + table_name + "." + col);
            break;
          }
          row[col] = std::move(*next);
        }
        changed = true;
        if (!result) break;
      } else {
        result = fail("unknown row-update2 member \"" + op + "\"");
        break;
      }
    }
    if (!result) break;
  }
  if (changed) ++seqno_;
  return result;
}

}  // namespace nld::ovsdb
