// One accepted chat or completion request on the engine (docs/DESIGN.md §Request path,
// step 7): its n answers as n EngineJobs (choice i sampled with seed + i, all sharing the
// prompt's KV), each answer's text through the tool-call parser when the request has
// tools, logprobs turned into API tokens, and the single on_done / on_error the HTTP
// layer gets once every choice has ended.
//
// Threading: the engine calls the jobs' callbacks on its one thread, so the state here is
// touched by that thread only; cancel() may be called from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "daemon/serve/engine.h"
#include "daemon/service.h"
#include "learning/text/tool_call_parser.h"

namespace kaizen::daemon {

struct ChatCallOptions {
  int n = 1;
  // Turn <tool_call> blocks of the answers into ToolCalls (a request with tools whose
  // tool_choice is not "none"); the template kind says which format the model writes.
  bool parse_tools = false;
  text::TemplateKind template_kind = text::TemplateKind::kQwen3;
  std::optional<uint64_t> seed;  // choice i gets seed + i; unset: each its own random seed
};

// The grammar that forces a tool call for tool_choice required (one or, with
// parallel_tool_calls, more calls of the declared functions) or a named function, in the
// layout the model's template writes calls: <tool_call> blocks (Qwen, ChatML) or
// Llama-3.1's JSON answer (one call).
Result<std::shared_ptr<const grammar::Grammar>> forced_call_grammar(const ChatRequest& req, text::TemplateKind kind);

class ChatCall : public std::enable_shared_from_this<ChatCall> {
 public:
  // Stores one finished answer: its choice index, the generation, and the answer as the
  // API returned it (content = the text outside tool calls, tool_calls with their ids);
  // called on the engine thread before the request's on_done.
  using StoreAnswer =
      std::function<void(int index, const generate::GenerateResult& result, const ChoiceDelta& answer)>;

  ChatCall(ChatCallOptions options, ChatEvents events, std::shared_ptr<const text::Tokenizer> tokenizer,
           StoreAnswer store);

  // The n jobs to submit (together, Engine::submit_all): copies of `prototype` whose
  // callbacks report to this call. With n > 1 they share the prompt's KV up to its last
  // token (EngineJob::prefix_uses).
  std::vector<std::shared_ptr<EngineJob>> make_jobs(const EngineJob& prototype);
  // Cancels every choice (the client went away).
  void cancel();

 private:
  struct Choice {
    std::weak_ptr<EngineJob> job;
    std::optional<text::ToolCallParser> parser;
    std::vector<TokenLogprob> pending_logprobs;  // generated, not yet sent with a delta
    ChoiceDelta whole;  // every delta sent so far, joined (logprobs left out)
    bool ended = false;
  };

  void on_logprobs(int i, const std::vector<generate::TokenLogprob>& lps);
  void on_delta(int i, std::string_view text);
  void on_done(int i, const generate::GenerateResult& result);
  void on_error(int i, const std::string& message);
  // Sends what choice i's parser events and pending logprobs add up to, if anything.
  void emit(int i, std::vector<text::ToolCallParser::Event> events);
  void end_choice();
  std::string new_call_id();

  const ChatCallOptions options_;
  const ChatEvents events_;
  const std::shared_ptr<const text::Tokenizer> tokenizer_;
  const StoreAnswer store_;
  std::vector<Choice> choices_;
  ChatResult result_;
  std::optional<std::string> error_;  // the first choice that failed
  int running_ = 0;
  std::mt19937_64 ids_;  // tool call ids
};

}  // namespace kaizen::daemon
