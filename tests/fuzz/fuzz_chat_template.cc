// libFuzzer target: an arbitrary conversation (roles, contents with any bytes, tool calls,
// tool results, reasoning, a tools list) rendered by every chat template. The templates may
// refuse a conversation only with std::invalid_argument (where the real Jinja template
// raises); and for training, render_segments() must cut exactly render()'s text:
// the segments concatenate to the rendered conversation, and only assistant output is
// trainable.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "learning/text/chat_template.h"
#include "tests/fuzz/fuzz_check.h"

using namespace kaizen::text;

namespace {

const char* const kRoles[] = {"system", "user", "assistant", "tool", "ipython", "developer"};

std::vector<ChatMessage> read_messages(kaizen::fuzz::Bytes& in) {
  std::vector<ChatMessage> messages;
  const size_t n = 1 + in.byte() % 8;
  for (size_t i = 0; i < n && !in.empty(); ++i) {
    ChatMessage m;
    m.role = kRoles[in.byte() % 6];
    m.content = in.text(96);
    const uint8_t flags = in.byte();
    if (m.role == "assistant") {
      for (int c = 0; c < (flags & 3); ++c) {
        ToolCall call;
        call.id = "call_" + std::to_string(c);
        call.name = in.text(16);
        call.arguments = in.text(48);
        call.arguments_is_object = (flags & 4) != 0;
        m.tool_calls.push_back(std::move(call));
      }
      if (flags & 8) m.reasoning_content = in.text(32);
    }
    if (m.role == "tool") m.tool_call_id = "call_0";
    messages.push_back(std::move(m));
  }
  return messages;
}

std::vector<nlohmann::ordered_json> read_tools(kaizen::fuzz::Bytes& in) {
  std::vector<nlohmann::ordered_json> tools;
  const size_t n = in.byte() % 3;
  for (size_t i = 0; i < n; ++i) {
    nlohmann::ordered_json fn;
    fn["name"] = in.text(16);
    fn["description"] = in.text(32);
    fn["parameters"] = {{"type", "object"}, {"properties", {{in.text(8), {{"type", "string"}}}}}};
    tools.push_back({{"type", "function"}, {"function", fn}});
  }
  return tools;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kaizen::fuzz::Bytes in(data, size);
  const auto tools = read_tools(in);
  auto messages = read_messages(in);
  for (TemplateKind kind : {TemplateKind::kChatML, TemplateKind::kQwen3, TemplateKind::kLlama3,
                            TemplateKind::kLlama31}) {
    const ChatTemplate tpl = ChatTemplate::of_kind(kind);
    ChatOptions opts;
    opts.tools = tools;
    opts.enable_thinking = size % 2 == 0;
    try {
      (void)tpl.render(messages, opts);
    } catch (const std::invalid_argument&) {
    }
    if (messages.empty() || messages.back().role != "assistant") continue;
    std::vector<ChatSegment> segments;
    try {
      segments = tpl.render_segments(messages, tools);
    } catch (const std::invalid_argument&) {
      continue;
    }
    ChatOptions whole;
    whole.add_generation_prompt = false;
    whole.enable_thinking = false;
    whole.tools = tools;
    std::string joined;
    bool any_trainable = false;
    for (const ChatSegment& s : segments) {
      joined += s.text;
      any_trainable |= s.trainable;
    }
    if (joined != tpl.render(messages, whole) || !any_trainable) {
      std::fprintf(stderr, "template %s, %zu messages, segments:\n", ChatTemplate::name_of(kind),
                   messages.size());
      for (const ChatSegment& s : segments) {
        std::fprintf(stderr, "  [%s] %s\n", s.trainable ? "train" : "prompt", s.text.c_str());
      }
      std::fprintf(stderr, "render(): %s\n", tpl.render(messages, whole).c_str());
      std::abort();
    }
  }
  return 0;
}
