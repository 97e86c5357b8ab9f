// Human-readable output of the online commands (their default; --json prints the
// daemon's JSON instead): times, scalars, adapter versions, tables, key: value fields.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace kaizen::ctl {

// Epoch milliseconds as local "YYYY-MM-DD HH:MM"; "-" for 0, negative or non-numbers.
std::string when(const nlohmann::json& ms);

// A JSON value as one cell: strings unquoted, null "-", floats to 4 significant digits,
// anything else as compact JSON.
std::string scalar(const nlohmann::json& v);

// An adapter version number as "v7"; "base" for 0 (no adapter) or a non-number.
std::string version_name(const nlohmann::json& v);

// One line, at most n characters (UTF-8 safe: never cuts inside a sequence).
std::string clip(std::string s, size_t n);

// A text table: columns padded to their widest cell (counting UTF-8 code points).
class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  size_t size() const { return rows_.size() - 1; }  // rows, not counting the header
  void print() const;                               // to stdout

 private:
  std::vector<std::vector<std::string>> rows_;
};

// key: value lines for an object; nested objects become "key.sub"; *_ms epoch values
// print as times.
void print_fields(const nlohmann::json& j, const std::string& prefix = "");

// The gate's checks of a run ({"checks": [...]}, see storage::Run::gate) as a table, with
// the config key that moves each threshold; nothing when the run was not validated.
void print_gate(const nlohmann::json& gate);

// A metrics object as "k=v k=v" on one line; "" for a non-object.
std::string metrics_text(const nlohmann::json& m);

// Training runs (storage::Run JSON) as a table: id, state, trigger, examples, adapter,
// start, seconds, verdict.
void print_runs_table(const nlohmann::json& runs);

}  // namespace kaizen::ctl
