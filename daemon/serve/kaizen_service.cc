#include "daemon/serve/kaizen_service.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "daemon/learn/adapter_lifecycle.h"
#include "daemon/learn/learner.h"
#include "daemon/log.h"
#include "daemon/serve/adapter_registry.h"
#include "daemon/serve/admin_api.h"
#include "daemon/serve/chat_call.h"
#include "daemon/serve/engine.h"
#include "daemon/serve/feedback.h"
#include "daemon/serve/params.h"
#include "daemon/serve/service_metrics.h"
#include "learning/generate/chat_model.h"
#include "learning/grammar/vocab.h"
#include "learning/model/threads.h"
#include "storage/store.h"

namespace kaizen::daemon {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Error from_status(const storage::Status& st) { return http_error(failure_from(st)); }

}  // namespace

class KaizenService : public Service {
 public:
  KaizenService(Config config, std::shared_ptr<const generate::ChatModel> model,
                std::unique_ptr<storage::Store> store, std::string system_prompt, std::shared_ptr<ChatLimits> limits)
      : config_(std::move(config)),
        model_(std::move(model)),
        store_(std::move(store)),
        system_prompt_(std::move(system_prompt)),
        registry_(config_.state_dir, model_->decoder->config(),
                  adapter::PeftLoadOptions{model_->decoder->options().device, model_->decoder->options().dtype},
                  *store_) {
    EngineOptions eo;
    eo.limits = limits ? std::move(limits)
                       : std::make_shared<ChatLimits>(config_.limits.max_active_chats, config_.limits.max_queued_chats);
    eo.max_batch = static_cast<size_t>(std::max<int64_t>(1, config_.decode_batch));
    eo.prefill_chunk = static_cast<size_t>(std::max<int64_t>(0, config_.prefill_chunk));
    eo.conversation_cache_bytes = std::max<int64_t>(0, config_.conversation_cache_mb) << 20;
    engine_ = std::make_unique<Engine>(model_, eo);
    LifecycleOptions lco;
    lco.state_dir = config_.state_dir;
    lco.keep_versions = config_.train.keep_versions;
    lco.publish_pause_ms = config_.train.publish_pause_ms;
    Engine* engine = engine_.get();
    lifecycle_ = std::make_unique<AdapterLifecycle>(lco, *store_, registry_,
                                                    [engine](const std::string& key) { engine->drop_prefixes(key); });
    lifecycle_->recover();
    LearnerOptions lo;
    lo.system_prompt = system_prompt_;
    lo.train = config_.train;
    lo.gate = config_.gate;
    learner_ = std::make_unique<Learner>(lo, *store_, *lifecycle_, registry_, *engine_, model_);
    started_ms_ = now_ms();
    admin_ = std::make_unique<AdminApi>(
        AdminContext{config_, *model_, *store_, registry_, *lifecycle_, *learner_, *engine_, started_ms_});
  }

  // The learner trains on the engine's model and publishes through the lifecycle: stop it first.
  ~KaizenService() override {
    admin_.reset();
    learner_.reset();
    lifecycle_.reset();
    engine_.reset();
  }

  Result<ChatTicket> submit_chat(ChatRequest req, ChatEvents events) override {
    Result<Answerer> who = answerer(req.model);
    if (!who.ok()) return who.error();
    const uint64_t version = who.value().version;
    std::vector<text::ChatMessage> messages = prompt_messages(req);
    EngineJob job;
    if (auto err = encode_prompt(req, messages, &job)) return *err;
    if (auto err = set_sampling(req, &job)) return *err;
    job.adapter = who.value().adapter;
    job.adapter_key = adapter_key(job.adapter ? version : 0);

    // Log the request; the answers' ids are reserved now so the response can carry them.
    // A full or failing disk does not stop chat: the answer is served unlogged (id
    // "unlogged-N", message id 0: feedback cannot name it) and counted.
    Result<std::pair<uint64_t, std::vector<uint64_t>>> logged = log_request(req, messages);
    if (!logged.ok() && store_->write_health().ok()) return logged.error();
    const bool unlogged = !logged.ok();
    const uint64_t unlogged_n = unlogged ? unlogged_chats_.fetch_add(1) + 1 : 0;
    const uint64_t conv_id = unlogged ? 0 : logged.value().first;
    const std::vector<uint64_t> ids =
        unlogged ? std::vector<uint64_t>(static_cast<size_t>(std::max(1, req.n)), 0)
                 : logged.value().second;
    const int64_t start = now_ms();
    storage::Store* store = store_.get();
    auto store_answer = [store, ids, conv_id, version, start](
                            int i, const generate::GenerateResult& r, const ChoiceDelta& answer) {
      if (conv_id == 0) return;  // unlogged: the store refused the request's log
      storage::Message rec;
      rec.id = ids[static_cast<size_t>(i)];
      rec.conversation_id = conv_id;
      rec.role = "assistant";
      // As the API returned it: the text outside the calls, and the calls with their ids
      // (which the client's tool messages then answer).
      rec.content = answer.content;
      for (const auto& c : answer.tool_calls) rec.tool_calls.push_back({c.id, c.name, c.arguments});
      rec.prompt_tokens = static_cast<uint32_t>(r.prompt_tokens);
      rec.completion_tokens = static_cast<uint32_t>(r.ids.size());
      rec.adapter_version = version;
      rec.latency_ms = static_cast<uint32_t>(now_ms() - start);
      auto st = store->append_message(rec);
      if (!st.ok())
        logger()->error("event=log_answer_failed message_id={} error=\"{}\"", rec.id,
                        st.status().ToString());
    };
    ChatCallOptions co;
    co.n = req.n;
    co.parse_tools = !req.tools.empty() && req.tool_choice != ToolChoice::kNone && !req.prompt;
    co.template_kind = model_->chat_template->kind();
    co.seed = req.seed;
    auto call = std::make_shared<ChatCall>(co, std::move(events), model_->tokenizer, store_answer);
    if (!engine_->submit_all(call->make_jobs(job))) {
      return Error::TooManyRequests("the engine queue is full; retry shortly",
                                    static_cast<int>(config_.limits.retry_after_s));
    }
    ChatTicket ticket;
    ticket.id = unlogged ? "unlogged-" + std::to_string(unlogged_n) : std::to_string(ids.front());
    ticket.model = who.value().model_name;
    ticket.created = start / 1000;
    std::weak_ptr<ChatCall> weak = call;
    ticket.cancel = [weak] {
      if (auto c = weak.lock()) c->cancel();
    };
    return ticket;
  }

  // Which adapter answers a request's `model`: base, kaizen (the active one) or kaizen@vN.
  struct Answerer {
    std::shared_ptr<const adapter::Adapter> adapter;  // null = the base model
    uint64_t version = 0;
    std::string model_name;  // for the response: "kaizen@v7", "base"
  };
  Result<Answerer> answerer(const std::string& model) {
    Answerer a;
    a.model_name = model;
    if (model == "base") return a;
    if (model == "kaizen" || model.empty()) {
      ActiveAdapter active = registry_.active();
      a.adapter = active.adapter;
      a.version = active.version;
      a.model_name = a.version ? "kaizen@" + adapter_key(a.version) : "kaizen";
      return a;
    }
    if (model.rfind("kaizen@", 0) != 0) return Error::ModelNotFound(model);
    auto v = parse_version(json(model.substr(7)), "model");
    if (!v.ok()) return Error::ModelNotFound(model);
    auto got = registry_.get(*v);
    if (!got.ok()) return Error::ModelNotFound(model);
    a.version = *v;
    a.adapter = *got;
    return a;
  }

  // The prompt: the configured system message when the request has none.
  std::vector<text::ChatMessage> prompt_messages(const ChatRequest& req) const {
    std::vector<text::ChatMessage> messages;
    const bool has_system = !req.messages.empty() && req.messages.front().role == "system";
    if (!has_system && !system_prompt_.empty()) messages.push_back({"system", system_prompt_});
    for (const auto& m : req.messages) {
      text::ChatMessage t;
      t.role = m.role;
      t.content = m.content;
      for (const auto& c : m.tool_calls) t.tool_calls.push_back({c.id, c.name, c.arguments, c.arguments_is_object});
      t.tool_call_id = m.tool_call_id;
      messages.push_back(std::move(t));
    }
    return messages;
  }

  // Tokenizes the prompt into job->prompt (and job->prefix_len when the system turn's KV
  // can be shared); an error when it cannot be rendered or does not fit the context.
  std::optional<Error> encode_prompt(const ChatRequest& req, const std::vector<text::ChatMessage>& messages,
                                     EngineJob* job) const {
    text::ChatOptions co;
    co.add_generation_prompt = true;
    co.enable_thinking = req.enable_thinking.value_or(false);
    for (const auto& t : req.tools) co.tools.push_back(t.raw);
    try {
      if (req.prompt) {  // /v1/completions: the text as it is
        job->prompt = model_->encode(*req.prompt);
        if (job->prompt.empty()) return Error::InvalidRequest("'prompt' is empty", "prompt");
      } else {
        job->prompt = model_->encode_chat(messages, co);
      }
      if (!req.prompt && messages.front().role == "system") {
        // The system turn alone tokenizes to a prefix of the prompt (it ends in a special
        // token), so its KV can be shared; verified, never assumed.
        text::ChatOptions system_only = co;
        system_only.add_generation_prompt = false;
        std::vector<int64_t> prefix;
        try {
          prefix = model_->encode(model_->chat_template->render({messages.front()}, system_only));
        } catch (const std::exception&) {
          // Some templates refuse a system turn alone (Llama-3.1 with tools in the first
          // user turn): no shared prefix then, the prompt itself rendered fine.
        }
        if (!prefix.empty() && prefix.size() < job->prompt.size() &&
            std::equal(prefix.begin(), prefix.end(), job->prompt.begin())) {
          job->prefix_len = prefix.size();
        }
      }
    } catch (const std::exception& e) {
      return Error::InvalidRequest(std::string("cannot render the prompt: ") + e.what(), req.prompt ? "prompt" : "messages");
    }
    const int64_t context = model_->decoder->config().max_position_embeddings;
    if (static_cast<int64_t>(job->prompt.size()) + req.max_tokens > context) {
      return Error::InvalidRequest("prompt (" + std::to_string(job->prompt.size()) + " tokens) + max_tokens (" +
                                       std::to_string(req.max_tokens) + ") exceeds the model's context of " +
                                       std::to_string(context) + " tokens",
                                   req.prompt ? "prompt" : "messages", "context_length_exceeded");
    }
    return std::nullopt;
  }

  // Sampling: request values, else the model's generation_config.json; the constraint
  // (response_format, or tool_choice required / a named function) and logprobs.
  std::optional<Error> set_sampling(const ChatRequest& req, EngineJob* job) {
    const auto& g = model_->generation;
    auto& so = job->options.sampling;
    so.temperature = req.temperature.value_or(g.do_sample ? g.temperature : 0.0);
    so.top_p = req.top_p.value_or(g.do_sample ? g.top_p : 1.0);
    so.top_k = req.top_k.value_or(g.do_sample ? g.top_k : 0);
    so.min_p = req.min_p.value_or(0.0);
    so.repetition_penalty = req.repetition_penalty.value_or(1.0);
    so.seed = req.seed;
    job->options.max_new_tokens = req.max_tokens;
    job->options.stop = req.stop;
    job->options.eos_token_ids = model_->eos_token_ids;
    job->options.top_logprobs = req.top_logprobs;
    job->options.grammar = req.grammar;
    if (req.tool_choice == ToolChoice::kRequired || req.tool_choice == ToolChoice::kNamed) {
      Result<std::shared_ptr<const grammar::Grammar>> forced = forced_call_grammar(req, model_->chat_template->kind());
      if (!forced.ok()) return forced.error();
      job->options.grammar = forced.value();
    }
    if (job->options.grammar) job->options.grammar_vocab = grammar_vocab();
    return std::nullopt;
  }

  // The tokenizer's vocabulary for constrained decoding, built on first use.
  std::shared_ptr<const grammar::Vocab> grammar_vocab() {
    std::call_once(vocab_once_, [this] { vocab_ = grammar::Vocab::from_tokenizer(*model_->tokenizer); });
    return vocab_;
  }

  // Stores the conversation and its messages; returns (conversation id, the answer's
  // reserved message id).
  Result<std::pair<uint64_t, std::vector<uint64_t>>> log_request(const ChatRequest& req,
                                                                 std::vector<text::ChatMessage> messages) {
    if (req.prompt) messages = {text::ChatMessage{"user", *req.prompt}};
    storage::Conversation conv;
    conv.user = req.user.empty() ? peer_name(req.peer) : req.user;
    conv.model = req.model;
    if (!req.tools.empty() && !req.prompt) {
      nlohmann::ordered_json tools = nlohmann::ordered_json::array();
      for (const auto& t : req.tools) tools.push_back(t.raw);
      conv.tools_json = tools.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    }
    for (const auto& m : messages) {
      if (m.role == "user") {
        conv.title = m.content.substr(0, 80);
        break;
      }
    }
    auto created = store_->create_conversation(conv);
    if (!created.ok()) return from_status(created.status());
    const uint64_t conv_id = created->id;
    for (const auto& m : messages) {
      storage::Message rec;
      rec.conversation_id = conv_id;
      rec.role = m.role == "developer" ? "system" : m.role;
      if (rec.role != "system" && rec.role != "user" && rec.role != "assistant" && rec.role != "tool") continue;
      rec.content = m.content;
      for (const auto& c : m.tool_calls) rec.tool_calls.push_back({c.id, c.name, c.arguments, c.arguments_is_object});
      rec.tool_call_id = m.tool_call_id;
      auto st = store_->append_message(rec);
      if (!st.ok()) return from_status(st.status());
    }
    std::vector<uint64_t> ids;
    for (int i = 0; i < std::max(1, req.n); ++i) {
      auto answer_id = store_->reserve_message_id();
      if (!answer_id.ok()) return from_status(answer_id.status());
      ids.push_back(*answer_id);
    }
    return std::make_pair(conv_id, std::move(ids));
  }

  std::vector<ModelEntry> list_models() override {
    std::vector<ModelEntry> out = {{"kaizen", started_ms_ / 1000, "kaizen"}, {"base", started_ms_ / 1000, "kaizen"}};
    storage::PageRequest page;
    page.limit = 1000;
    auto adapters = store_->list_adapters(page);
    if (adapters.ok()) {
      for (const auto& a : adapters->items) {
        if (!servable(a)) continue;  // what `kaizen@vN` would refuse is not listed
        out.push_back({"kaizen@" + adapter_key(a.version), a.created_ms / 1000, "kaizen"});
      }
    }
    return out;
  }

  Result<FeedbackAck> submit_feedback(FeedbackRequest req) override {
    return record_feedback(*store_, config_.train.trusted_authors, std::move(req));
  }

  Health health() override {
    Health h;
    h.ready = true;
    ActiveAdapter a = registry_.active();
    h.detail = std::string("model ") + model_->decoder->config().architecture + ", adapter " +
               (a.version ? adapter_key(a.version) : "none");
    if (storage::Status w = store_->write_health(); !w.ok()) h.storage_error = w.ToString();
    return h;
  }

  std::string metrics_text() override {
    return engine_metrics_text(*engine_, registry_.active().version) + learner_->metrics_text() +
           store_metrics_text(*store_, unlogged_chats_.load());
  }

  Result<json> admin(const std::string& method, const std::string& op, const json& args,
                     const PeerInfo& peer) override {
    return admin_->call(method, op, args, peer);
  }

 private:
  Config config_;
  std::shared_ptr<const generate::ChatModel> model_;
  std::unique_ptr<storage::Store> store_;
  std::string system_prompt_;
  AdapterRegistry registry_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<AdapterLifecycle> lifecycle_;
  std::unique_ptr<Learner> learner_;
  std::unique_ptr<AdminApi> admin_;
  int64_t started_ms_ = 0;
  std::atomic<uint64_t> unlogged_chats_{0};
  std::once_flag vocab_once_;
  std::shared_ptr<const grammar::Vocab> vocab_;
};

Result<std::unique_ptr<Service>> make_kaizen_service(const Config& config, const StartupProgress& progress,
                                                     std::shared_ptr<ChatLimits> limits) {
  const model::ComputeThreads threads = model::set_compute_threads(static_cast<int>(config.threads));
  std::string system_prompt;
  try {
    system_prompt = render_system_prompt(config);
  } catch (const std::exception& e) {
    return Error::Internal(e.what());
  }
  std::shared_ptr<const generate::ChatModel> model;
  try {
    if (progress.status) progress.status("loading model " + config.model);
    if (progress.extend_timeout) progress.extend_timeout(std::chrono::seconds(120));
    model::LoadOptions lo;
    lo.device = config.device.empty() ? "auto" : config.device;
    lo.mmap_weights = config.mmap_weights;
    model = std::make_shared<const generate::ChatModel>(generate::ChatModel::load(config.model, lo));
  } catch (const std::exception& e) {
    return Error::Internal(std::string("cannot load the model: ") + e.what());
  }
  if (progress.status) progress.status("opening the database");
  std::error_code ec;
  fs::create_directories(fs::path(config.state_dir) / "adapters", ec);
  auto store = storage::Store::open((fs::path(config.state_dir) / "db").string());
  if (!store.ok()) return Error::Internal("cannot open the database: " + store.status().ToString());
  logger()->info("event=service_ready model={} device={} threads=\"{}\" system_prompt_chars={}", config.model,
               model->decoder->options().device.str(), threads.describe(), system_prompt.size());
  return std::unique_ptr<Service>(
      std::make_unique<KaizenService>(config, model, std::move(*store), std::move(system_prompt), std::move(limits)));
}

}  // namespace kaizen::daemon
