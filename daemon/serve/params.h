// Typed parsing of operator and API arguments (JSON bodies or query strings, where every
// value arrives as a string). Each parser accepts exactly its own shape, so an adapter
// version cannot pass as a message id, and gives a Failure naming the argument.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "daemon/errors.h"
#include "storage/store.h"

namespace kaizen::daemon {

// A record id: a positive integer, or its decimal text ("42"). Not "v42".
Outcome<uint64_t> parse_id(const nlohmann::json& value, const std::string& name);
// An adapter version: 7, "7" or "v7" (positive).
Outcome<uint64_t> parse_version(const nlohmann::json& value, const std::string& name);
// A page of a listing from args "cursor" (>= 0, default 0 = from the start) and "limit"
// (>= 1, default the store's; the store caps it at 1000).
Outcome<storage::PageRequest> parse_page(const nlohmann::json& args);
// true/false, or "true"/"false"/"1"/"0"; absent = `fallback`.
Outcome<bool> parse_flag(const nlohmann::json& args, const std::string& name, bool fallback);

}  // namespace kaizen::daemon
