// Command-line flags shared by the benchmarks: `--name value` pairs.
#pragma once

#include <string>

namespace kaizen::bench {

// The value after `--name`, or `def` when the flag is absent.
inline std::string arg(int argc, char** argv, const std::string& name, const std::string& def) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (argv[i] == "--" + name) return argv[i + 1];
  }
  return def;
}

}  // namespace kaizen::bench
