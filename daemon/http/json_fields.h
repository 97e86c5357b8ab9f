// Reading fields of a request body with errors that name them (`param`), the way every
// OpenAI request parser here does: null counts as absent (OpenAI clients send explicit
// nulls), a wrong type or range is an Error, never an exception.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "daemon/service.h"

namespace kaizen::daemon {

// Serialises without throwing on invalid UTF-8 (an engine bug must not kill a stream).
std::string dump(const nlohmann::json& j);
// "a string", "an object", ... for messages.
const char* type_name(const nlohmann::json& v);
Error wrong_type(const std::string& param, const char* expected, const nlohmann::json& got);
// Deepest nesting of objects and arrays in JSON text (brackets inside strings skipped);
// works on any bytes, valid JSON or not.
size_t json_nesting(std::string_view text);
// Request bodies nest at most this deep (a schema 100 levels deep is already absurd).
inline constexpr size_t kMaxJsonNesting = 128;
// The body as a JSON object, or an Error that says where it stopped parsing (or that it
// nests deeper than kMaxJsonNesting).
Result<nlohmann::json> parse_body(std::string_view body);

// Optional fields of `obj`; `param` names them in errors (defaults to key).
std::optional<Error> get_number(const nlohmann::json& obj, const char* key, double lo, double hi,
                                std::optional<double>* out);
std::optional<Error> get_integer(const nlohmann::json& obj, const char* key, int64_t lo, int64_t hi,
                                 std::optional<int64_t>* out, const std::string& param = "");
std::optional<Error> get_bool(const nlohmann::json& obj, const std::string& param, const char* key,
                              std::optional<bool>* out);
std::optional<Error> get_string(const nlohmann::json& obj, const std::string& param, const char* key,
                                std::optional<std::string>* out);

// Number of Unicode code points in valid UTF-8 (the JSON parser already validated it).
int64_t code_points(const std::string& s);

// content: a string, null, or an array of {"type":"text","text":...} (joined).
std::optional<Error> get_content(const nlohmann::json& msg, const std::string& param, std::string* out);

}  // namespace kaizen::daemon
