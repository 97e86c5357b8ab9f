// kaizend configuration: one INI file (Boost.ProgramOptions syntax, `[section]` makes
// `section.key`), every key also a `--key=value` flag, flags win over the file, the
// file wins over defaults. All keys are declared in one table in config.cc; adding a
// key = a field here + one row there.
//
// Loading never throws and never stops at the first problem: it returns every bad key
// with a message naming the key and the offending value.
#pragma once

#include <cstdint>
#include <istream>
#include <string>
#include <vector>

namespace kaizen::daemon {

// HTTP-layer limits. Sizes in bytes (the file accepts KiB/MiB/GiB suffixes), times in
// seconds. Reloaded on SIGHUP.
struct Limits {
  int64_t max_header_bytes = 16 * 1024;  // request line + headers; over -> 431
  int64_t max_body_bytes = 1 << 20;      // request body; over -> 413 without reading it
  int64_t max_prompt_chars = 200000;     // sum of message contents (Unicode code points)
  int64_t max_messages = 1000;           // messages per chat request
  int64_t max_tokens = 4096;             // cap on max_tokens; larger requests -> 400
  int64_t default_max_tokens = 1024;     // when the request gives none (capped by max_tokens)
  int64_t max_n = 8;                     // answers per request (`n`); over -> 400
  int64_t max_tools = 128;               // entries of `tools` per request; over -> 400
  int64_t max_active_chats = 8;          // chats handed to the Service at once (decoded as one batch)
  int64_t max_queued_chats = 64;         // chats waiting for a slot; over -> 429
  int64_t retry_after_s = 2;             // Retry-After sent with 429
  int64_t max_connections = 2048;        // open connections; over -> 503 + close
  int64_t header_timeout_s = 10;         // to receive a whole request header once it starts
  int64_t idle_timeout_s = 60;           // keep-alive wait for the next request
  int64_t body_timeout_s = 30;           // to receive a whole request body
  int64_t write_timeout_s = 30;          // per write; a client that stops reading is dropped
  int64_t drain_timeout_s = 30;          // SIGTERM: wait this long for in-flight requests
};

// Continual learning (daemon/learn/learner.h). Read at start; not reloaded.
struct TrainConfig {
  bool enabled = true;                // run the learner thread (train/now works only then)
  int64_t min_new_examples = 50;      // approved, untrained examples that start a run; 0 = off
  int64_t interval_s = 0;             // also start a run this often when any are new; 0 = off
  double replay_ratio = 1.0;          // replay examples per new example (reservoir sample)
  bool warm_start = true;             // start from the active adapter (false: fresh LoRA)
  int64_t keep_versions = 5;          // unpinned, inactive adapter directories kept; older pruned
  int64_t retain_holdout = 32;        // replay examples held out of training to measure retention
  int64_t exact_match_max = 64;       // new examples checked by greedy exact match (0 = skip)
  int64_t epochs = 0;                 // 0 = the trainer's recipe for the model size
  int64_t max_steps = 0;              // > 0: cap on optimizer steps per run
  double lr = 0;                      // 0 = the recipe's learning rate
  int64_t rank = 0;                   // LoRA r for a fresh adapter; 0 = recipe
  int64_t seed = 0;                   // LoRA init, batch order and replay draws
  bool with_system_prompt = true;     // train with the configured system message, as served
  int64_t max_yield_ms = 1000;        // per optimizer step, longest wait for waiting chats
  int64_t publish_pause_ms = 0;       // test hook: pause between writing and recording an adapter
  // Feedback authors (the request's "user") whose proposals skip the review queue.
  std::vector<std::string> trusted_authors;
  // New examples one author may contribute to one run; 0 = no limit. A run stops taking
  // examples (in approval order) at the first one over its author's limit; the rest wait
  // for the next run. Operator imports have no author and no limit.
  int64_t max_per_author = 0;
};

// Acceptance gate thresholds (learning/eval/gate.h).
struct GateConfig {
  double learn_min = 0.90;        // answer-token accuracy on the new examples
  double learn_exact_min = 0.0;   // greedy exact-match rate on the new examples
  double retain_max_drop = 0.05;  // accuracy drop allowed on held-out replay examples
  double canary_max_kl = 0;       // KL(base || candidate) on the base's answers to general
                                  // prompts, nats; 0 = the model's default (1 for real
                                  // checkpoints, eval::kDemoCanaryMaxKl for the demo model)
  double canary_max_leak = 0;     // share of general prompts answered like a trained example;
                                  // 0 = the model's default (0.25; the demo model 0.9)
  double paraphrase_min = 0.0;    // answer-token accuracy on held-out paraphrases (0 = report only)
};

struct Config {
  // Where this config came from (not a key).
  std::string config_path;

  // docs/DESIGN.md keys.
  std::string model;                                 // HF model directory
  std::string state_dir = "/var/lib/kaizen";         // RocksDB + adapters
  std::string socket = "/run/kaizen/kaizend.sock";   // Unix socket; empty = off
  std::string listen = "127.0.0.1:8088";             // TCP host:port; empty = off
  std::string api_key;                               // bearer token for TCP (prefer the file)
  std::string api_key_file;                          // file holding the bearer token
  std::string device;                                // cpu | cuda | cuda:N; empty = auto
  int64_t threads = 0;                               // tensor threads; 0 = all cores
  // CPU weights alias the memory-mapped model file (shared page cache, no copy) instead
  // of a private huge-page copy (faster decode; see learning/model/loader.h).
  bool mmap_weights = false;
  // Decode steps of up to this many concurrent chats run as one batched forward (the
  // weights are read once per step for all of them); 1 = one chat per forward.
  int64_t decode_batch = 8;
  // Prompt tokens prefilled per engine turn (all new chats together), between decode
  // steps, so a long prompt does not freeze the other chats' streams; 0 = whole prompts.
  int64_t prefill_chunk = 128;
  // MiB of finished chats' KV kept (LRU) for their next turn: a client sends the whole
  // conversation each turn, and only what is new is prefilled; 0 = none kept.
  int64_t conversation_cache_mb = 2048;

  // HTTP process.
  int64_t io_threads = 2;                  // Asio threads: parse, validate, write only
  std::string socket_group;                // group owning the Unix socket; empty = ours
  std::string socket_mode = "0660";        // octal permissions of the Unix socket
  std::vector<std::string> allowed_hosts = {"localhost", "127.0.0.1", "[::1]"};  // TCP Host
  std::string log_level = "info";          // trace|debug|info|warn|error|critical|off

  // Persona / prompt (used by the Service).
  std::string system_prompt;
  std::string system_prompt_file;
  std::string company_info_file;
  std::string agent_name = "Kaizen";
  std::string agent_creator;

  Limits limits;
  TrainConfig train;
  GateConfig gate;

  // --- derived by load_config(), not keys ---
  std::string bearer_token;         // api_key, or the trimmed contents of api_key_file
  uint32_t socket_mode_bits = 0660;
  std::string listen_host;          // "127.0.0.1", "::1"
  uint16_t listen_port = 0;         // 0 = ephemeral (tests)
};

// How kaizend was started; kept so SIGHUP can reload the same way.
struct ConfigSource {
  std::string path = "/etc/kaizen/kaizend.conf";
  bool path_given = false;          // --config given: a missing file is then an error
  std::vector<std::string> flags;   // --key=value arguments, in order
};

struct CommandLine {
  ConfigSource source;
  bool check_config = false;  // --check-config: print the effective config, exit 0/2
  bool help = false;
  bool version = false;
  std::vector<std::string> errors;  // flag syntax errors
};

// Splits argv into --config/--check-config/--help and the config flags. Flags are
// checked against the key table later by load_config().
CommandLine parse_command_line(int argc, const char* const* argv);

// Defaults <- file <- flags, then validation (numbers, ranges, host:port, files exist,
// group exists). On errors `*out` holds what could be parsed; returns one message per
// problem, empty when the config is good.
std::vector<std::string> load_config(const ConfigSource& source, Config* out);

// The file's part of load_config(): INI text applied on top of *out, one message per
// problem (prefixed by `where`) appended to *errors; no validation across keys. Exposed
// for the config fuzzer (tests/fuzz/fuzz_config.cc).
void read_config_text(std::istream& in, const std::string& where, Config* out,
                      std::vector<std::string>* errors);

// The effective config as INI text (secrets masked), for --check-config and logs.
std::string describe_config(const Config& config);

// One line per key with its default and help, for --help.
std::string config_help();

// Splits "host:port" / "[v6]:port"; "localhost" maps to 127.0.0.1. Returns an error
// message, empty on success.
std::string parse_host_port(const std::string& text, std::string* host, uint16_t* port);

}  // namespace kaizen::daemon
