#include "daemon/serve/chat_call.h"

#include <utility>

#include "learning/grammar/tool_call.h"

namespace kaizen::daemon {

Result<std::shared_ptr<const grammar::Grammar>> forced_call_grammar(const ChatRequest& req, text::TemplateKind kind) {
  // The layout the model's template taught it (and text::ToolCallParser reads back).
  grammar::ToolCallFormat format;
  if (kind == text::TemplateKind::kQwen3 || kind == text::TemplateKind::kChatML) {
    format = grammar::ToolCallFormat::kHermes;
  } else if (kind == text::TemplateKind::kLlama31 || kind == text::TemplateKind::kLlama3) {
    format = grammar::ToolCallFormat::kLlamaJson;
  } else {
    return Error::InvalidRequest(std::string("tool_choice '") + (req.tool_choice == ToolChoice::kNamed ? "function" : "required") +
                                     "' needs a model whose template has tool calls (Qwen, Llama-3.1); this model's is " +
                                     text::ChatTemplate::name_of(kind),
                                 "tool_choice");
  }
  std::vector<grammar::ToolSpec> specs;
  for (const auto& t : req.tools) {
    if (req.tool_choice == ToolChoice::kNamed && t.name != req.tool_choice_name) continue;
    grammar::ToolSpec spec;
    spec.name = t.name;
    if (!t.parameters.is_null()) spec.ordered_parameters = t.parameters;
    specs.push_back(std::move(spec));
  }
  try {
    return grammar::tool_call_grammar(specs, req.parallel_tool_calls && req.tool_choice == ToolChoice::kRequired,
                                      format);
  } catch (const grammar::SchemaError& e) {
    return Error::InvalidRequest(e.what(), "tools");
  }
}

ChatCall::ChatCall(ChatCallOptions options, ChatEvents events, std::shared_ptr<const text::Tokenizer> tokenizer,
                   StoreAnswer store)
    : options_(std::move(options)),
      events_(std::move(events)),
      tokenizer_(std::move(tokenizer)),
      store_(std::move(store)),
      ids_(std::random_device{}()) {
  choices_.resize(static_cast<size_t>(std::max(1, options_.n)));
  result_.finish_reasons.assign(choices_.size(), "stop");
}

std::vector<std::shared_ptr<EngineJob>> ChatCall::make_jobs(const EngineJob& prototype) {
  std::vector<std::shared_ptr<EngineJob>> jobs;
  const int n = static_cast<int>(choices_.size());
  for (int i = 0; i < n; ++i) {
    auto job = std::make_shared<EngineJob>();
    job->prompt = prototype.prompt;
    job->prefix_len = prototype.prefix_len;
    job->adapter = prototype.adapter;
    job->adapter_key = prototype.adapter_key;
    job->options = prototype.options;
    if (options_.seed) job->options.sampling.seed = *options_.seed + static_cast<uint64_t>(i);
    if (n > 1 && job->prompt.size() > 1) {  // the answers share all of the prompt but its last token
      job->prefix_len = job->prompt.size() - 1;
      job->prefix_uses = n;
    }
    // The engine holds the jobs, the jobs hold the call: no cycle (the call holds weak refs).
    auto self = shared_from_this();
    job->on_logprobs = [self, i](const std::vector<generate::TokenLogprob>& l) { self->on_logprobs(i, l); };
    job->on_delta = [self, i](std::string_view d) { self->on_delta(i, d); };
    job->on_done = [self, i](const generate::GenerateResult& r) { self->on_done(i, r); };
    job->on_error = [self, i](const std::string& m) { self->on_error(i, m); };
    Choice& c = choices_[static_cast<size_t>(i)];
    c.job = job;
    if (options_.parse_tools) c.parser.emplace(options_.template_kind);
    jobs.push_back(std::move(job));
  }
  running_ = n;
  return jobs;
}

void ChatCall::cancel() {
  for (const Choice& c : choices_) {
    if (auto j = c.job.lock()) j->cancelled.store(true);
  }
}

void ChatCall::on_logprobs(int i, const std::vector<generate::TokenLogprob>& lps) {
  Choice& c = choices_[static_cast<size_t>(i)];
  const int32_t known = tokenizer_->vocab_size();
  auto bytes_of = [&](int64_t id) { return id >= 0 && id < known ? tokenizer_->token_bytes(static_cast<int32_t>(id)) : std::string(); };
  for (const auto& lp : lps) {
    TokenLogprob out;
    out.token = bytes_of(lp.id);
    out.logprob = lp.logprob;
    for (const auto& [id, v] : lp.top) out.top.emplace_back(bytes_of(id), v);
    c.pending_logprobs.push_back(std::move(out));
  }
}

void ChatCall::on_delta(int i, std::string_view text) {
  Choice& c = choices_[static_cast<size_t>(i)];
  if (c.parser) return emit(i, c.parser->push(text));
  std::vector<text::ToolCallParser::Event> plain(1);
  plain[0].text = std::string(text);
  emit(i, std::move(plain));
}

void ChatCall::emit(int i, std::vector<text::ToolCallParser::Event> events) {
  Choice& c = choices_[static_cast<size_t>(i)];
  ChoiceDelta d;
  d.index = i;
  for (auto& e : events) {
    if (e.call) {
      d.tool_calls.push_back(ToolCall{new_call_id(), std::move(e.call->name), std::move(e.call->arguments)});
      c.whole.tool_calls.push_back(d.tool_calls.back());
    } else {
      d.content += e.text;
    }
  }
  c.whole.content += d.content;
  d.logprobs = std::move(c.pending_logprobs);
  c.pending_logprobs.clear();
  if (d.content.empty() && d.tool_calls.empty() && d.logprobs.empty()) return;
  if (events_.on_delta) events_.on_delta(std::move(d));
}

void ChatCall::on_done(int i, const generate::GenerateResult& r) {
  Choice& c = choices_[static_cast<size_t>(i)];
  if (c.ended) return;
  emit(i, c.parser ? c.parser->finish() : std::vector<text::ToolCallParser::Event>{});
  c.ended = true;
  c.whole.index = i;
  if (store_) store_(i, r, c.whole);
  std::string reason = generate::finish_reason_name(r.finish);
  if (!c.whole.tool_calls.empty() && r.finish == generate::FinishReason::kStop) reason = "tool_calls";
  result_.finish_reasons[static_cast<size_t>(i)] = reason;
  result_.usage.completion_tokens += static_cast<int64_t>(r.ids.size());
  if (i == 0) {  // the answers share one prompt: count it once
    result_.usage.prompt_tokens = r.prompt_tokens;
    result_.usage.cached_tokens = r.cached_tokens;
  }
  end_choice();
}

void ChatCall::on_error(int i, const std::string& message) {
  Choice& c = choices_[static_cast<size_t>(i)];
  if (c.ended) return;
  c.ended = true;
  if (!error_) {
    error_ = message;
    cancel();  // one answer failed: the request fails, the others need not finish
  }
  end_choice();
}

void ChatCall::end_choice() {
  if (--running_ > 0) return;
  if (error_) {
    if (events_.on_error) events_.on_error(Error::Internal(*error_));
  } else if (events_.on_done) {
    events_.on_done(result_);
  }
}

std::string ChatCall::new_call_id() {
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::string id = "call_";
  for (int k = 0; k < 24; ++k) id += kAlphabet[ids_() % (sizeof(kAlphabet) - 1)];
  return id;
}

}  // namespace kaizen::daemon
