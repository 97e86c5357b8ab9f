// Command-line flags shared by the benchmarks: `--name value` pairs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kaizen::bench {

// The value after `--name`, or `def` when the flag is absent.
inline std::string arg(int argc, char** argv, const std::string& name, const std::string& def) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (argv[i] == "--" + name) return argv[i + 1];
  }
  return def;
}

// A comma-separated list of integers after `--name` ("4,8"), or `def`'s.
inline std::vector<int64_t> arg_ints(int argc, char** argv, const std::string& name, const std::string& def) {
  std::vector<int64_t> out;
  for (std::string list = arg(argc, argv, name, def); !list.empty();) {
    const size_t comma = list.find(',');
    out.push_back(std::stoll(list.substr(0, comma)));
    list = comma == std::string::npos ? "" : list.substr(comma + 1);
  }
  return out;
}

}  // namespace kaizen::bench
