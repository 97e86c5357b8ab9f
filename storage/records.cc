#include "storage/records.h"

#include <chrono>
#include <stdexcept>

#include "storage/sha256.h"

namespace kaizen::storage {

using nlohmann::json;

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// --- enum names ---

namespace {

template <typename E, size_t N>
bool parse_name(std::string_view s, const char* const (&names)[N], E* out) {
  for (size_t i = 0; i < N; ++i) {
    if (s == names[i]) {
      *out = static_cast<E>(i);
      return true;
    }
  }
  return false;
}
template <typename E, size_t N>
const char* name_of(E v, const char* const (&names)[N]) {
  size_t i = static_cast<size_t>(v);
  return i < N ? names[i] : "unknown";
}

const char* const kSourceNames[] = {"knowledge", "feedback", "correction"};
const char* const kExampleStateNames[] = {"pending", "approved", "rejected", "trained"};
const char* const kReviewNames[] = {"pending", "accepted", "rejected"};
const char* const kAdapterStateNames[] = {"candidate", "active", "rejected", "retired", "pruned"};
const char* const kRunStateNames[] = {"running", "published", "rejected", "failed", "interrupted"};

}  // namespace

const char* to_string(ExampleSource v) {
  return name_of(v, kSourceNames);
}
const char* to_string(ExampleState v) {
  return name_of(v, kExampleStateNames);
}
const char* to_string(ReviewState v) {
  return name_of(v, kReviewNames);
}
const char* to_string(AdapterState v) {
  return name_of(v, kAdapterStateNames);
}
const char* to_string(RunState v) {
  return name_of(v, kRunStateNames);
}
bool parse(std::string_view s, ExampleSource* out) {
  return parse_name(s, kSourceNames, out);
}
bool parse(std::string_view s, ExampleState* out) {
  return parse_name(s, kExampleStateNames, out);
}
bool parse(std::string_view s, ReviewState* out) {
  return parse_name(s, kReviewNames, out);
}
bool parse(std::string_view s, AdapterState* out) {
  return parse_name(s, kAdapterStateNames, out);
}
bool parse(std::string_view s, RunState* out) {
  return parse_name(s, kRunStateNames, out);
}

// --- serialization helpers ---

namespace {

// Thrown inside decoders for a field that is present but wrong; becomes Corruption.
struct BadField : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string dump(json j) {
  j["v"] = kRecordVersion;
  // User text may hold invalid UTF-8; store it with replacement characters rather
  // than failing a chat write.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Missing or null fields keep their default: that is how old records read new fields.
template <typename T>
void get_opt(const json& j, const char* key, T* out) {
  auto it = j.find(key);
  if (it != j.end() && !it->is_null()) *out = it->get<T>();
}

template <typename E>
void get_enum(const json& j, const char* key, E* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  const auto& s = it->get_ref<const std::string&>();
  if (!parse(s, out)) throw BadField(std::string("unknown ") + key + " '" + s + "'");
}

template <typename F>
Status decode_json(std::string_view bytes, const std::string& where, const char* kind, F&& fill) {
  json j = json::parse(bytes.begin(), bytes.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::Corruption(where + ": not a " + kind + " record (" +
                              std::to_string(bytes.size()) + " bytes of invalid JSON)");
  }
  auto v = j.find("v");
  if (v == j.end() || !v->is_number_integer()) {
    return Status::Corruption(where + ": " + kind + " record has no version field 'v'");
  }
  const int64_t version = v->get<int64_t>();
  if (version > kRecordVersion) {
    return Status::NotSupported(where + ": " + kind + " record version " + std::to_string(version) +
                                " is newer than this kaizen build reads (up to " +
                                std::to_string(kRecordVersion) + "); upgrade kaizen");
  }
  if (version < 1) {
    return Status::Corruption(where + ": " + kind + " record has invalid version " +
                              std::to_string(version));
  }
  try {
    fill(j);
  } catch (const std::exception& e) {
    return Status::Corruption(where + ": bad " + kind + " record: " + e.what());
  }
  return Status::OK();
}

// Tool calls in OpenAI's shape; "arguments_is_object" (kaizen's) only when set.
json tool_calls_json(const std::vector<ToolCall>& calls) {
  json arr = json::array();
  for (const auto& c : calls) {
    json j = {{"id", c.id}, {"type", "function"}, {"function", {{"name", c.name}, {"arguments", c.arguments}}}};
    if (c.arguments_is_object) j["arguments_is_object"] = true;
    arr.push_back(std::move(j));
  }
  return arr;
}

std::vector<ToolCall> tool_calls_from(const json& arr) {
  if (!arr.is_array()) throw BadField("'tool_calls' is not an array");
  std::vector<ToolCall> out;
  for (const auto& c : arr) {
    ToolCall call;
    get_opt(c, "id", &call.id);
    const json& fn = c.at("function");
    call.name = fn.at("name").get<std::string>();
    get_opt(fn, "arguments", &call.arguments);
    get_opt(c, "arguments_is_object", &call.arguments_is_object);
    out.push_back(std::move(call));
  }
  return out;
}

// The tool fields of a message, only when it has them (records without tools keep
// their old bytes).
void put_tool_fields(json* j, const std::vector<ToolCall>& calls, const std::string& call_id) {
  if (!calls.empty()) (*j)["tool_calls"] = tool_calls_json(calls);
  if (!call_id.empty()) (*j)["tool_call_id"] = call_id;
}

void get_tool_fields(const json& j, std::vector<ToolCall>* calls, std::string* call_id) {
  if (auto it = j.find("tool_calls"); it != j.end() && !it->is_null()) *calls = tool_calls_from(*it);
  get_opt(j, "tool_call_id", call_id);
}

json messages_json(const std::vector<ChatMessage>& messages) {
  json arr = json::array();
  for (const auto& m : messages) {
    json j = {{"role", m.role}, {"content", m.content}};
    put_tool_fields(&j, m.tool_calls, m.tool_call_id);
    arr.push_back(std::move(j));
  }
  return arr;
}

}  // namespace

// --- Conversation ---

std::string encode(const Conversation& r) {
  json j = {{"id", r.id}, {"created_ms", r.created_ms}, {"user", r.user}, {"title", r.title}, {"model", r.model}};
  if (!r.tools_json.empty()) j["tools_json"] = r.tools_json;
  return dump(std::move(j));
}
Status decode(std::string_view bytes, const std::string& where, Conversation* out) {
  Conversation r;
  Status s = decode_json(bytes, where, "conversation", [&](const json& j) {
    get_opt(j, "id", &r.id);
    get_opt(j, "created_ms", &r.created_ms);
    get_opt(j, "user", &r.user);
    get_opt(j, "title", &r.title);
    get_opt(j, "model", &r.model);
    get_opt(j, "tools_json", &r.tools_json);
  });
  if (s.ok()) *out = std::move(r);
  return s;
}

// --- Message ---

std::string encode(const Message& r) {
  json j = {{"id", r.id},
            {"conversation_id", r.conversation_id},
            {"role", r.role},
            {"content", r.content},
            {"created_ms", r.created_ms},
            {"prompt_tokens", r.prompt_tokens},
            {"completion_tokens", r.completion_tokens},
            {"adapter_version", r.adapter_version},
            {"latency_ms", r.latency_ms}};
  put_tool_fields(&j, r.tool_calls, r.tool_call_id);
  return dump(std::move(j));
}
Status decode(std::string_view bytes, const std::string& where, Message* out) {
  Message r;
  Status s = decode_json(bytes, where, "message", [&](const json& j) {
    get_opt(j, "id", &r.id);
    get_opt(j, "conversation_id", &r.conversation_id);
    get_opt(j, "role", &r.role);
    get_opt(j, "content", &r.content);
    get_opt(j, "created_ms", &r.created_ms);
    get_opt(j, "prompt_tokens", &r.prompt_tokens);
    get_opt(j, "completion_tokens", &r.completion_tokens);
    get_opt(j, "adapter_version", &r.adapter_version);
    get_opt(j, "latency_ms", &r.latency_ms);
    get_tool_fields(j, &r.tool_calls, &r.tool_call_id);
  });
  if (s.ok()) *out = std::move(r);
  return s;
}

// --- Feedback ---

std::string encode(const Feedback& r) {
  return dump({{"id", r.id},
               {"message_id", r.message_id},
               {"rating", r.rating},
               {"correction", r.correction},
               {"author", r.author},
               {"created_ms", r.created_ms},
               {"review", to_string(r.review)},
               {"example_id", r.example_id}});
}
Status decode(std::string_view bytes, const std::string& where, Feedback* out) {
  Feedback r;
  Status s = decode_json(bytes, where, "feedback", [&](const json& j) {
    get_opt(j, "id", &r.id);
    get_opt(j, "message_id", &r.message_id);
    get_opt(j, "rating", &r.rating);
    get_opt(j, "correction", &r.correction);
    get_opt(j, "author", &r.author);
    get_opt(j, "created_ms", &r.created_ms);
    get_enum(j, "review", &r.review);
    get_opt(j, "example_id", &r.example_id);
  });
  if (s.ok()) *out = std::move(r);
  return s;
}

// --- Example ---

json to_json(const Example& r) {
  json j = {{"id", r.id},
          {"messages", messages_json(r.messages)},
          {"source", to_string(r.source)},
          {"provenance", r.provenance},
          {"state", to_string(r.state)},
          {"first_adapter_version", r.first_adapter_version},
          {"feedback_id", r.feedback_id},
          {"created_ms", r.created_ms},
          {"updated_ms", r.updated_ms},
          {"reviewer", r.reviewer},
          {"author", r.author},
          {"paraphrases", r.paraphrases},
          {"state_seq", r.state_seq}};
  if (!r.tools_json.empty()) j["tools_json"] = r.tools_json;
  return j;
}
std::string encode(const Example& r) {
  return dump(to_json(r));
}
Status decode(std::string_view bytes, const std::string& where, Example* out) {
  Example r;
  Status s = decode_json(bytes, where, "example", [&](const json& j) {
    get_opt(j, "id", &r.id);
    auto it = j.find("messages");
    if (it != j.end()) {
      if (!it->is_array()) throw BadField("'messages' is not an array");
      for (const auto& m : *it) {
        ChatMessage msg{m.at("role").get<std::string>(), m.at("content").get<std::string>()};
        get_tool_fields(m, &msg.tool_calls, &msg.tool_call_id);
        r.messages.push_back(std::move(msg));
      }
    }
    get_enum(j, "source", &r.source);
    get_opt(j, "provenance", &r.provenance);
    get_enum(j, "state", &r.state);
    get_opt(j, "first_adapter_version", &r.first_adapter_version);
    get_opt(j, "feedback_id", &r.feedback_id);
    get_opt(j, "created_ms", &r.created_ms);
    get_opt(j, "updated_ms", &r.updated_ms);
    get_opt(j, "reviewer", &r.reviewer);
    get_opt(j, "author", &r.author);
    if (auto p = j.find("paraphrases"); p != j.end()) {
      if (!p->is_array()) throw BadField("'paraphrases' is not an array");
      for (const auto& s : *p) r.paraphrases.push_back(s.get<std::string>());
    }
    get_opt(j, "state_seq", &r.state_seq);
    get_opt(j, "tools_json", &r.tools_json);
  });
  if (s.ok()) *out = std::move(r);
  return s;
}

// --- Adapter ---

json to_json(const Adapter& r) {
  return {{"version", r.version},       {"parent", r.parent},          {"path", r.path},
          {"metrics", r.metrics},       {"state", to_string(r.state)}, {"pinned", r.pinned},
          {"created_ms", r.created_ms}, {"run_id", r.run_id}};
}
std::string encode(const Adapter& r) {
  return dump(to_json(r));
}
Status decode(std::string_view bytes, const std::string& where, Adapter* out) {
  Adapter r;
  Status s = decode_json(bytes, where, "adapter", [&](const json& j) {
    get_opt(j, "version", &r.version);
    get_opt(j, "parent", &r.parent);
    get_opt(j, "path", &r.path);
    get_opt(j, "metrics", &r.metrics);
    get_enum(j, "state", &r.state);
    get_opt(j, "pinned", &r.pinned);
    get_opt(j, "created_ms", &r.created_ms);
    get_opt(j, "run_id", &r.run_id);
  });
  if (s.ok()) *out = std::move(r);
  return s;
}

// --- Run ---

json to_json(const Run& r) {
  return {{"id", r.id},
          {"trigger", r.trigger},
          {"example_ids", r.example_ids},
          {"replay_ids", r.replay_ids},
          {"config", r.config},
          {"loss_curve", r.loss_curve},
          {"metrics", r.metrics},
          {"verdict", r.verdict},
          {"gate", r.gate},
          {"state", to_string(r.state)},
          {"adapter_version", r.adapter_version},
          {"started_ms", r.started_ms},
          {"finished_ms", r.finished_ms},
          {"phase_seconds", r.phase_seconds}};
}
std::string encode(const Run& r) {
  return dump(to_json(r));
}
Status decode(std::string_view bytes, const std::string& where, Run* out) {
  Run r;
  Status s = decode_json(bytes, where, "run", [&](const json& j) {
    get_opt(j, "id", &r.id);
    get_opt(j, "trigger", &r.trigger);
    get_opt(j, "example_ids", &r.example_ids);
    get_opt(j, "replay_ids", &r.replay_ids);
    get_opt(j, "config", &r.config);
    get_opt(j, "loss_curve", &r.loss_curve);
    get_opt(j, "metrics", &r.metrics);
    get_opt(j, "verdict", &r.verdict);
    if (j.contains("gate")) r.gate = j["gate"];
    get_enum(j, "state", &r.state);
    get_opt(j, "adapter_version", &r.adapter_version);
    get_opt(j, "started_ms", &r.started_ms);
    get_opt(j, "finished_ms", &r.finished_ms);
    get_opt(j, "phase_seconds", &r.phase_seconds);
  });
  if (s.ok()) *out = std::move(r);
  return s;
}

// --- ReplayEntry ---

std::string encode(const ReplayEntry& r) {
  return dump({{"example_id", r.example_id}, {"source", to_string(r.source)}});
}
Status decode(std::string_view bytes, const std::string& where, ReplayEntry* out) {
  ReplayEntry r;
  Status s = decode_json(bytes, where, "replay", [&](const json& j) {
    r.example_id = j.at("example_id").get<uint64_t>();
    get_enum(j, "source", &r.source);
  });
  if (s.ok()) *out = r;
  return s;
}

// --- content hash ---

std::string content_hash(const std::vector<ChatMessage>& messages, const std::string& tools_json) {
  // Length-prefixed fields: unambiguous however the texts are split. Tool fields are
  // tagged and only written when present, so examples without them keep their hash.
  std::string canonical;
  auto field = [&canonical](const std::string& s) { canonical += std::to_string(s.size()) + ":" + s + ";"; };
  for (const auto& m : messages) {
    field(m.role);
    field(m.content);
    for (const auto& c : m.tool_calls) {
      canonical += "call;";
      field(c.id);
      field(c.name);
      field(c.arguments);
      if (c.arguments_is_object) canonical += "object;";
    }
    if (!m.tool_call_id.empty()) {
      canonical += "for;";
      field(m.tool_call_id);
    }
  }
  if (!tools_json.empty()) {
    canonical += "tools;";
    field(tools_json);
  }
  return sha256(canonical);
}

std::string to_chat_record(const Example& r) {
  using ordered = nlohmann::ordered_json;
  ordered line;
  ordered messages = ordered::array();
  for (const auto& m : r.messages) {
    ordered j = {{"role", m.role}, {"content", m.content}};
    if (!m.tool_calls.empty()) {
      ordered calls = ordered::array();
      for (const auto& c : m.tool_calls) {
        ordered args = c.arguments;
        if (c.arguments_is_object) {
          ordered parsed = ordered::parse(c.arguments, nullptr, /*allow_exceptions=*/false);
          if (!parsed.is_discarded()) args = std::move(parsed);
        }
        calls.push_back({{"id", c.id}, {"type", "function"}, {"function", {{"name", c.name}, {"arguments", args}}}});
      }
      j["tool_calls"] = std::move(calls);
    }
    if (!m.tool_call_id.empty()) j["tool_call_id"] = m.tool_call_id;
    messages.push_back(std::move(j));
  }
  line["messages"] = std::move(messages);
  if (!r.tools_json.empty()) {
    ordered tools = ordered::parse(r.tools_json, nullptr, /*allow_exceptions=*/false);
    if (!tools.is_discarded()) line["tools"] = std::move(tools);
  }
  return line.dump(-1, ' ', false, ordered::error_handler_t::replace);
}

}  // namespace kaizen::storage
