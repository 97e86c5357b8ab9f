// Typed records stored in the column families, and their serialization.
//
// Each record is stored as a JSON object with a version field "v". Readers accept
// every version up to the one they know (kRecordVersion) and fill defaults for fields
// added later; a record with a newer "v" is refused with NotSupported (written by a
// newer kaizen), bytes that are not a valid record with Corruption. Both messages name
// the column family and key, e.g. "Corruption: messages/m#3#17: not JSON (...)".
// Adding a field: give it a default in the struct and in from_json, no version bump.
// Changing a field's meaning: bump kRecordVersion and convert old versions on read.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "storage/status.h"

namespace kaizen::storage {

// Highest record version this build reads and the one it writes.
inline constexpr int kRecordVersion = 1;

// Milliseconds since the Unix epoch (wall clock), the time unit of every record.
int64_t now_ms();

// --- enums (stored as their lowercase names, so new values never shift old ones) ---

enum class ExampleSource : uint8_t { kKnowledge = 0, kFeedback = 1, kCorrection = 2 };
enum class ExampleState : uint8_t { kPending = 0, kApproved = 1, kRejected = 2, kTrained = 3 };
enum class ReviewState : uint8_t { kPending = 0, kAccepted = 1, kRejected = 2 };
// kPruned: retired, and its directory deleted past train.keep_versions (record kept).
enum class AdapterState : uint8_t { kCandidate = 0, kActive = 1, kRejected = 2, kRetired = 3, kPruned = 4 };
enum class RunState : uint8_t {
  kRunning = 0,      // training or validating now
  kPublished = 1,    // passed the gate, adapter published
  kRejected = 2,     // gate rejected the candidate; nothing changed for users
  kFailed = 3,       // an error stopped it (message in verdict)
  kInterrupted = 4,  // the daemon stopped while it was running (set at the next open)
};

const char* to_string(ExampleSource v);
const char* to_string(ExampleState v);
const char* to_string(ReviewState v);
const char* to_string(AdapterState v);
const char* to_string(RunState v);
// Parse the names above; false for an unknown name.
bool parse(std::string_view s, ExampleSource* out);
bool parse(std::string_view s, ExampleState* out);
bool parse(std::string_view s, ReviewState* out);
bool parse(std::string_view s, AdapterState* out);
bool parse(std::string_view s, RunState* out);

// --- records ---

struct Conversation {
  uint64_t id = 0;         // assigned by Store::create_conversation
  int64_t created_ms = 0;  // 0 = now, filled by the store
  std::string user;        // who started it (API key name, unix user, ...)
  std::string title;       // optional, e.g. the first user line
  std::string model;       // the requested model field: "kaizen", "kaizen@v7", "base"
  // The request's "tools" list as JSON text with its key order (what the template
  // printed); empty = none.
  std::string tools_json = {};
};

// A function call made by an assistant message (OpenAI's {id, type: "function",
// function: {name, arguments}}).
struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // JSON text, as the client or the model wrote it
  // Given as a JSON object instead of OpenAI's string: the Qwen3 template then prints it
  // re-serialized, so the flag is kept to render it as it was trained.
  bool arguments_is_object = false;
};

// One chat turn as it appears in training data: role is "system", "user", "assistant" or
// "tool" (a function's result).
struct ChatMessage {
  std::string role;
  std::string content;
  std::vector<ToolCall> tool_calls = {};  // assistant: the calls it made (content may be "")
  std::string tool_call_id = {};          // tool: the call it answers
};

struct Message {
  uint64_t id = 0;  // the API's message id: Store::reserve_message_id or append_message
  uint64_t conversation_id = 0;  // must exist
  std::string role;              // "system" | "user" | "assistant" | "tool"
  std::string content;           // assistant: the text before its tool calls
  std::vector<ToolCall> tool_calls = {};  // assistant
  std::string tool_call_id = {};          // tool
  int64_t created_ms = 0;      // 0 = now
  uint32_t prompt_tokens = 0;  // tokens read to produce it (assistant messages)
  uint32_t completion_tokens = 0;
  uint64_t adapter_version = 0;  // adapter that produced it; 0 = base model / not generated
  uint32_t latency_ms = 0;       // request start to last token
};

struct Feedback {
  uint64_t id = 0;          // assigned by Store::add_feedback
  uint64_t message_id = 0;  // the rated assistant message
  int rating = 0;           // +1 or -1 (0 = correction only)
  std::string correction;   // what the answer should have been; empty = none
  std::string author;
  int64_t created_ms = 0;  // 0 = now
  ReviewState review = ReviewState::kPending;
  uint64_t example_id = 0;  // the correction example written with it; 0 = none
  // Set by Store::add_feedback, not stored: the proposal equalled an existing example,
  // so example_id points at that one and no new example was written.
  bool duplicate = false;
};

struct Example {
  uint64_t id = 0;                    // assigned by the store
  std::vector<ChatMessage> messages;  // OpenAI chat format; last one is the assistant answer
  ExampleSource source = ExampleSource::kKnowledge;
  std::string provenance;  // "faq.jsonl:12", "feedback:42 by alice", ...
  ExampleState state = ExampleState::kPending;
  uint64_t first_adapter_version = 0;  // first adapter trained on it; 0 = not yet
  uint64_t feedback_id = 0;            // feedback it came from; 0 = none
  int64_t created_ms = 0;              // 0 = now
  int64_t updated_ms = 0;              // last state change
  std::string reviewer;                // who approved/rejected it
  std::string author;                  // who proposed it (feedback user); empty = operator
  // Other wordings of the last user message, never trained on: the gate checks that the
  // answer also comes for them (held-out paraphrases; from the import line's
  // "paraphrases" array).
  std::vector<std::string> paraphrases;
  // The functions shown in the prompt: OpenAI's "tools" list as JSON text with its key
  // order (the template prints it as written); empty = none.
  std::string tools_json = {};
  // Set by the store on every state change: increases in commit order across all
  // examples, so "approved since N" (list_examples with cursor N) never misses an
  // example approved after an earlier read, whatever its id.
  uint64_t state_seq = 0;
};

struct Adapter {
  uint64_t version = 0;  // vN; allocated with Store::allocate_adapter_version
  uint64_t parent = 0;   // version it was warm-started from; 0 = fresh
  std::string path;      // adapter directory, relative to the state dir ("adapters/v000007")
  std::map<std::string, double> metrics;  // gate metrics: learn_acc, retain_drop, canary_kl...
  AdapterState state = AdapterState::kCandidate;
  bool pinned = false;  // kept by garbage collection even when retired
  int64_t created_ms = 0;
  uint64_t run_id = 0;  // the run that trained it; 0 = imported
};

struct Run {
  uint64_t id = 0;                    // assigned by Store::create_run
  std::string trigger;                // "min_new_examples" | "interval" | "manual" | ...
  std::vector<uint64_t> example_ids;  // new examples trained on
  std::vector<uint64_t> replay_ids;   // replay sample mixed in
  nlohmann::json config = nlohmann::json::object();  // trainer config as given
  std::vector<float> loss_curve;                     // one value per logged step
  std::map<std::string, double> metrics;
  std::string verdict;  // human summary: "published v7", "retain drop 0.08 > 0.05 (gate.retain_max_drop)"
  // The gate's checks: {"pass", "checks": [{check, value, threshold, at_most, pass, key,
  // line}], "failures": [...]}; null until the run was validated.
  nlohmann::json gate;
  RunState state = RunState::kRunning;
  uint64_t adapter_version = 0;                 // candidate it produced; 0 = none yet
  int64_t started_ms = 0;                       // 0 = now
  int64_t finished_ms = 0;                      // 0 = still running
  std::map<std::string, double> phase_seconds;  // "dataset", "train", "validate", "publish"
};

// One reservoir slot of the replay buffer.
struct ReplayEntry {
  uint64_t example_id = 0;
  ExampleSource source = ExampleSource::kKnowledge;
};

// --- serialization ---
// encode() never fails. decode(bytes, where, out): `where` names the record for error
// messages ("examples/e#42"); returns Corruption or NotSupported as described above.

std::string encode(const Conversation& r);
std::string encode(const Message& r);
std::string encode(const Feedback& r);
std::string encode(const Example& r);
std::string encode(const Adapter& r);
std::string encode(const Run& r);
std::string encode(const ReplayEntry& r);

Status decode(std::string_view bytes, const std::string& where, Conversation* out);
Status decode(std::string_view bytes, const std::string& where, Message* out);
Status decode(std::string_view bytes, const std::string& where, Feedback* out);
Status decode(std::string_view bytes, const std::string& where, Example* out);
Status decode(std::string_view bytes, const std::string& where, Adapter* out);
Status decode(std::string_view bytes, const std::string& where, Run* out);
Status decode(std::string_view bytes, const std::string& where, ReplayEntry* out);

// JSON view of records, as the CLI and admin routes print them (same fields as stored,
// without "v").
nlohmann::json to_json(const Example& r);
nlohmann::json to_json(const Adapter& r);
nlohmann::json to_json(const Run& r);

// An example as one line of OpenAI's chat fine-tuning JSONL (no newline):
// {"messages": [...], "tools": [...]}, tool calls as {id, type, function: {name,
// arguments}}; the tools keep their stored key order. What feedback export writes and
// import (storage/import.h) and train::parse_chat_record read back.
std::string to_chat_record(const Example& r);

// SHA-256 of an example's messages in a canonical form (roles, contents, tool calls and
// the tools list, in order); the key that makes knowledge import idempotent. 32 raw bytes.
// Examples without tools hash as they did before tools existed.
std::string content_hash(const std::vector<ChatMessage>& messages, const std::string& tools_json = "");

}  // namespace kaizen::storage
