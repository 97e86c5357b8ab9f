#include "daemon/serve/params.h"

namespace kaizen::daemon {

using nlohmann::json;

namespace {

// Decimal digits only, at most 18 of them (fits uint64_t); 0 when not.
uint64_t decimal(const std::string& s) {
  if (s.empty() || s.size() > 18 || s.find_first_not_of("0123456789") != std::string::npos) return 0;
  return std::stoull(s);
}

uint64_t non_negative(const json& v, bool* ok) {
  *ok = true;
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0) return static_cast<uint64_t>(v.get<int64_t>());
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (s == "0") return 0;
    if (const uint64_t n = decimal(s)) return n;
  }
  *ok = false;
  return 0;
}

}  // namespace

Outcome<uint64_t> parse_id(const json& v, const std::string& name) {
  bool ok = false;
  const uint64_t id = non_negative(v, &ok);
  if (!ok || id == 0) return Failure::Invalid("give " + name + " as a positive integer id", name);
  return id;
}

Outcome<uint64_t> parse_version(const json& v, const std::string& name) {
  if (v.is_string()) {
    std::string s = v.get<std::string>();
    if (!s.empty() && (s[0] == 'v' || s[0] == 'V')) s = s.substr(1);
    if (const uint64_t n = decimal(s)) return n;
  } else if (v.is_number_integer() && v.get<int64_t>() > 0) {
    return static_cast<uint64_t>(v.get<int64_t>());
  } else if (v.is_number_unsigned() && v.get<uint64_t>() > 0) {
    return v.get<uint64_t>();
  }
  return Failure::Invalid("give " + name + " as an adapter version (e.g. \"v3\")", name);
}

Outcome<storage::PageRequest> parse_page(const json& args) {
  storage::PageRequest p;
  bool ok = true;
  if (args.contains("cursor")) {
    p.cursor = non_negative(args["cursor"], &ok);
    if (!ok) return Failure::Invalid("give cursor as the next_cursor of the previous page", "cursor");
  }
  if (args.contains("limit")) {
    const uint64_t limit = non_negative(args["limit"], &ok);
    if (!ok || limit == 0) return Failure::Invalid("give limit as a positive integer", "limit");
    p.limit = static_cast<size_t>(limit);
  }
  return p;
}

Outcome<bool> parse_flag(const json& args, const std::string& name, bool fallback) {
  if (!args.contains(name)) return fallback;
  const json& v = args[name];
  if (v.is_boolean()) return v.get<bool>();
  if (v == "true" || v == "1") return true;
  if (v == "false" || v == "0") return false;
  return Failure::Invalid("give " + name + " as true or false", name);
}

}  // namespace kaizen::daemon
