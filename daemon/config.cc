#include "daemon/config.h"

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

// One config key: how to set it from text and how to show it.
struct Key {
  std::string name;
  std::string help;
  // Parses `text` into the config; returns an error message (without the key name).
  std::function<std::string(Config&, const std::string& text)> set;
  std::function<std::string(const Config&)> show;
  bool secret = false;
};

std::string trim(std::string s) {
  const char* ws = " \t\r\n";
  s.erase(s.find_last_not_of(ws) + 1);
  s.erase(0, s.find_first_not_of(ws));
  return s;
}

// Parsers per value type.
// Integers; keys ending in "_bytes" also take K/KiB/M/MiB/G/GiB suffixes (binary).
std::string parse_value(const std::string& key, const std::string& text, int64_t* out) {
  std::string t = trim(text);
  if (t.empty()) return "is empty, expected an integer";
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(t.c_str(), &end, 10);
  if (end == t.c_str() || errno == ERANGE) return "'" + text + "' is not an integer";
  std::string suffix = trim(end);
  int64_t mult = 1;
  const bool bytes = key.size() > 6 && key.compare(key.size() - 6, 6, "_bytes") == 0;
  if (!suffix.empty()) {
    std::string s = suffix;
    std::transform(s.begin(), s.end(), s.begin(), ::tolower);
    if (s == "k" || s == "kib") mult = int64_t{1} << 10;
    else if (s == "m" || s == "mib") mult = int64_t{1} << 20;
    else if (s == "g" || s == "gib") mult = int64_t{1} << 30;
    else return "'" + text + "' is not an integer";
    if (!bytes) return "'" + text + "' is not an integer (size suffixes only on *_bytes keys)";
  }
  if (v > INT64_MAX / mult || v < INT64_MIN / mult) return "'" + text + "' is out of range";
  *out = v * mult;
  return {};
}

[[maybe_unused]] std::string parse_value(const std::string&, const std::string& text, double* out) {
  std::string t = trim(text);
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(t.c_str(), &end);
  if (t.empty() || *end != '\0' || errno == ERANGE || !std::isfinite(v))
    return "'" + text + "' is not a number";
  *out = v;
  return {};
}

[[maybe_unused]] std::string parse_value(const std::string&, const std::string& text, bool* out) {
  std::string t = trim(text);
  std::transform(t.begin(), t.end(), t.begin(), ::tolower);
  if (t == "true" || t == "1" || t == "yes" || t == "on") *out = true;
  else if (t == "false" || t == "0" || t == "no" || t == "off") *out = false;
  else return "'" + text + "' is not a boolean (true/false)";
  return {};
}

std::string parse_value(const std::string&, const std::string& text, std::string* out) {
  *out = trim(text);
  return {};
}

// Comma-separated list; empty text = empty list.
std::string parse_value(const std::string&, const std::string& text,
                        std::vector<std::string>* out) {
  out->clear();
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    item = trim(item);
    if (!item.empty()) out->push_back(item);
  }
  return {};
}

std::string show_value(int64_t v) { return std::to_string(v); }
[[maybe_unused]] std::string show_value(bool v) { return v ? "true" : "false"; }
std::string show_value(const std::string& v) { return v; }
[[maybe_unused]] std::string show_value(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}
std::string show_value(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
  return s;
}

// field: a lambda Config& -> T&. For numbers, [lo, hi] is the accepted range.
template <class F>
Key make_key(const char* name, F field, const char* help, double lo = -1e300,
             double hi = 1e300) {
  using T = std::remove_reference_t<decltype(field(std::declval<Config&>()))>;
  Key k;
  k.name = name;
  k.help = help;
  k.set = [field, lo, hi, name = std::string(name)](Config& c,
                                                    const std::string& text) -> std::string {
    T v{};
    std::string err = parse_value(name, text, &v);
    if (!err.empty()) return err;
    if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
      if (static_cast<double>(v) < lo || static_cast<double>(v) > hi) {
        std::ostringstream os;
        os << "'" << trim(text) << "' is out of range [" << lo << ", " << hi << "]";
        return os.str();
      }
    }
    field(c) = v;
    return {};
  };
  k.show = [field](const Config& c) { return show_value(field(const_cast<Config&>(c))); };
  return k;
}

#define KAIZEN_KEY(name, field, ...) \
  make_key(name, [](Config& c) -> auto& { return c.field; }, __VA_ARGS__)

// THE key table. Keep it in the order --check-config should print.
const std::vector<Key>& keys() {
  static const std::vector<Key> table = [] {
    std::vector<Key> t = {
        KAIZEN_KEY("model", model, "Hugging Face model directory"),
        KAIZEN_KEY("state_dir", state_dir, "RocksDB and adapters"),
        KAIZEN_KEY("socket", socket, "Unix socket path (admin + chat); empty = off"),
        KAIZEN_KEY("listen", listen, "TCP host:port for chat; empty = off"),
        KAIZEN_KEY("api_key", api_key, "bearer token for TCP (prefer api_key_file)"),
        KAIZEN_KEY("api_key_file", api_key_file, "file holding the bearer token for TCP"),
        KAIZEN_KEY("device", device, "cpu, cuda or cuda:N; empty = cuda if available"),
        KAIZEN_KEY("threads", threads, "CPU threads for tensor work; 0 = all cores", 0, 4096),
        KAIZEN_KEY("mmap_weights", mmap_weights,
                   "CPU weights alias the model file (less memory) instead of a huge-page copy (faster)"),
        KAIZEN_KEY("decode_batch", decode_batch,
                   "chats decoded together in one batched forward; 1 = one per forward", 1, 1024),
        KAIZEN_KEY("prefill_chunk", prefill_chunk,
                   "prompt tokens prefilled per engine turn between decode steps; 0 = whole prompts", 0,
                   1 << 20),
        KAIZEN_KEY("conversation_cache_mb", conversation_cache_mb,
                   "MiB of finished chats' KV kept so their next turn prefills only what is new; 0 = off", 0,
                   1 << 24),
        KAIZEN_KEY("io_threads", io_threads, "HTTP I/O threads", 1, 64),
        KAIZEN_KEY("socket_group", socket_group, "group owning the Unix socket"),
        KAIZEN_KEY("socket_mode", socket_mode, "octal mode of the Unix socket"),
        KAIZEN_KEY("allowed_hosts", allowed_hosts,
                   "comma-separated Host names accepted on TCP (port optional)"),
        KAIZEN_KEY("log_level", log_level, "trace|debug|info|warn|error|critical|off"),
        KAIZEN_KEY("system_prompt", system_prompt, "system message prepended to chats"),
        KAIZEN_KEY("system_prompt_file", system_prompt_file, "file with the system message"),
        KAIZEN_KEY("company_info_file", company_info_file, "file with company facts"),
        KAIZEN_KEY("agent_name", agent_name, "the assistant's name"),
        KAIZEN_KEY("agent_creator", agent_creator, "who made the assistant"),
        KAIZEN_KEY("limits.max_header_bytes", limits.max_header_bytes,
                   "request header size; over -> 431", 256, 1 << 20),
        KAIZEN_KEY("limits.max_body_bytes", limits.max_body_bytes,
                   "request body size; over -> 413", 1024, int64_t{1} << 30),
        KAIZEN_KEY("limits.max_prompt_chars", limits.max_prompt_chars,
                   "characters in all messages of a chat", 1, 1e9),
        KAIZEN_KEY("limits.max_messages", limits.max_messages, "messages per chat", 1, 1e6),
        KAIZEN_KEY("limits.max_tokens", limits.max_tokens, "cap on max_tokens", 1, 1e7),
        KAIZEN_KEY("limits.default_max_tokens", limits.default_max_tokens,
                   "max_tokens when the request gives none", 1, 1e7),
        KAIZEN_KEY("limits.max_active_chats", limits.max_active_chats,
                   "chats handed to the engine at once", 1, 1e5),
        KAIZEN_KEY("limits.max_queued_chats", limits.max_queued_chats,
                   "chats waiting for the engine; over -> 429", 0, 1e6),
        KAIZEN_KEY("limits.retry_after_s", limits.retry_after_s, "Retry-After on 429", 1, 3600),
        KAIZEN_KEY("limits.max_connections", limits.max_connections,
                   "open connections; over -> 503 and close", 1, 1e6),
        KAIZEN_KEY("limits.header_timeout_s", limits.header_timeout_s,
                   "seconds to receive a request header", 1, 3600),
        KAIZEN_KEY("limits.idle_timeout_s", limits.idle_timeout_s,
                   "seconds a keep-alive connection may sit idle", 1, 86400),
        KAIZEN_KEY("limits.body_timeout_s", limits.body_timeout_s,
                   "seconds to receive a request body", 1, 3600),
        KAIZEN_KEY("limits.write_timeout_s", limits.write_timeout_s,
                   "seconds per response write", 1, 3600),
        KAIZEN_KEY("limits.drain_timeout_s", limits.drain_timeout_s,
                   "seconds SIGTERM waits for in-flight requests", 0, 3600),
        KAIZEN_KEY("train.enabled", train.enabled, "run the continual-learning thread"),
        KAIZEN_KEY("train.min_new_examples", train.min_new_examples,
                   "new approved examples that start a training run; 0 = off", 0, 1e9),
        KAIZEN_KEY("train.interval_s", train.interval_s,
                   "also train this often when examples are new; 0 = off", 0, 1e9),
        KAIZEN_KEY("train.replay_ratio", train.replay_ratio,
                   "replay examples mixed in per new example", 0, 100),
        KAIZEN_KEY("train.warm_start", train.warm_start,
                   "start from the active adapter (false: a fresh LoRA)"),
        KAIZEN_KEY("train.keep_versions", train.keep_versions,
                   "unpinned inactive adapter versions kept on disk", 0, 1e6),
        KAIZEN_KEY("train.retain_holdout", train.retain_holdout,
                   "replay examples held out to measure retention", 0, 1e6),
        KAIZEN_KEY("train.exact_match_max", train.exact_match_max,
                   "new examples checked by greedy exact match; 0 = skip", 0, 1e6),
        KAIZEN_KEY("train.epochs", train.epochs, "epochs per run; 0 = recipe", 0, 1e6),
        KAIZEN_KEY("train.max_steps", train.max_steps, "optimizer steps cap; 0 = none", 0, 1e9),
        KAIZEN_KEY("train.lr", train.lr, "peak learning rate; 0 = recipe", 0, 10),
        KAIZEN_KEY("train.rank", train.rank, "LoRA rank of a fresh adapter; 0 = recipe", 0, 4096),
        KAIZEN_KEY("train.seed", train.seed, "seed for LoRA init, batches, replay", 0, 1e18),
        KAIZEN_KEY("train.with_system_prompt", train.with_system_prompt,
                   "train with the configured system message, as served"),
        KAIZEN_KEY("train.max_yield_ms", train.max_yield_ms,
                   "per step, longest wait while chats are waiting", 0, 600000),
        KAIZEN_KEY("train.publish_pause_ms", train.publish_pause_ms,
                   "test hook: pause before recording a written adapter", 0, 600000),
        KAIZEN_KEY("train.trusted_authors", train.trusted_authors,
                   "comma-separated feedback users approved without review"),
        KAIZEN_KEY("train.max_per_author", train.max_per_author,
                   "new examples one author may add to a run; 0 = no limit", 0, 1e9),
        KAIZEN_KEY("gate.learn_min", gate.learn_min,
                   "answer-token accuracy required on new examples", 0, 1),
        KAIZEN_KEY("gate.learn_exact_min", gate.learn_exact_min,
                   "greedy exact-match rate required on new examples", 0, 1),
        KAIZEN_KEY("gate.retain_max_drop", gate.retain_max_drop,
                   "accuracy drop allowed on held-out replay examples", 0, 1),
        KAIZEN_KEY("gate.canary_max_kl", gate.canary_max_kl,
                   "KL(base || candidate) allowed on the base's answers to general prompts, nats; "
                   "0 = the model's default (1; the random demo model: see README)", 0, 1e9),
        KAIZEN_KEY("gate.canary_max_leak", gate.canary_max_leak,
                   "largest share of general prompts the candidate may answer like one trained example; 0 = the model's "
                   "default (0.25; the random demo model: 0.9)", 0, 1),
        KAIZEN_KEY("gate.paraphrase_min", gate.paraphrase_min,
                   "answer-token accuracy required on held-out paraphrases; 0 = report", 0, 1),
    };
    t[4].secret = true;  // api_key
    return t;
  }();
  return table;
}

#undef KAIZEN_KEY

po::options_description key_description() {
  po::options_description desc("kaizend keys");
  for (const Key& k : keys()) desc.add_options()(k.name.c_str(), po::value<std::string>(),
                                                 k.help.c_str());
  return desc;
}

const Key* find_key(const std::string& name) {
  for (const Key& k : keys())
    if (k.name == name) return &k;
  return nullptr;
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

std::vector<std::string> load_config(const ConfigSource& source, Config* out) {
  std::vector<std::string> errors;
  *out = Config{};
  out->config_path = source.path;
  po::options_description desc = key_description();

  std::ifstream in(source.path);
  if (in) {
    try {
      po::parsed_options parsed = po::parse_config_file(in, desc, /*allow_unregistered=*/true);
      apply(parsed, source.path, out, &errors);
    } catch (const po::error& e) {
      errors.push_back(source.path + ": " + e.what());
    }
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
