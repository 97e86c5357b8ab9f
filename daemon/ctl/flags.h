// Small, strict flag parser for kaizenctl subcommands: `--name value`, `--name=value`,
// boolean `--name`. Unknown flags and missing values are errors (FlagError), so a typo
// never silently falls back to a default.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace kaizen::ctl {

struct FlagError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Flags {
 public:
  // value_flags take a value; bool_flags do not. Names without the leading "--".
  Flags(const std::vector<std::string>& args, std::set<std::string> value_flags,
        std::set<std::string> bool_flags = {})
      : value_flags_(std::move(value_flags)), bool_flags_(std::move(bool_flags)) {
    bool_flags_.insert("json");
    bool_flags_.insert("help");
    for (size_t i = 0; i < args.size(); ++i) {
      const std::string& a = args[i];
      if (a.size() < 3 || a.compare(0, 2, "--") != 0) {
        positional_.push_back(a);
        continue;
      }
      std::string name = a.substr(2), value;
      bool has_value = false;
      if (auto eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
        has_value = true;
      }
      if (bool_flags_.count(name)) {
        if (has_value) throw FlagError("--" + name + " takes no value");
        values_[name] = "1";
      } else if (value_flags_.count(name)) {
        if (!has_value) {
          if (i + 1 >= args.size()) throw FlagError("--" + name + " needs a value");
          value = args[++i];
        }
        values_[name] = value;
      } else {
        throw FlagError("unknown flag --" + name);
      }
    }
  }

  bool has(const std::string& name) const { return values_.count(name) > 0; }
  std::string get(const std::string& name, const std::string& def = "") const {
    auto it = values_.find(name);
    return it == values_.end() ? def : it->second;
  }
  std::string require(const std::string& name) const {
    if (!has(name)) throw FlagError("--" + name + " is required");
    return get(name);
  }
  int64_t get_int(const std::string& name, int64_t def) const {
    if (!has(name)) return def;
    const std::string v = get(name);
    size_t pos = 0;
    int64_t out = 0;
    try {
      out = std::stoll(v, &pos);
    } catch (...) {
      pos = 0;
    }
    if (pos != v.size() || v.empty()) throw FlagError("--" + name + ": not an integer: '" + v + "'");
    return out;
  }
  double get_double(const std::string& name, double def) const {
    if (!has(name)) return def;
    const std::string v = get(name);
    size_t pos = 0;
    double out = 0;
    try {
      out = std::stod(v, &pos);
    } catch (...) {
      pos = 0;
    }
    if (pos != v.size() || v.empty()) throw FlagError("--" + name + ": not a number: '" + v + "'");
    return out;
  }
  bool json() const { return has("json"); }
  bool help() const { return has("help"); }
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::set<std::string> value_flags_, bool_flags_;
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
};

}  // namespace kaizen::ctl
