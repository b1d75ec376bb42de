#pragma once
// Helpers for OVSDB <value> JSON (RFC 7047 §5.1): atoms, ["set", [...]], ["map", [[k, v]...]],
// ["uuid", "..."], ["named-uuid", "..."], and the update2 "modify" difference semantics
// (ovsdb-server(7) §4.1.14).
//
// Thread affinity: pure functions, no state. They never throw on malformed input: accessors
// return empty results and applyDiff reports failure.
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace nld::ovsdb {

using Json = nlohmann::json;

/// How a column's values are represented and diffed (from the schema's column type).
enum class ColumnKind {
  kScalar,  ///< exactly one value (min 1, max 1, no "value" type): diff = new value
  kSet,     ///< a set (incl. optional, max 1): diff = symmetric difference
  kMap,     ///< a map: diff = keys to add/remove, or new values for changed keys
};

/// Elements of a set datum: a bare atom is a one-element set; ["set", [...]] its elements.
std::vector<Json> setElements(const Json& datum);

/// Pairs of a map datum ["map", [[k, v], ...]]; malformed → empty.
std::vector<std::pair<Json, Json>> mapPairs(const Json& datum);

/// String elements of a set datum (non-string elements are skipped).
std::vector<std::string> stringSet(const Json& datum);

/// String→string map of a map datum (non-string pairs are skipped).
std::map<std::string, std::string> stringMap(const Json& datum);

/// UUID strings of a set of ["uuid", "..."] references.
std::vector<std::string> uuidSet(const Json& datum);

/// The UUID string of ["uuid", "..."], or nullopt.
std::optional<std::string> uuidOf(const Json& atom);

/// Integer of an atom, or nullopt.
std::optional<long long> integerOf(const Json& datum);

/// The string atom of a scalar or one-element set, or nullopt for an empty set / non-string.
std::optional<std::string> optionalString(const Json& datum);

Json makeSet(std::vector<Json> elements);
Json makeStringSet(const std::vector<std::string>& elements);
Json makeStringMap(const std::map<std::string, std::string>& m);
Json makeUuid(const std::string& uuid);
Json makeNamedUuid(const std::string& name);

/// Applies an update2 "modify" difference to a column value.
/// @param old the current value (may be null when the column was omitted as default)
/// @return the new value, or nullopt if `diff` is malformed for `kind`.
std::optional<Json> applyDiff(const Json& old, const Json& diff, ColumnKind kind);

}  // namespace nld::ovsdb
