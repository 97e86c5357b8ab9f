#include "daemon/config_keys.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>
#include <type_traits>

namespace kaizen::daemon {

std::string trim(std::string s) {
  const char* ws = " \t\r\n";
  s.erase(s.find_last_not_of(ws) + 1);
  s.erase(0, s.find_first_not_of(ws));
  return s;
}

namespace {

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

Key secret(Key k) {
  k.secret = true;
  return k;
}

}  // namespace

#define KAIZEN_KEY(name, field, ...) \
  make_key(name, [](Config& c) -> auto& { return c.field; }, __VA_ARGS__)
// A key whose value --check-config and the logs never print (only whether it is set).
#define KAIZEN_SECRET_KEY(name, field, ...) secret(KAIZEN_KEY(name, field, __VA_ARGS__))


// THE key table. Keep it in the order --check-config should print.
const std::vector<Key>& keys() {
  static const std::vector<Key> table = [] {
    std::vector<Key> t = {
        KAIZEN_KEY("model", model, "Hugging Face model directory"),
        KAIZEN_KEY("state_dir", state_dir, "RocksDB and adapters"),
        KAIZEN_KEY("socket", socket, "Unix socket path (admin + chat); empty = off"),
        KAIZEN_KEY("listen", listen, "TCP host:port for chat; empty = off"),
        KAIZEN_SECRET_KEY("api_key", api_key, "bearer token for TCP (prefer api_key_file)"),
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
        KAIZEN_KEY("limits.max_n", limits.max_n, "answers per request (n); over -> 400", 1, 128),
        KAIZEN_KEY("limits.max_tools", limits.max_tools, "tools per request; over -> 400", 0, 10000),
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
    return t;
  }();
  return table;
}

#undef KAIZEN_SECRET_KEY
#undef KAIZEN_KEY

const Key* find_key(const std::string& name) {
  for (const Key& k : keys())
    if (k.name == name) return &k;
  return nullptr;
}

}  // namespace kaizen::daemon
