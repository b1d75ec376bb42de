#include "ovsdb/datum.h"

#include <algorithm>

namespace nld::ovsdb {

namespace {

bool isTagged(const Json& j, const char* tag) {
  return j.is_array() && j.size() == 2 && j[0].is_string() &&
         j[0].get_ref<const std::string&>() == tag;
}

}  // namespace

std::vector<Json> setElements(const Json& datum) {
  if (isTagged(datum, "set")) {
    if (!datum[1].is_array()) return {};
    return std::vector<Json>(datum[1].begin(), datum[1].end());
  }
  if (datum.is_null()) return {};
  if (datum.is_array() && !isTagged(datum, "uuid") && !isTagged(datum, "named-uuid")) return {};
  return {datum};
}

std::vector<std::pair<Json, Json>> mapPairs(const Json& datum) {
  std::vector<std::pair<Json, Json>> out;
  if (!isTagged(datum, "map") || !datum[1].is_array()) return out;
  for (const auto& p : datum[1]) {
    if (p.is_array() && p.size() == 2) out.emplace_back(p[0], p[1]);
  }
  return out;
}

std::vector<std::string> stringSet(const Json& datum) {
  std::vector<std::string> out;
  for (const auto& e : setElements(datum)) {
    if (e.is_string()) out.push_back(e.get<std::string>());
  }
  return out;
}

std::map<std::string, std::string> stringMap(const Json& datum) {
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : mapPairs(datum)) {
    if (k.is_string() && v.is_string()) out[k.get<std::string>()] = v.get<std::string>();
  }
  return out;
}

std::optional<std::string> uuidOf(const Json& atom) {
  if (isTagged(atom, "uuid") && atom[1].is_string()) return atom[1].get<std::string>();
  return std::nullopt;
}

std::vector<std::string> uuidSet(const Json& datum) {
  std::vector<std::string> out;
  for (const auto& e : setElements(datum)) {
    if (auto u = uuidOf(e)) out.push_back(*u);
  }
  return out;
}

std::optional<long long> integerOf(const Json& datum) {
  if (datum.is_number_integer()) return datum.get<long long>();
  auto elems = setElements(datum);
  if (elems.size() == 1 && elems[0].is_number_integer()) return elems[0].get<long long>();
  return std::nullopt;
}

std::optional<std::string> optionalString(const Json& datum) {
  if (datum.is_string()) return datum.get<std::string>();
  auto elems = setElements(datum);
  if (elems.size() == 1 && elems[0].is_string()) return elems[0].get<std::string>();
  return std::nullopt;
}

Json makeSet(std::vector<Json> elements) { return Json::array({"set", Json(std::move(elements))}); }

Json makeStringSet(const std::vector<std::string>& elements) {
  Json arr = Json::array();
  for (const auto& e : elements) arr.push_back(e);
  return Json::array({"set", arr});
}

Json makeStringMap(const std::map<std::string, std::string>& m) {
  Json arr = Json::array();
  for (const auto& [k, v] : m) arr.push_back(Json::array({k, v}));
  return Json::array({"map", arr});
}

Json makeUuid(const std::string& uuid) { return Json::array({"uuid", uuid}); }
Json makeNamedUuid(const std::string& name) { return Json::array({"named-uuid", name}); }

std::optional<Json> applyDiff(const Json& old, const Json& diff, ColumnKind kind) {
  switch (kind) {
    case ColumnKind::kScalar:
      return diff;
    case ColumnKind::kSet: {
      if (diff.is_array() && !isTagged(diff, "set") && !isTagged(diff, "uuid")) return std::nullopt;
      std::vector<Json> result = setElements(old);
      for (const auto& e : setElements(diff)) {
        auto it = std::find(result.begin(), result.end(), e);
        if (it != result.end()) {
          result.erase(it);
        } else {
          result.push_back(e);
        }
      }
      return makeSet(std::move(result));
    }
    case ColumnKind::kMap: {
      if (!isTagged(diff, "map") || !diff[1].is_array()) return std::nullopt;
      auto result = mapPairs(old);
      for (const auto& p : diff[1]) {
        if (!p.is_array() || p.size() != 2) return std::nullopt;
        auto it = std::find_if(result.begin(), result.end(),
                               [&](const auto& kv) { return kv.first == p[0]; });
        if (it == result.end()) {
          result.emplace_back(p[0], p[1]);
        } else if (it->second == p[1]) {
          result.erase(it);
        } else {
          it->second = p[1];
        }
      }
      Json arr = Json::array();
      for (auto& [k, v] : result) arr.push_back(Json::array({k, v}));
      return Json::array({"map", arr});
    }
  }
  return std::nullopt;
}

}  // namespace nld::ovsdb
