#include "learning/text/py_json.h"

#include <charconv>
#include <cmath>
#include <stdexcept>

namespace kaizen::text {

namespace {

using ojson = nlohmann::ordered_json;

// json.encoder's encode_basestring (ensure_ascii=False).
void append_quoted(const std::string& s, std::string& out) {
  static const char kHex[] = "0123456789abcdef";
  out += '"';
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xF];
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

void dump(const ojson& v, int indent, int level, std::string& out) {
  switch (v.type()) {
    case ojson::value_t::null:
    case ojson::value_t::discarded:
      out += "null";
      return;
    case ojson::value_t::boolean:
      out += v.get<bool>() ? "true" : "false";
      return;
    case ojson::value_t::number_integer:
      out += std::to_string(v.get<int64_t>());
      return;
    case ojson::value_t::number_unsigned:
      out += std::to_string(v.get<uint64_t>());
      return;
    case ojson::value_t::number_float: {
      const double d = v.get<double>();
      // json.dumps writes the non-finite floats as JavaScript names (allow_nan=True).
      if (std::isnan(d)) {
        out += "NaN";
      } else if (std::isinf(d)) {
        out += d > 0 ? "Infinity" : "-Infinity";
      } else {
        out += py_float_repr(d);
      }
      return;
    }
    case ojson::value_t::string:
      append_quoted(v.get_ref<const std::string&>(), out);
      return;
    case ojson::value_t::binary:
      throw std::invalid_argument("py_json_dumps: a binary value has no JSON form");
    case ojson::value_t::array:
    case ojson::value_t::object:
      break;
  }
  const bool is_object = v.is_object();
  if (v.empty()) {
    out += is_object ? "{}" : "[]";
    return;
  }
  // Python's _make_iterencode: "\n" + indent * level before each item, "," between.
  const std::string newline =
      indent >= 0 ? "\n" + std::string(static_cast<size_t>(indent) * (level + 1), ' ') : "";
  const char* separator = indent >= 0 ? "," : ", ";
  out += is_object ? '{' : '[';
  bool first = true;
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (!first) out += separator;
    first = false;
    out += newline;
    if (is_object) {
      append_quoted(it.key(), out);
      out += ": ";
    }
    dump(*it, indent, level + 1, out);
  }
  if (indent >= 0) out += "\n" + std::string(static_cast<size_t>(indent) * level, ' ');
  out += is_object ? '}' : ']';
}

}  // namespace

std::string py_float_repr(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  // Shortest round-trip digits (what Python's repr picks, David Gay's mode 0), then
  // Python's layout: positional when -4 <= exponent < 16, else d.ddde±XX.
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, x, std::chars_format::scientific);
  const std::string sci(buf, res.ptr);  // "-1.2345e+22"
  const size_t e = sci.find('e');
  std::string sign, digits;
  for (size_t i = 0; i < e; ++i) {
    if (sci[i] == '-') {
      sign = "-";
    } else if (sci[i] != '.') {
      digits += sci[i];
    }
  }
  const int exp10 = std::stoi(sci.substr(e + 1));
  if (exp10 < -4 || exp10 >= 16) {
    std::string out = sign + digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    const int mag = exp10 < 0 ? -exp10 : exp10;
    out += exp10 < 0 ? "e-" : "e+";
    if (mag < 10) out += '0';
    return out + std::to_string(mag);
  }
  const int point = exp10 + 1;  // digits before the decimal point
  const int n = static_cast<int>(digits.size());
  if (point <= 0) return sign + "0." + std::string(static_cast<size_t>(-point), '0') + digits;
  if (point >= n) return sign + digits + std::string(static_cast<size_t>(point - n), '0') + ".0";
  return sign + digits.substr(0, static_cast<size_t>(point)) + "." +
         digits.substr(static_cast<size_t>(point));
}

std::string py_json_dumps(const nlohmann::ordered_json& value, int indent) {
  std::string out;
  dump(value, indent, 0, out);
  return out;
}

}  // namespace kaizen::text
