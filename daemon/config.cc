#include "daemon/config.h"

#include "daemon/config_keys.h"

#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
#include <type_traits>

#include <boost/asio/ip/address.hpp>
#include <boost/program_options.hpp>

namespace kaizen::daemon {
namespace {

namespace po = boost::program_options;

po::options_description key_description() {
  po::options_description desc("kaizend keys");
  for (const Key& k : keys()) desc.add_options()(k.name.c_str(), po::value<std::string>(),
                                                 k.help.c_str());
  return desc;
}


void apply(const po::parsed_options& parsed, const std::string& where, Config* out,
           std::vector<std::string>* errors) {
  for (const auto& opt : parsed.options) {
    const Key* k = opt.unregistered ? nullptr : find_key(opt.string_key);
    if (!k) {
      std::string name = opt.string_key.empty() && !opt.original_tokens.empty()
                             ? opt.original_tokens[0]
                             : opt.string_key;
      errors->push_back(where + ": unknown key '" + name + "'");
      continue;
    }
    std::string text = opt.value.empty() ? "" : opt.value.back();
    std::string err = k->set(*out, text);
    if (!err.empty()) errors->push_back(where + ": " + k->name + ": " + err);
  }
}

std::string file_problem(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return "'" + path + "' does not exist";
  if (S_ISDIR(st.st_mode)) return "'" + path + "' is a directory, expected a file";
  if (::access(path.c_str(), R_OK) != 0) return "'" + path + "' is not readable";
  return {};
}

void validate(Config* c, std::vector<std::string>* errors) {
  auto bad = [&](const std::string& key, const std::string& msg) {
    errors->push_back(key + ": " + msg);
  };
  if (!c->listen.empty()) {
    std::string err = parse_host_port(c->listen, &c->listen_host, &c->listen_port);
    if (!err.empty()) bad("listen", err);
  }
  if (!c->socket.empty() && c->socket.size() >= 108)
    bad("socket", "path is longer than 107 bytes (sun_path limit)");
  {
    const std::string& m = c->socket_mode;
    char* end = nullptr;
    unsigned long bits = std::strtoul(m.c_str(), &end, 8);
    if (m.empty() || *end != '\0' || bits > 0777)
      bad("socket_mode", "'" + m + "' is not an octal mode like 0660");
    else
      c->socket_mode_bits = static_cast<uint32_t>(bits);
  }
  if (!c->socket_group.empty() && ::getgrnam(c->socket_group.c_str()) == nullptr)
    bad("socket_group", "group '" + c->socket_group + "' does not exist");
  for (const char* key : {"api_key_file", "system_prompt_file", "company_info_file"}) {
    const std::string& path = find_key(key)->show(*c);
    if (path.empty()) continue;
    std::string err = file_problem(path);
    if (!err.empty()) bad(key, err);
  }
  if (!c->model.empty()) {
    struct stat st;
    if (::stat(c->model.c_str(), &st) != 0) bad("model", "'" + c->model + "' does not exist");
  }
  if (!c->device.empty() && c->device != "cpu" && c->device != "cuda" &&
      c->device.rfind("cuda:", 0) != 0)
    bad("device", "'" + c->device + "' is not cpu, cuda or cuda:N");
  static const char* levels[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
  if (std::find(std::begin(levels), std::end(levels), c->log_level) == std::end(levels))
    bad("log_level", "'" + c->log_level + "' is not one of trace|debug|info|warn|error|critical|off");
  if (!c->api_key.empty() && !c->api_key_file.empty())
    bad("api_key", "set either api_key or api_key_file, not both");

  c->bearer_token = c->api_key;
  if (!c->api_key_file.empty() && file_problem(c->api_key_file).empty()) {
    std::ifstream in(c->api_key_file);
    std::stringstream ss;
    ss << in.rdbuf();
    c->bearer_token = trim(ss.str());
    if (c->bearer_token.empty()) bad("api_key_file", "'" + c->api_key_file + "' is empty");
  }
  if (c->bearer_token.find_first_of(" \t\r\n") != std::string::npos)
    bad("api_key", "the token contains whitespace");
}

}  // namespace

std::string parse_host_port(const std::string& text, std::string* host, uint16_t* port) {
  std::string h, p;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return "'" + text + "' is not host:port (IPv6 as [::1]:8088)";
    h = text.substr(1, close - 1);
    p = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string::npos || text.find(':') != colon)
      return "'" + text + "' is not host:port (IPv6 as [::1]:8088)";
    h = text.substr(0, colon);
    p = text.substr(colon + 1);
  }
  if (h == "localhost") h = "127.0.0.1";
  if (h == "*" || h.empty()) h = "0.0.0.0";
  boost::system::error_code ec;
  boost::asio::ip::make_address(h, ec);
  if (ec) return "'" + h + "' in '" + text + "' is not an IP address (or localhost)";
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(p.c_str(), &end, 10);
  if (p.empty() || *end != '\0' || v < 0 || v > 65535)
    return "port '" + p + "' in '" + text + "' is not 0..65535";
  *host = h;
  *port = static_cast<uint16_t>(v);
  return {};
}

CommandLine parse_command_line(int argc, const char* const* argv) {
  CommandLine cl;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      cl.help = true;
    } else if (a == "--version") {
      cl.version = true;
    } else if (a == "--check-config") {
      cl.check_config = true;
    } else if (a == "--config" || a.rfind("--config=", 0) == 0) {
      if (a == "--config") {
        if (i + 1 >= argc) {
          cl.errors.push_back("--config needs a path");
          continue;
        }
        cl.source.path = argv[++i];
      } else {
        cl.source.path = a.substr(9);
      }
      cl.source.path_given = true;
    } else if (a.rfind("--", 0) == 0) {
      // --key=value or --key value; the key is checked by load_config.
      if (a.find('=') == std::string::npos && i + 1 < argc &&
          std::string(argv[i + 1]).rfind("--", 0) != 0) {
        a += "=" + std::string(argv[++i]);
      }
      cl.source.flags.push_back(a);
    } else {
      cl.errors.push_back("unexpected argument '" + a + "' (keys are --key=value)");
    }
  }
  return cl;
}

void read_config_text(std::istream& in, const std::string& where, Config* out,
                      std::vector<std::string>* errors) {
  const po::options_description desc = key_description();  // `parsed` points to it
  try {
    po::parsed_options parsed = po::parse_config_file(in, desc, /*allow_unregistered=*/true);
    apply(parsed, where, out, errors);
  } catch (const po::error& e) {
    errors->push_back(where + ": " + e.what());
  }
}

std::vector<std::string> load_config(const ConfigSource& source, Config* out) {
  std::vector<std::string> errors;
  *out = Config{};
  out->config_path = source.path;

  std::ifstream in(source.path);
  if (in) {
    read_config_text(in, source.path, out, &errors);
  } else if (source.path_given) {
    errors.push_back("--config: '" + source.path + "' cannot be read");
  }

  // Flags are split by hand: program_options refuses an empty value ("--socket="),
  // which is how a listener is switched off.
  for (const std::string& flag : source.flags) {
    size_t eq = flag.find('=');
    if (flag.rfind("--", 0) != 0 || eq == std::string::npos) {
      errors.push_back("flag " + flag + ": expected --KEY=VALUE");
      continue;
    }
    std::string name = flag.substr(2, eq - 2);
    const Key* k = find_key(name);
    if (!k) {
      errors.push_back("flag: unknown key '" + name + "'");
      continue;
    }
    std::string err = k->set(*out, flag.substr(eq + 1));
    if (!err.empty()) errors.push_back("flag: " + k->name + ": " + err);
  }
  validate(out, &errors);
  return errors;
}

std::string describe_config(const Config& config) {
  std::ostringstream os;
  os << "# effective kaizend config (from " << config.config_path << ", flags, defaults)\n";
  std::string section;
  // Top-level keys first, then [section] blocks, as the INI file would have them.
  for (int pass = 0; pass < 2; ++pass) {
    for (const Key& k : keys()) {
      size_t dot = k.name.find('.');
      if ((dot == std::string::npos) != (pass == 0)) continue;
      std::string name = k.name;
      if (dot != std::string::npos) {
        std::string s = k.name.substr(0, dot);
        if (s != section) os << "\n[" << (section = s) << "]\n";
        name = k.name.substr(dot + 1);
      }
      std::string v = k.show(config);
      if (k.secret && !v.empty()) v = "(set, " + std::to_string(v.size()) + " chars)";
      os << name << " = " << v << "\n";
    }
  }
  return os.str();
}

std::string config_help() {
  std::ostringstream os;
  Config defaults;
  for (const Key& k : keys()) {
    os << "  --" << k.name << "=VALUE\n      " << k.help;
    std::string d = k.show(defaults);
    if (!d.empty()) os << " (default: " << d << ")";
    os << "\n";
  }
  return os.str();
}

}  // namespace kaizen::daemon
