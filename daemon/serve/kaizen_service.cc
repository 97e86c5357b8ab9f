#include "daemon/kaizen_service.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "daemon/adapter_registry.h"
#include "daemon/engine.h"
#include "daemon/learner.h"
#include "daemon/log.h"
#include "learning/generate/chat_model.h"
#include "learning/model/threads.h"
#include "storage/import.h"
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

std::string read_file(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(what + " '" + path + "' cannot be read");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) {
    s.replace(p, from.size(), to);
  }
}

Error from_status(const storage::Status& st) {
  if (st.IsNotFound()) return Error::NotFound(st.message());
  if (st.IsInvalidArgument()) return Error::InvalidRequest(st.message());
  if (st.IsBusy()) return Error::Unavailable(st.message(), 2);
  // The request is well-formed but the record's state forbids it (activate a rejected or
  // pruned adapter, review an example twice).
  if (st.IsAborted() || st.IsAlreadyExists()) return Error::Conflict(st.message());
  return Error::Internal(st.ToString());
}

std::string peer_name(const PeerInfo& p) {
  if (p.transport == PeerInfo::Transport::kUnix) return "uid:" + std::to_string(p.uid);
  return p.address;
}

// "7" or "v7" -> 7; 0 when not a version.
uint64_t parse_version(const json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() > 0) return static_cast<uint64_t>(v.get<int64_t>());
  if (!v.is_string()) return 0;
  std::string s = v.get<std::string>();
  if (!s.empty() && (s[0] == 'v' || s[0] == 'V')) s = s.substr(1);
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 18) return 0;
  return std::stoull(s);
}

}  // namespace

std::string render_system_prompt(const Config& config) {
  std::string tmpl = config.system_prompt;
  if (!config.system_prompt_file.empty()) tmpl = read_file(config.system_prompt_file, "system_prompt_file");
  if (tmpl.empty()) return "";
  std::string company;
  if (!config.company_info_file.empty()) company = read_file(config.company_info_file, "company_info_file");
  replace_all(tmpl, "{agent_name}", config.agent_name);
  replace_all(tmpl, "{agent_creator}", config.agent_creator);
  replace_all(tmpl, "{company_info}", company);
  return tmpl;
}

class KaizenService : public Service {
 public:
  KaizenService(Config config, std::shared_ptr<const generate::ChatModel> model,
                std::unique_ptr<storage::Store> store, std::string system_prompt)
      : config_(std::move(config)),
        model_(std::move(model)),
        store_(std::move(store)),
        system_prompt_(std::move(system_prompt)),
        registry_(config_.state_dir, model_->decoder->config(),
                  adapter::PeftLoadOptions{model_->decoder->options().device, model_->decoder->options().dtype},
                  *store_) {
    EngineOptions eo;
    eo.max_active = static_cast<size_t>(std::max<int64_t>(1, config_.limits.max_active_chats));
    eo.max_batch = static_cast<size_t>(std::max<int64_t>(1, config_.decode_batch));
    eo.prefill_chunk = static_cast<size_t>(std::max<int64_t>(0, config_.prefill_chunk));
    eo.conversation_cache_bytes = std::max<int64_t>(0, config_.conversation_cache_mb) << 20;
    eo.max_queue = static_cast<size_t>(std::max<int64_t>(1, config_.limits.max_queued_chats));
    engine_ = std::make_unique<Engine>(model_, eo);
    LearnerOptions lo;
    lo.state_dir = config_.state_dir;
    lo.system_prompt = system_prompt_;
    lo.train = config_.train;
    lo.gate = config_.gate;
    learner_ = std::make_unique<Learner>(lo, *store_, registry_, *engine_, model_);
    started_ms_ = now_ms();
  }

  // The learner trains on the engine's model and swaps through the registry: stop it first.
  ~KaizenService() override {
    learner_.reset();
    engine_.reset();
  }

  Result<ChatTicket> submit_chat(ChatRequest req, ChatEvents events) override {
    // 1. Which adapter answers.
    std::shared_ptr<const adapter::Adapter> adapter;
    uint64_t version = 0;
    std::string model_name = req.model;
    if (req.model == "base") {
    } else if (req.model == "kaizen" || req.model.empty()) {
      ActiveAdapter a = registry_.active();
      adapter = a.adapter;
      version = a.version;
      model_name = version ? "kaizen@v" + std::to_string(version) : "kaizen";
    } else if (req.model.rfind("kaizen@", 0) == 0) {
      version = parse_version(req.model.substr(7));
      if (version == 0) return Error::ModelNotFound(req.model);
      auto got = registry_.get(version);
      if (!got.ok()) return Error::ModelNotFound(req.model);
      adapter = *got;
    } else {
      return Error::ModelNotFound(req.model);
    }

    // 2. The prompt: the configured system message when the request has none.
    std::vector<text::ChatMessage> messages;
    const bool has_system = !req.messages.empty() && req.messages.front().role == "system";
    if (!has_system && !system_prompt_.empty()) messages.push_back({"system", system_prompt_});
    for (const auto& m : req.messages) messages.push_back({m.role, m.content});
    text::ChatOptions co;
    co.add_generation_prompt = true;
    co.enable_thinking = req.enable_thinking.value_or(false);
    auto job = std::make_shared<EngineJob>();
    try {
      job->prompt = model_->encode_chat(messages, co);
      if (messages.front().role == "system") {
        // The system turn alone tokenizes to a prefix of the prompt (it ends in a special
        // token), so its KV can be shared; verified, never assumed.
        std::vector<int64_t> prefix = model_->encode(
            model_->chat_template->render({messages.front()}, text::ChatOptions{false, co.enable_thinking}));
        if (prefix.size() < job->prompt.size() &&
            std::equal(prefix.begin(), prefix.end(), job->prompt.begin())) {
          job->prefix_len = prefix.size();
        }
      }
    } catch (const std::exception& e) {
      return Error::InvalidRequest(std::string("cannot render the prompt: ") + e.what(), "messages");
    }
    const int64_t context = model_->decoder->config().max_position_embeddings;
    if (static_cast<int64_t>(job->prompt.size()) + req.max_tokens > context) {
      return Error::InvalidRequest("prompt (" + std::to_string(job->prompt.size()) + " tokens) + max_tokens (" +
                                       std::to_string(req.max_tokens) + ") exceeds the model's context of " +
                                       std::to_string(context) + " tokens",
                                   "messages", "context_length_exceeded");
    }

    // 3. Sampling: request values, else the model's generation_config.json.
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
    job->adapter = adapter;
    job->adapter_key = adapter ? "v" + std::to_string(version) : "base";

    // 4. Log the request; the answer's id is reserved now so the response can carry it.
    storage::Conversation conv;
    conv.user = req.user.empty() ? peer_name(req.peer) : req.user;
    conv.model = req.model;
    for (const auto& m : req.messages) {
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
      if (rec.role != "system" && rec.role != "user" && rec.role != "assistant") continue;
      rec.content = m.content;
      auto st = store_->append_message(rec);
      if (!st.ok()) return from_status(st.status());
    }
    auto answer_id = store_->reserve_message_id();
    if (!answer_id.ok()) return from_status(answer_id.status());

    const int64_t start = now_ms();
    const uint64_t id = *answer_id;
    storage::Store* store = store_.get();
    job->on_delta = events.on_delta;
    job->on_done = [store, id, conv_id, version, start, events](const generate::GenerateResult& r) {
      storage::Message rec;
      rec.id = id;
      rec.conversation_id = conv_id;
      rec.role = "assistant";
      rec.content = r.text;
      rec.prompt_tokens = static_cast<uint32_t>(r.prompt_tokens);
      rec.completion_tokens = static_cast<uint32_t>(r.ids.size());
      rec.adapter_version = version;
      rec.latency_ms = static_cast<uint32_t>(now_ms() - start);
      auto st = store->append_message(rec);
      if (!st.ok()) logger()->error("event=log_answer_failed message_id={} error=\"{}\"", id, st.status().ToString());
      ChatResult result;
      result.finish_reason = generate::finish_reason_name(r.finish);
      result.usage.prompt_tokens = r.prompt_tokens;
      result.usage.cached_tokens = r.cached_tokens;
      result.usage.completion_tokens = static_cast<int64_t>(r.ids.size());
      if (events.on_done) events.on_done(result);
    };
    job->on_error = [events](const std::string& message) {
      if (events.on_error) events.on_error(Error::Internal(message));
    };
    if (!engine_->submit(job)) {
      return Error::TooManyRequests("the engine queue is full; retry shortly",
                                    static_cast<int>(config_.limits.retry_after_s));
    }
    ChatTicket ticket;
    ticket.id = std::to_string(id);
    ticket.model = model_name;
    ticket.created = start / 1000;
    std::weak_ptr<EngineJob> weak = job;
    ticket.cancel = [weak] {
      if (auto j = weak.lock()) j->cancelled.store(true);
    };
    return ticket;
  }

  std::vector<ModelEntry> list_models() override {
    std::vector<ModelEntry> out = {{"kaizen", started_ms_ / 1000, "kaizen"}, {"base", started_ms_ / 1000, "kaizen"}};
    storage::PageRequest page;
    page.limit = 1000;
    auto adapters = store_->list_adapters(page);
    if (adapters.ok()) {
      for (const auto& a : adapters->items) {
        if (a.state == storage::AdapterState::kRejected && !a.pinned) continue;
        out.push_back({"kaizen@v" + std::to_string(a.version), a.created_ms / 1000, "kaizen"});
      }
    }
    return out;
  }

  Result<FeedbackAck> submit_feedback(FeedbackRequest req) override {
    uint64_t mid = parse_version(json(req.message_id));
    if (mid == 0) return Error::InvalidRequest("message_id must be the id of a chat completion", "message_id");
    auto msg = store_->get_message(mid);
    if (!msg.ok()) {
      if (msg.status().IsNotFound()) {
        return Error::NotFound("message " + req.message_id + " not found (is its answer still being generated?)",
                               "message_not_found");
      }
      return from_status(msg.status());
    }
    if (msg->role != "assistant") return Error::InvalidRequest("message " + req.message_id + " is not an answer", "message_id");
    storage::Feedback fb;
    fb.message_id = mid;
    fb.rating = req.rating;
    fb.correction = req.correction.value_or("");
    fb.author = req.user.empty() ? peer_name(req.peer) : req.user;
    std::optional<storage::Example> example;
    if ((req.rating > 0) || (req.rating < 0 && !fb.correction.empty())) {
      // The conversation up to the rated answer becomes a proposal for the review queue.
      storage::PageRequest page;
      page.limit = 1000;
      auto msgs = store_->list_messages(msg->conversation_id, page);
      if (!msgs.ok()) return from_status(msgs.status());
      storage::Example ex;
      for (const auto& m : msgs->items) {
        if (m.id == mid) break;
        ex.messages.push_back({m.role, m.content});
      }
      ex.messages.push_back({"assistant", req.rating > 0 ? msg->content : fb.correction});
      ex.source = req.rating > 0 ? storage::ExampleSource::kFeedback : storage::ExampleSource::kCorrection;
      ex.author = fb.author;
      ex.provenance = "feedback on message " + std::to_string(mid) + " by " + fb.author;
      const auto& trusted = config_.train.trusted_authors;
      if (std::find(trusted.begin(), trusted.end(), fb.author) != trusted.end()) {
        // train.trusted_authors: approved on arrival, like an operator import.
        ex.state = storage::ExampleState::kApproved;
        ex.reviewer = "trusted author " + fb.author;
        fb.review = storage::ReviewState::kAccepted;
      } else {
        ex.state = storage::ExampleState::kPending;
      }
      example = std::move(ex);
    }
    auto stored = store_->add_feedback(fb, example);
    if (!stored.ok()) return from_status(stored.status());
    FeedbackAck ack;
    ack.feedback_id = std::to_string(stored->id);
    ack.status = !example                                              ? "recorded"
                 : stored->duplicate                                   ? "duplicate"  // linked to the existing example
                 : example->state == storage::ExampleState::kApproved ? "approved"
                                                                       : "queued_for_review";
    return ack;
  }

  Health health() override {
    Health h;
    h.ready = true;
    ActiveAdapter a = registry_.active();
    h.detail = std::string("model ") + model_->decoder->config().architecture + ", adapter " +
               (a.version ? "v" + std::to_string(a.version) : "none");
    return h;
  }

  std::string metrics_text() override {
    EngineStats s = engine_->stats();
    ActiveAdapter a = registry_.active();
    std::ostringstream o;
    o << "# HELP kaizen_engine_queue_depth Chat jobs waiting for the engine.\n"
      << "# TYPE kaizen_engine_queue_depth gauge\nkaizen_engine_queue_depth " << engine_->waiting() << "\n"
      << "# TYPE kaizen_engine_active gauge\nkaizen_engine_active " << engine_->active() << "\n"
      << "# TYPE kaizen_completion_tokens_total counter\nkaizen_completion_tokens_total " << s.tokens_generated << "\n"
      << "# TYPE kaizen_prompt_tokens_total counter\nkaizen_prompt_tokens_total " << s.prompt_tokens << "\n"
      << "# TYPE kaizen_engine_jobs_total counter\nkaizen_engine_jobs_total{result=\"done\"} " << s.jobs_done
      << "\nkaizen_engine_jobs_total{result=\"failed\"} " << s.jobs_failed << "\n"
      << "# HELP kaizen_engine_decode_forwards_total Batched decode forwards (rows / forwards = mean batch).\n"
      << "# TYPE kaizen_engine_decode_forwards_total counter\nkaizen_engine_decode_forwards_total "
      << s.decode_forwards << "\n"
      << "# TYPE kaizen_engine_decode_rows_total counter\nkaizen_engine_decode_rows_total " << s.decode_rows << "\n"
      << "# HELP kaizen_conversation_cache_total Prompts that continued a kept chat's KV.\n"
      << "# TYPE kaizen_conversation_cache_total counter\nkaizen_conversation_cache_total{result=\"hit\"} "
      << s.conversation_hits << "\n"
      << "# TYPE kaizen_conversation_tokens_reused_total counter\nkaizen_conversation_tokens_reused_total "
      << s.conversation_tokens_reused << "\n"
      << "# TYPE kaizen_conversation_cache_bytes gauge\nkaizen_conversation_cache_bytes "
      << s.conversation_cache_bytes << "\n"
      << "# HELP kaizen_engine_prefill_chunks_total Prefill forwards (a prompt fed in n chunks counts n).\n"
      << "# TYPE kaizen_engine_prefill_chunks_total counter\nkaizen_engine_prefill_chunks_total "
      << s.prefill_chunks << "\n"
      << "# TYPE kaizen_prefix_cache_total counter\nkaizen_prefix_cache_total{result=\"hit\"} " << s.prefix_hits
      << "\nkaizen_prefix_cache_total{result=\"miss\"} " << s.prefix_misses << "\n"
      << "# TYPE kaizen_prefix_tokens_reused_total counter\nkaizen_prefix_tokens_reused_total "
      << s.prefix_tokens_reused << "\n"
      << "# HELP kaizen_active_adapter_version The adapter `kaizen` answers with (0 = base).\n"
      << "# TYPE kaizen_active_adapter_version gauge\nkaizen_active_adapter_version " << a.version << "\n"
      << learner_->metrics_text();
    return o.str();
  }

  Result<json> admin(const std::string& op, const json& args, const PeerInfo& peer) override {
    logger()->info("event=admin op={} uid={} pid={}", op, peer.uid, peer.pid);
    try {
      return admin_op(op, args, peer);
    } catch (const std::exception& e) {
      return Error::InvalidRequest(std::string("bad arguments for ") + op + ": " + e.what());
    }
  }

 private:
  Result<json> admin_op(const std::string& op, const json& args, const PeerInfo& peer) {
    auto page_of = [&] {
      storage::PageRequest p;
      if (args.contains("cursor")) p.cursor = parse_version(args["cursor"]);
      if (args.contains("limit")) p.limit = std::max<uint64_t>(1, parse_version(args["limit"]));
      return p;
    };
    if (op == "status") {
      ActiveAdapter a = registry_.active();
      EngineStats s = engine_->stats();
      json j = {{"model", model_->dir},
                {"architecture", model_->decoder->config().architecture},
                {"device", model_->decoder->options().device.str()},
                {"dtype", model::dtype_name(model_->decoder->options().dtype)},
                {"active_adapter", a.version},
                {"queue_depth", engine_->waiting()},
                {"active_chats", engine_->active()},
                {"completed_chats", s.jobs_done},
                {"uptime_s", (now_ms() - started_ms_) / 1000},
                {"state_dir", config_.state_dir},
                {"training", learner_->running() ? "running" : "idle"}};
      if (!registry_.load_problem().empty()) j["adapter_problem"] = registry_.load_problem();
      auto replay = store_->replay_stats();
      j["replay"] = {{"size", replay.size}, {"seen", replay.seen}, {"capacity", replay.capacity}};
      return j;
    }
    if (op == "adapters") {
      auto page = store_->list_adapters(page_of());
      if (!page.ok()) return from_status(page.status());
      json items = json::array();
      for (const auto& a : page->items) items.push_back(storage::to_json(a));
      return json{{"active", registry_.active().version}, {"adapters", items}, {"next_cursor", page->next_cursor}};
    }
    if (op == "adapters/show" || op == "adapters/pin" || op == "adapters/unpin") {
      const uint64_t v = parse_version(args.value("version", json()));
      if (v == 0) return Error::InvalidRequest("give version (e.g. \"v3\")", "version");
      if (op != "adapters/show") {
        auto st = store_->set_adapter_pinned(v, op == "adapters/pin");
        if (!st.ok()) return from_status(st);
      }
      auto a = store_->get_adapter(v);
      if (!a.ok()) return from_status(a.status());
      return storage::to_json(*a);
    }
    if (op == "adapters/rollback") {
      // To VERSION, to "base" (no adapter), or by default to the newest published version
      // older than the active one, which is the base model when there is none.
      const uint64_t current = registry_.active().version;
      uint64_t v = 0;  // 0 = the base model
      if (args.contains("version")) {
        const json& want = args["version"];
        if (!(want.is_string() && want.get<std::string>() == "base")) {
          v = parse_version(want);
          if (v == 0) return Error::InvalidRequest("give a version (e.g. \"v3\") or \"base\"", "version");
        }
      } else {
        if (current == 0) return Error::NotFound("nothing to roll back: the base model is serving");
        storage::PageRequest p;
        p.limit = 1000;
        auto page = store_->list_adapters(p);
        if (!page.ok()) return from_status(page.status());
        for (const auto& a : page->items) {
          if (a.version < current && a.state != storage::AdapterState::kRejected &&
              a.state != storage::AdapterState::kPruned) {
            v = a.version;
            break;
          }
        }
      }
      if (v == current) return json{{"active", v}, {"previous", current}};
      auto st = registry_.activate(v);
      if (!st.ok()) return from_status(st);
      // The old version's cached prefixes; the base model's stay (`model: base` uses them).
      if (current != 0) engine_->drop_prefixes("v" + std::to_string(current));
      logger()->info("event=rollback from=v{} to=v{} uid={}", current, v, peer.uid);
      return json{{"active", v}, {"previous", current}};
    }
    if (op == "review") {
      auto page = store_->list_pending_review(page_of());
      if (!page.ok()) return from_status(page.status());
      json items = json::array();
      for (const auto& e : page->items) items.push_back(storage::to_json(e));
      return json{{"pending", items}, {"next_cursor", page->next_cursor}};
    }
    if (op == "review/approve" || op == "review/reject") {
      const uint64_t id = parse_version(args.value("id", json()));
      if (id == 0) return Error::InvalidRequest("give the example id", "id");
      auto st = store_->review_example(id, op == "review/approve", "uid:" + std::to_string(peer.uid));
      if (!st.ok()) return from_status(st);
      return json{{"id", id}, {"state", op == "review/approve" ? "approved" : "rejected"}};
    }
    if (op == "knowledge/import") {
      storage::ImportReport report;
      storage::Status st;
      if (args.contains("jsonl")) {
        std::istringstream in(args.at("jsonl").get<std::string>());
        st = storage::import_chat_jsonl(*store_, in, args.value("name", std::string("upload.jsonl")), &report);
      } else if (args.contains("path")) {
        st = storage::import_chat_jsonl_file(*store_, args.at("path").get<std::string>(), &report);
      } else {
        return Error::InvalidRequest("give \"path\" (a file kaizend can read) or \"jsonl\" (the contents)");
      }
      if (!st.ok()) return from_status(st);
      json errors = json::array();
      for (const auto& e : report.errors) errors.push_back({{"line", e.line}, {"reason", e.reason}});
      return json{{"lines", report.lines}, {"imported", report.imported}, {"duplicates", report.duplicates},
                  {"errors", errors}};
    }
    if (op == "feedback/export") {
      storage::PageRequest p = page_of();
      auto page = store_->list_examples(storage::ExampleState::kApproved, p);
      if (!page.ok()) return from_status(page.status());
      json items = json::array();
      for (const auto& e : page->items) items.push_back(storage::to_json(e));
      return json{{"examples", items}, {"next_cursor", page->next_cursor}};
    }
    if (op == "db/backup") {
      const std::string dir = args.value("dir", (fs::path(config_.state_dir) / "backups").string());
      storage::BackupDescription d;
      auto st = store_->backup(dir, &d);
      if (!st.ok()) return from_status(st);
      return json{{"dir", dir}, {"id", d.id}, {"size_bytes", d.size_bytes}, {"files", d.files}};
    }
    if (op == "train/now") {
      const bool all = args.contains("all_approved") &&
                       (args["all_approved"].is_boolean() ? args["all_approved"].get<bool>()
                                                          : args["all_approved"] == "true");
      auto started = learner_->start_run(all);
      if (auto* err = std::get_if<Learner::StartError>(&started)) {
        if (err->http_status == 409) return Error::Conflict(err->message);
        Error e;
        e.http_status = err->http_status;
        e.type = err->http_status >= 500 ? "server_error" : "invalid_request_error";
        e.message = err->message;
        return e;
      }
      logger()->info("event=train_now run={} uid={}", std::get<uint64_t>(started), peer.uid);
      return json{{"run_id", std::get<uint64_t>(started)}, {"state", "running"}};
    }
    if (op == "train/status") {
      json j = learner_->status();
      storage::PageRequest p;
      p.limit = 5;
      auto runs = store_->list_runs(p);
      if (runs.ok()) {
        json recent = json::array();
        for (const auto& r : runs->items) recent.push_back(storage::to_json(r));
        j["recent_runs"] = recent;
      }
      return j;
    }
    if (op == "train/cancel") {
      const bool cancelled = learner_->cancel();
      logger()->info("event=train_cancel cancelled={} uid={}", cancelled, peer.uid);
      return json{{"cancelled", cancelled}};
    }
    if (op == "runs") {
      auto page = store_->list_runs(page_of());
      if (!page.ok()) return from_status(page.status());
      json items = json::array();
      for (const auto& r : page->items) items.push_back(storage::to_json(r));
      return json{{"runs", items}, {"next_cursor", page->next_cursor}};
    }
    if (op == "runs/show") {
      const uint64_t id = parse_version(args.value("id", json()));
      if (id == 0) return Error::InvalidRequest("give the run id", "id");
      auto r = store_->get_run(id);
      if (!r.ok()) return from_status(r.status());
      return storage::to_json(*r);
    }
    return Error::NotFound("unknown admin operation '" + op + "'");
  }

  Config config_;
  std::shared_ptr<const generate::ChatModel> model_;
  std::unique_ptr<storage::Store> store_;
  std::string system_prompt_;
  AdapterRegistry registry_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Learner> learner_;
  int64_t started_ms_ = 0;
};

Result<std::unique_ptr<Service>> make_kaizen_service(const Config& config, const StartupProgress& progress) {
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
      std::make_unique<KaizenService>(config, model, std::move(*store), std::move(system_prompt)));
}

}  // namespace kaizen::daemon
