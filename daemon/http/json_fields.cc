#include "daemon/http/json_fields.h"

#include <algorithm>

#include <cmath>
#include <limits>

namespace kaizen::daemon {

using json = nlohmann::json;

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

const char* type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    case json::value_t::binary: return "binary";
    case json::value_t::discarded: return "invalid";
    default: return "a number";
  }
}

Error wrong_type(const std::string& param, const char* expected, const json& got) {
  return Error::InvalidRequest(
      "'" + param + "' must be " + expected + ", got " + type_name(got), param);
}

// Reads an optional number field in [lo, hi]. Null counts as absent (OpenAI clients
// send explicit nulls).
std::optional<Error> get_number(const json& body, const char* key, double lo, double hi,
                                std::optional<double>* out) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_number()) return wrong_type(key, "a number", *it);
  double v = it->get<double>();
  if (!(v >= lo && v <= hi) || !std::isfinite(v)) {
    return Error::InvalidRequest("'" + std::string(key) + "' is " + it->dump() +
                                     ", expected a value in [" + json(lo).dump() + ", " +
                                     json(hi).dump() + "]",
                                 key);
  }
  *out = v;
  return std::nullopt;
}

std::optional<Error> get_integer(const json& body, const char* key, int64_t lo, int64_t hi,
                                 std::optional<int64_t>* out, const std::string& param_in) {
  const std::string param = param_in.empty() ? std::string(key) : param_in;
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_number_integer()) return wrong_type(param, "an integer", *it);
  if (it->is_number_unsigned() &&
      it->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    return Error::InvalidRequest("'" + param + "' is too large", param);
  int64_t v = it->get<int64_t>();
  if (v < lo || v > hi) {
    return Error::InvalidRequest("'" + param + "' is " + std::to_string(v) +
                                     ", expected " + std::to_string(lo) + ".." +
                                     std::to_string(hi),
                                 param);
  }
  *out = v;
  return std::nullopt;
}

std::optional<Error> get_bool(const json& obj, const std::string& param, const char* key,
                              std::optional<bool>* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  if (!it->is_boolean()) return wrong_type(param, "a boolean", *it);
  *out = it->get<bool>();
  return std::nullopt;
}

int64_t code_points(const std::string& s) {
  int64_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::optional<Error> get_content(const json& msg, const std::string& param, std::string* out) {
  auto it = msg.find("content");
  if (it == msg.end() || it->is_null()) {
    out->clear();
    return std::nullopt;
  }
  if (it->is_string()) {
    *out = it->get<std::string>();
    return std::nullopt;
  }
  if (!it->is_array()) return wrong_type(param, "a string or an array of text parts", *it);
  out->clear();
  for (size_t i = 0; i < it->size(); ++i) {
    const json& part = (*it)[i];
    std::string p = param + "[" + std::to_string(i) + "]";
    if (!part.is_object()) return wrong_type(p, "an object", part);
    auto type = part.find("type");
    if (type == part.end() || !type->is_string() || *type != "text") {
      return Error::InvalidRequest("'" + p + ".type' must be \"text\" (only text is supported)",
                                   p + ".type");
    }
    auto text = part.find("text");
    if (text == part.end() || !text->is_string())
      return Error::InvalidRequest("'" + p + ".text' must be a string", p + ".text");
    *out += text->get<std::string>();
  }
  return std::nullopt;
}

std::optional<Error> get_string(const json& obj, const std::string& param, const char* key,
                                std::optional<std::string>* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) return wrong_type(param, "a string", *it);
  *out = it->get<std::string>();
  return std::nullopt;
}

size_t json_nesting(std::string_view text) {
  size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

Result<json> parse_body(std::string_view body) {
  // Before parsing: walking or printing a value recurses once per level, so a body of a
  // million '[' must be refused here, not crash a later walk.
  if (json_nesting(body) > kMaxJsonNesting) {
    return Error::InvalidRequest("the body nests JSON deeper than " + std::to_string(kMaxJsonNesting) + " levels");
  }
  json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    // Re-parse with exceptions only to get the position for the message.
    std::string why = "the body is not valid JSON";
    try {
      json ignored = json::parse(body.begin(), body.end());
    } catch (const json::exception& e) {
      why += ": ";
      why += e.what();
    }
    return Error::InvalidRequest(why);
  }
  if (!j.is_object()) return wrong_type("body", "a JSON object", j);
  return j;
}

}  // namespace kaizen::daemon
