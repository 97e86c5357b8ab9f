// libFuzzer target: kaizend.conf text -> read_config_text (boost::program_options INI
// syntax, then every key's own parser). Bad text must be an error message, never an
// exception or a crash; and every key must print (describe_config, --check-config) a
// value that its parser reads back to the same value, whatever the file set it to.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "daemon/config.h"
#include "daemon/config_keys.h"
#include "tests/fuzz/fuzz_check.h"

namespace d = kaizen::daemon;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  d::Config c;
  std::vector<std::string> errors;
  d::read_config_text(in, "fuzz.conf", &c, &errors);
  for (const std::string& e : errors) FUZZ_CHECK(e.rfind("fuzz.conf: ", 0) == 0);
  for (const d::Key& k : d::keys()) {
    const std::string shown = k.show(c);
    d::Config again;
    const std::string err = k.set(again, shown);
    if (!err.empty() || k.show(again) != shown) {
      std::fprintf(stderr, "key %s: shown as '%s', read back: '%s' (%s)\n", k.name.c_str(),
                   shown.c_str(), k.show(again).c_str(), err.c_str());
      std::abort();
    }
  }
  (void)d::describe_config(c);
  return 0;
}
