// Random JSON schemas from the subset learning/grammar supports (json_schema.h), seeded
// and the same on every platform: the property tests' source of schemas (tests/learning/
// grammar with random walks, tests/learning/generate with the tiny model).
#pragma once

#include <cstdint>
#include <random>
#include <string>

#include <nlohmann/json.hpp>

namespace kaizen::grammar::testing {

// Seeded; rng() % n rather than std distributions, whose output differs between libraries.
class SchemaGen {
  using Json = nlohmann::ordered_json;


 public:
  explicit SchemaGen(uint32_t seed) : rng_(seed) {}
  int pick(int n) { return static_cast<int>(rng_() % static_cast<uint32_t>(n)); }
  bool coin(int percent) { return pick(100) < percent; }

  Json schema(int depth) {
    Json s = body(depth);
    if (s.is_object() && coin(15)) s["description"] = "a field";
    if (s.is_object() && coin(5)) s["title"] = "T";
    return s;
  }

  Json object(int depth) {
    Json s = {{"type", "object"}};
    if (coin(8)) return s;  // any object
    static const char* kNames[] = {
        "name", "age", "a b",  "q\"uote", "back\\slash", "\xC3\xBC", "\xE6\x97\xA5\xE6\x9C\xAC",
        "x1",   "id",  "tags", "",        "nested"};
    Json props = Json::object();
    Json required = Json::array();
    const int n = pick(5);
    for (int i = 0; i < n; ++i) {
      const std::string name = kNames[pick(12)] + std::string(i % 2 ? "" : "_") + std::to_string(i);
      props[name] = schema(depth + 1);
      if (coin(50)) required.push_back(name);
    }
    s["properties"] = props;
    if (!required.empty() || coin(30)) s["required"] = required;
    if (coin(40)) s["additionalProperties"] = coin(50);
    return s;
  }

 private:
  Json string_schema() {
    Json s = {{"type", "string"}};
    if (coin(40)) s["minLength"] = pick(4);
    if (coin(50)) s["maxLength"] = s.value("minLength", 0) + pick(12);
    return s;
  }

  Json body(int depth) {
    const int kinds = depth >= 3 ? 7 : 11;
    switch (pick(kinds)) {
      case 0:
        return string_schema();
      case 1:
        return {{"type", "number"}};
      case 2:
        return {{"type", "integer"}};
      case 3:
        return {{"type", coin(50) ? "boolean" : "null"}};
      case 4: {
        static const Json kValues = Json::parse(
            R"(["red", "green", "re", 1, null, true, {"k": [1, "x"]}, 2.5, "\u00e9t\u00e9", "a\"b", [], -7])");
        Json e = Json::array();
        for (int i = 0, n = 1 + pick(4); i < n; ++i) e.push_back(kValues[pick(12)]);
        return coin(20) ? Json{{"const", e[0]}} : Json{{"enum", e}};
      }
      case 5: {
        Json s = string_schema();
        s["type"] = Json::array({"string", coin(50) ? "null" : "integer"});
        return s;
      }
      case 6:
        return coin(50) ? Json::object() : Json{{"type", "string"}, {"maxLength", 3}};
      case 7:
      case 8:
        return object(depth);
      case 9: {
        Json s = {{"type", "array"}};
        if (!coin(10)) s["items"] = schema(depth + 1);
        if (coin(40)) s["minItems"] = pick(3);
        if (coin(50)) s["maxItems"] = s.value("minItems", 0) + pick(4);
        return s;
      }
      default: {
        Json alts = Json::array();
        for (int i = 0, n = 2 + pick(2); i < n; ++i) alts.push_back(schema(depth + 1));
        return {{"anyOf", alts}};
      }
    }
  }

  std::mt19937 rng_;
};

}  // namespace kaizen::grammar::testing
