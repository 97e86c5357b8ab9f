// Python's json.dumps, byte for byte, for what chat templates print with `tojson`
// (transformers' filter is json.dumps(x, ensure_ascii=False, indent=indent)).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace kaizen::text {

// json.dumps(value, ensure_ascii=False, indent=indent):
//   indent < 0 (None): separators ", " and ": " on one line;
//   indent >= 0: a newline plus `indent` spaces per level, separators "," and ": "
//                (empty containers stay "[]" / "{}").
// Key order is kept; strings keep non-ASCII bytes and escape only '"', '\\', \n \r \t \b \f
// and other control characters below 0x20 (as \u00XX, lowercase hex); floats are Python's
// repr (shortest round-trip digits, "1.0", "1e-05", "1e+16", "-0.0", NaN / Infinity /
// -Infinity); integers are written whole.
// Known difference: an integer outside [-2^63, 2^64) has already become a float when
// nlohmann parsed it, while Python keeps it exact.
// Throws std::invalid_argument for a binary value (no JSON form).
std::string py_json_dumps(const nlohmann::ordered_json& value, int indent = -1);

// Python's repr(float): py_float_repr(0.1) == "0.1", (1e16) == "1e+16", (2.0) == "2.0".
std::string py_float_repr(double x);

}  // namespace kaizen::text
