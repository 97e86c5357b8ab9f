#include "learning/grammar/json_schema.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <set>

namespace kaizen::grammar {

namespace {

using Json = nlohmann::ordered_json;

// Annotations, and the containers that $ref points into (compiled when referenced).
const std::set<std::string> kIgnored = {"title",    "description", "$schema", "default", "examples",
                                        "$comment", "strict",      "$defs",   "definitions"};
const std::set<std::string> kKeywords = {
    "type",      "properties", "required", "additionalProperties",
    "items",     "minItems",   "maxItems", "minLength",
    "maxLength", "enum",       "const",    "anyOf", "allOf", "$ref"};
const std::set<std::string> kTypes = {"object",  "string", "number", "integer",
                                      "boolean", "null",   "array"};

[[noreturn]] void fail(const std::string& path, const std::string& message) {
  throw SchemaError(path + ": " + message);
}

std::string quoted(const std::string& s) {
  return "'" + s + "'";
}

// path.name for identifiers, path["any name"] otherwise.
std::string member_path(const std::string& path, const std::string& name) {
  bool ident = !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0]));
  for (unsigned char c : name) ident = ident && (std::isalnum(c) || c == '_');
  if (ident) return path + "." + name;
  try {
    return path + "[" + Json(name).dump() + "]";
  } catch (const Json::exception&) {
    return path + "[?]";
  }
}

std::string dump_or_fail(const Json& value, const std::string& path) {
  try {
    return value.dump();
  } catch (const Json::exception&) {
    fail(path, "a string in the schema is not valid UTF-8");
  }
}

int64_t code_points(const std::string& s) {
  int64_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

bool has_type(const Json& v, const std::string& type) {
  if (type == "string") return v.is_string();
  if (type == "number") return v.is_number();
  if (type == "integer") {
    return v.is_number_integer() || (v.is_number_float() && std::isfinite(v.get<double>()) &&
                                     v.get<double>() == std::floor(v.get<double>()));
  }
  if (type == "boolean") return v.is_boolean();
  if (type == "null") return v.is_null();
  if (type == "object") return v.is_object();
  return v.is_array();
}

constexpr size_t kMaxRefDepth = 32;

class SchemaCompiler {
 public:
  // `root`: the document local $refs point into ("#/$defs/Address").
  SchemaCompiler(JsonRules& json, const Json& root) : json_(json), b_(json.builder()), root_(root) {}

  int32_t compile(const Json& schema, const std::string& path) {
    if (schema.is_boolean()) {
      if (schema.get<bool>()) return json_.any_value();
      fail(path, "the schema false admits no value");
    }
    if (!schema.is_object()) fail(path, "a schema must be an object or a boolean");
    for (const auto& item : schema.items()) {
      if (!kIgnored.count(item.key()) && !kKeywords.count(item.key())) {
        fail(path, "unsupported keyword " + quoted(item.key()));
      }
    }
    if (schema.contains("$ref")) return ref(schema, path);
    if (schema.contains("allOf")) return all_of(schema, path);
    if (schema.contains("anyOf")) return any_of(schema, path);
    const auto [min_len, max_len] = range(schema, "minLength", "maxLength", path);
    const auto [min_items, max_items] = range(schema, "minItems", "maxItems", path);
    if (schema.contains("enum") || schema.contains("const")) {
      return literal_values(schema, min_len, max_len, path);
    }
    std::vector<int32_t> rules;
    for (const std::string& t : types(schema, path)) {
      if (t == "string") rules.push_back(json_.string(min_len, max_len));
      if (t == "number") rules.push_back(json_.number());
      if (t == "integer") rules.push_back(json_.integer());
      if (t == "boolean") rules.push_back(json_.boolean());
      if (t == "null") rules.push_back(json_.null());
      if (t == "array") rules.push_back(array(schema, min_items, max_items, path));
      if (t == "object") rules.push_back(object(schema, path));
    }
    return rules.empty() ? json_.any_value() : alternatives(rules);
  }

 private:
  // A non-negative integer keyword; `def` when absent. Maxima past int32 mean no limit.
  int32_t count(const Json& schema, const char* key, int32_t def, const std::string& path) {
    if (!schema.contains(key)) return def;
    const Json& v = schema[key];
    double n = -1;
    if (v.is_number_unsigned()) {
      n = static_cast<double>(v.get<uint64_t>());
    } else if (v.is_number_integer()) {
      n = static_cast<double>(v.get<int64_t>());
    } else if (v.is_number_float() && v.get<double>() == std::floor(v.get<double>())) {
      n = v.get<double>();
    }
    if (!(n >= 0)) fail(path, quoted(key) + " must be a non-negative integer");
    return n >= Grammar::kUnbounded ? Grammar::kUnbounded : static_cast<int32_t>(n);
  }

  std::pair<int32_t, int32_t> range(const Json& schema, const char* min_key, const char* max_key,
                                    const std::string& path) {
    const int32_t lo = count(schema, min_key, 0, path);
    const int32_t hi = count(schema, max_key, Grammar::kUnbounded, path);
    if (lo > kMaxMinCount) {
      fail(path, quoted(min_key) + " above " + std::to_string(kMaxMinCount) + " is not supported");
    }
    if (lo > hi) {
      fail(path, quoted(min_key) + " (" + std::to_string(lo) + ") is greater than " +
                     quoted(max_key) + " (" + std::to_string(hi) + ")");
    }
    return {lo, hi};
  }

  // The listed types, or those the keywords imply; empty = any value.
  std::vector<std::string> types(const Json& schema, const std::string& path) {
    std::vector<std::string> out;
    if (!schema.contains("type")) {
      auto any = [&](std::initializer_list<const char*> keys) {
        return std::any_of(keys.begin(), keys.end(),
                           [&](const char* k) { return schema.contains(k); });
      };
      if (any({"properties", "required", "additionalProperties"})) out.push_back("object");
      if (any({"items", "minItems", "maxItems"})) out.push_back("array");
      if (any({"minLength", "maxLength"})) out.push_back("string");
      return out;
    }
    const Json& t = schema["type"];
    std::vector<Json> names =
        t.is_array() ? std::vector<Json>(t.begin(), t.end()) : std::vector<Json>{t};
    if (names.empty()) fail(path, "'type' must be a type name or a non-empty list of them");
    for (const Json& name : names) {
      if (!name.is_string()) fail(path, "'type' must be a type name or a non-empty list of them");
      const std::string s = name.get<std::string>();
      if (!kTypes.count(s)) fail(path, "unsupported type " + quoted(s) + " in 'type'");
      if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
    }
    // number admits every integer
    if (std::count(out.begin(), out.end(), "number")) {
      out.erase(std::remove(out.begin(), out.end(), "integer"), out.end());
    }
    return out;
  }

  int32_t alternatives(std::vector<int32_t> rules) {
    std::sort(rules.begin(), rules.end());
    rules.erase(std::unique(rules.begin(), rules.end()), rules.end());
    if (rules.size() == 1) return rules[0];
    const int32_t r = b_.add_rule("anyOf");
    const int32_t end = b_.add_state(r);
    for (int32_t alt : rules) b_.add_call(b_.start(r), alt, end);
    b_.set_final(end);
    return r;
  }

  // Only annotations beside `keyword`.
  void alone(const Json& schema, const char* keyword, const std::string& path) {
    for (const auto& item : schema.items()) {
      if (item.key() != keyword && !kIgnored.count(item.key())) {
        fail(path, quoted(item.key()) + " beside " + quoted(keyword) + " is not supported");
      }
    }
  }

  // A local reference (what pydantic and zod write for nested models): compiled once per
  // target and shared; a reference back into itself (a recursive type) is refused, as is
  // one to another document.
  int32_t ref(const Json& schema, const std::string& path) {
    alone(schema, "$ref", path);
    const Json& r = schema["$ref"];
    if (!r.is_string()) fail(path, "'$ref' must be a string");
    const std::string target = r.get<std::string>();
    if (target.empty() || target[0] != '#') {
      fail(path, "'$ref' " + quoted(target) + ": only references within the schema (#/$defs/...) are supported");
    }
    if (auto done = compiled_.find(target); done != compiled_.end()) return done->second;
    if (!expanding_.insert(target).second) fail(path, "recursive '$ref' " + quoted(target) + " is not supported");
    // A chain of references recurses once per link: bounded, so no schema can exhaust the stack.
    if (expanding_.size() > kMaxRefDepth) {
      fail(path, "'$ref's nested more than " + std::to_string(kMaxRefDepth) + " deep are not supported");
    }
    const Json* resolved = nullptr;
    try {
      const Json::json_pointer pointer(target.substr(1));
      if (root_.contains(pointer)) resolved = &root_.at(pointer);
    } catch (const Json::exception&) {
      fail(path, "'$ref' " + quoted(target) + " is not a JSON pointer");
    }
    if (!resolved) fail(path, "'$ref' " + quoted(target) + " points to nothing in the schema");
    const int32_t rule = compile(*resolved, path + "($ref " + target + ")");
    expanding_.erase(target);
    compiled_[target] = rule;
    return rule;
  }

  // allOf of one schema (pydantic's wrapper for a described $ref field) is that schema.
  int32_t all_of(const Json& schema, const std::string& path) {
    alone(schema, "allOf", path);
    const Json& list = schema["allOf"];
    if (!list.is_array() || list.size() != 1) fail(path, "'allOf' is supported with exactly one schema");
    return compile(list[0], path + ".allOf[0]");
  }

  int32_t any_of(const Json& schema, const std::string& path) {
    for (const auto& item : schema.items()) {
      if (item.key() != "anyOf" && !kIgnored.count(item.key())) {
        fail(path, quoted(item.key()) + " beside 'anyOf' is not supported");
      }
    }
    const Json& list = schema["anyOf"];
    if (!list.is_array() || list.empty()) fail(path, "'anyOf' must be a non-empty list of schemas");
    std::vector<int32_t> rules;
    for (size_t i = 0; i < list.size(); ++i) {
      rules.push_back(compile(list[i], path + ".anyOf[" + std::to_string(i) + "]"));
    }
    return alternatives(rules);
  }

  int32_t literal_values(const Json& schema, int32_t min_len, int32_t max_len,
                         const std::string& path) {
    for (const auto& item : schema.items()) {
      const std::string& k = item.key();
      if (k != "enum" && k != "const" && k != "type" && k != "minLength" && k != "maxLength" &&
          !kIgnored.count(k)) {
        fail(path, quoted(k) + " beside 'enum' or 'const' is not supported");
      }
    }
    std::vector<Json> values;
    if (schema.contains("enum")) {
      const Json& e = schema["enum"];
      if (!e.is_array() || e.empty()) fail(path, "'enum' must be a non-empty list");
      values.assign(e.begin(), e.end());
    }
    if (schema.contains("const")) {
      const Json& c = schema["const"];
      if (schema.contains("enum") && std::find(values.begin(), values.end(), c) == values.end()) {
        fail(path, "'const' is not one of 'enum'");
      }
      values = {c};
    }
    const std::vector<std::string> ts =
        schema.contains("type") ? types(schema, path) : std::vector<std::string>{};
    std::vector<std::string> texts;
    for (const Json& v : values) {
      if (!ts.empty() && std::none_of(ts.begin(), ts.end(),
                                      [&](const std::string& t) { return has_type(v, t); })) {
        continue;
      }
      if (v.is_string()) {
        const int64_t n = code_points(v.get<std::string>());
        if (n < min_len || n > max_len) continue;
      }
      texts.push_back(dump_or_fail(v, path));
    }
    if (texts.empty()) {
      fail(path, "no value of 'enum' or 'const' satisfies 'type', 'minLength' and 'maxLength'");
    }
    return json_.literals(texts, "enum");
  }

  int32_t array(const Json& schema, int32_t min_items, int32_t max_items, const std::string& path) {
    int32_t item;
    if (!schema.contains("items")) {
      item = json_.any_value();
    } else if (schema["items"].is_array()) {
      fail(path, "'items' as a list (tuple validation) is not supported");
    } else {
      item = compile(schema["items"], path + ".items");
    }
    return json_.array(item, min_items, max_items);
  }

  int32_t object(const Json& schema, const std::string& path) {
    bool extra = true;
    if (schema.contains("additionalProperties")) {
      if (!schema["additionalProperties"].is_boolean()) {
        fail(path,
             "'additionalProperties' must be true or false (a schema there is not supported)");
      }
      extra = schema["additionalProperties"].get<bool>();
    }
    std::set<std::string> required;
    if (schema.contains("required")) {
      const Json& r = schema["required"];
      if (!r.is_array()) fail(path, "'required' must be a list of property names");
      for (const Json& name : r) {
        if (!name.is_string()) fail(path, "'required' must be a list of property names");
        required.insert(name.get<std::string>());
      }
    }
    const Json empty = Json::object();
    const Json& props = schema.contains("properties") ? schema["properties"] : empty;
    if (!props.is_object()) fail(path, "'properties' must be an object");
    for (const std::string& name : required) {
      if (!props.contains(name)) {
        fail(path, "'required' names " + quoted(name) + ", which is not in 'properties'");
      }
    }
    if (!schema.contains("properties"))
      return extra ? json_.any_object() : json_.literals({"{}"}, "{}");

    std::vector<std::string> keys;
    std::vector<int32_t> values;
    std::vector<bool> is_required;
    for (const auto& item : props.items()) {
      keys.push_back(dump_or_fail(Json(item.key()), path) + ":");
      values.push_back(compile(item.value(), member_path(path + ".properties", item.key())));
      is_required.push_back(required.count(item.key()) > 0);
    }
    return properties_rule(keys, values, is_required);
  }

  // '{' then the properties in order, each optional one skippable, each required one not;
  // from any point the keys that may come next are those up to the next required one.
  int32_t properties_rule(const std::vector<std::string>& keys, const std::vector<int32_t>& values,
                          const std::vector<bool>& is_required) {
    const int n = static_cast<int>(keys.size());
    std::vector<int> next_required(n + 1, n);
    for (int i = n - 1; i >= 0; --i) next_required[i] = is_required[i] ? i : next_required[i + 1];
    const int32_t r = b_.add_rule("object");
    const int32_t open = b_.add_state(r), end = b_.add_state(r);
    std::vector<int32_t> after(n);
    for (int j = 0; j < n; ++j) after[j] = b_.add_state(r);
    auto add_keys = [&](int32_t s, int first) {
      for (int j = first; j <= std::min(next_required[first], n - 1); ++j) {
        const int32_t key = b_.add_literal(s, keys[j]), space = b_.add_state(r);
        b_.add_byte(key, ' ', space);
        b_.add_call(key, values[j], after[j]);
        b_.add_call(space, values[j], after[j]);
      }
    };
    b_.add_byte(b_.start(r), '{', open);
    json_.with_ws(open, [&](int32_t s) {
      if (next_required[0] == n) b_.add_byte(s, '}', end);
      if (n > 0) add_keys(s, 0);
    });
    for (int j = 0; j < n; ++j) {
      if (j + 1 < n) {
        const int32_t comma = b_.add_state(r);
        b_.add_byte(after[j], ',', comma);
        json_.with_ws(comma, [&](int32_t s) { add_keys(s, j + 1); });
      }
      if (next_required[j + 1] == n) {
        json_.with_ws(after[j], [&](int32_t s) { b_.add_byte(s, '}', end); });
      }
    }
    b_.set_final(end);
    return r;
  }

  JsonRules& json_;
  GrammarBuilder& b_;
  const Json& root_;
  std::map<std::string, int32_t> compiled_;  // $ref target -> its rule
  std::set<std::string> expanding_;          // $ref targets being compiled (cycle check)
};

}  // namespace

int32_t add_schema_rule(JsonRules& json, const nlohmann::ordered_json& schema,
                        const std::string& path) {
  return SchemaCompiler(json, schema).compile(schema, path);
}

std::shared_ptr<const Grammar> json_object_grammar() {
  static const std::shared_ptr<const Grammar> grammar = [] {
    GrammarBuilder b;
    JsonRules json(b);
    const int32_t root = json.any_object();
    return b.build(root);
  }();
  return grammar;
}

std::shared_ptr<const Grammar> json_schema_grammar(const nlohmann::ordered_json& schema,
                                                   const std::string& path_prefix) {
  GrammarBuilder b;
  JsonRules json(b);
  const int32_t root = add_schema_rule(json, schema, path_prefix);
  return b.build(root);
}

std::shared_ptr<const Grammar> json_schema_grammar(const nlohmann::json& schema,
                                                   const std::string& path_prefix) {
  nlohmann::ordered_json ordered;
  try {
    ordered = nlohmann::ordered_json::parse(schema.dump());
  } catch (const nlohmann::json::exception&) {
    fail(path_prefix, "a string in the schema is not valid UTF-8");
  }
  return json_schema_grammar(ordered, path_prefix);
}

}  // namespace kaizen::grammar
