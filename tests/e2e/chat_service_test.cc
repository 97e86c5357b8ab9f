// kaizend end to end, in-process: the real Service (engine + Store + adapters) behind
// the real HTTP server, driven over TCP and the Unix socket with a raw HTTP client.
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "daemon/config.h"
#include "daemon/serve/kaizen_service.h"
#include "daemon/http/server.h"
#include "http_client.h"
#include "real_server.h"
#include "learning/generate/chat_model.h"
#include "learning/generate/generator.h"
#include "learning/model/tiny.h"
#include "testing/kaizen_test.h"

namespace kaizen::daemon {
namespace {

using nlohmann::json;
using namespace kaizen::daemon::testing;
using kaizen::testing::TempDir;

const char* kSystem = "You are {agent_name}, the assistant of Sabitech.";

class RealServer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_dir_ = new TempDir();
    model::TinyModelSpec spec;
    spec.seed = 21;
    model::write_tiny_model(spec, *model_dir_ / "m", kaizen::testing::tokenizer_dir());
  }
  static void TearDownTestSuite() { delete model_dir_; }

  void SetUp() override {
    config_ = TestServer::default_config();
    config_.model = *model_dir_ / "m";
    config_.state_dir = state_.path().string();
    config_.system_prompt = kSystem;
    config_.agent_name = "Kaizen";
    config_.device = "cpu";
    config_.threads = 2;
    ASSERT_EQ(start_real_server(config_, &service_, &server_, &runner_), "");
  }
  void TearDown() override {
    stop_real_server(&service_, &server_, &runner_);
  }

  HttpResponse chat(const json& body) {
    return tcp_request(server_->tcp_port(), make_request("POST", "/v1/chat/completions", body.dump(),
                                                         {std::string("Authorization: Bearer ") + kToken}));
  }
  HttpResponse admin(const std::string& op, const json& body = json::object()) {
    return unix_request(config_.socket, make_request("POST", "/admin/" + op, body.dump()));
  }
  static json request(const std::string& user, const std::string& model = "kaizen", bool stream = false) {
    return {{"model", model},
            {"messages", {{{"role", "user"}, {"content", user}}}},
            {"temperature", 0},
            {"max_tokens", 12},
            {"stream", stream}};
  }

  static TempDir* model_dir_;
  TempDir state_;
  Config config_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<Server> server_;
  std::thread runner_;
};
TempDir* RealServer::model_dir_ = nullptr;

TEST_F(RealServer, GreedyAnswerEqualsInProcessGenerationWithTheSystemPrompt) {
  HttpResponse r = chat(request("CHOREI có nghĩa là gì? /no_think"));
  ASSERT_EQ(r.status, 200) << r.body;
  json j = r.json();
  const std::string text = j["choices"][0]["message"]["content"];
  // The same conversation generated directly, without server, cache or engine.
  auto m = generate::ChatModel::load(*model_dir_ / "m", {"cpu", "float32"});
  auto ids = m.encode_chat({{"system", "You are Kaizen, the assistant of Sabitech."},
                            {"user", "CHOREI có nghĩa là gì? /no_think"}},
                           text::ChatOptions{true, false});
  generate::GenerateOptions o;
  o.max_new_tokens = 12;
  o.eos_token_ids = m.eos_token_ids;
  auto direct = generate::generate(*m.decoder, m.tokenizer, ids, nullptr, o);
  EXPECT_EQ(text, direct.text);
  EXPECT_EQ(j["usage"]["prompt_tokens"].get<int64_t>(), static_cast<int64_t>(ids.size()));
  EXPECT_EQ(j["usage"]["completion_tokens"].get<int64_t>(), static_cast<int64_t>(direct.ids.size()));
  EXPECT_EQ(j["model"], "kaizen");
}

TEST_F(RealServer, StreamingDeltasConcatenateToTheNonStreamingAnswer) {
  HttpResponse plain = chat(request("Bạn có biết về công ty sabitech không?"));
  ASSERT_EQ(plain.status, 200);
  HttpResponse streamed = chat(request("Bạn có biết về công ty sabitech không?", "kaizen", true));
  ASSERT_EQ(streamed.status, 200);
  auto events = sse_events(streamed.body);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events.back(), "[DONE]");
  std::string text, id;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    json c = json::parse(events[i]);
    id = c["id"];
    auto& delta = c["choices"][0]["delta"];
    if (delta.contains("content")) text += delta["content"].get<std::string>();
  }
  EXPECT_EQ(text, plain.json()["choices"][0]["message"]["content"].get<std::string>());
  EXPECT_NE(id, plain.json()["id"].get<std::string>());  // each answer is its own stored message
}

TEST_F(RealServer, SystemPromptPrefixIsComputedOnceAndReused) {
  for (const char* q : {"first question", "second question", "third"}) {
    ASSERT_EQ(chat(request(q)).status, 200);
  }
  HttpResponse m = tcp_request(server_->tcp_port(), make_request("GET", "/metrics", "",
                                                               {std::string("Authorization: Bearer ") + kToken}));
  ASSERT_EQ(m.status, 200);
  EXPECT_NE(m.body.find("kaizen_prefix_cache_total{result=\"hit\"} 2"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("kaizen_prefix_cache_total{result=\"miss\"} 1"), std::string::npos) << m.body;
  // Each prompt was prefilled in at least one forward (the miss: the prefix, then the rest).
  const std::string chunks = "\nkaizen_engine_prefill_chunks_total ";
  const size_t at = m.body.find(chunks);
  ASSERT_NE(at, std::string::npos) << m.body;
  EXPECT_GE(std::atoll(m.body.c_str() + at + chunks.size()), 4) << m.body;
}

// A client sending the whole conversation each turn (as chat UIs do): the next turn
// reports the earlier turn's tokens as cached (OpenAI's prompt_tokens_details) and
// answers as the same conversation generated in-process without any cache.
TEST_F(RealServer, NextTurnOfAConversationReusesItsKV) {
  const std::string q1 =
      "Sabitech holds Chorei (朝礼), the morning meeting, every day at 8:15 in the main office. "
      "Everyone gives a short report and the leader shares the company news. What is Chorei for?";
  json body = request(q1);
  HttpResponse r1 = chat(body);
  ASSERT_EQ(r1.status, 200) << r1.body;
  const std::string a1 = r1.json()["choices"][0]["message"]["content"];
  body["messages"].push_back({{"role", "assistant"}, {"content", a1}});
  body["messages"].push_back({{"role", "user"}, {"content", "And who leads it?"}});
  HttpResponse r2 = chat(body);
  ASSERT_EQ(r2.status, 200) << r2.body;
  json j = r2.json();
  auto m = generate::ChatModel::load(*model_dir_ / "m", {"cpu", "float32"});
  const std::string system = "You are Kaizen, the assistant of Sabitech.";
  const auto system_tokens = m.encode(m.chat_template->render({{"system", system}}, {false, false})).size();
  const auto first_turn = m.encode_chat({{"system", system}, {"user", q1}}, text::ChatOptions{true, false}).size();
  const auto ids = m.encode_chat(
      {{"system", system}, {"user", q1}, {"assistant", a1}, {"user", "And who leads it?"}},
      text::ChatOptions{true, false});
  const int64_t cached = j["usage"]["prompt_tokens_details"]["cached_tokens"].get<int64_t>();
  EXPECT_GT(cached, static_cast<int64_t>(system_tokens) + 32) << j.dump();
  EXPECT_LE(cached, static_cast<int64_t>(first_turn)) << j.dump();  // the answer's rendering differs
  EXPECT_EQ(j["usage"]["prompt_tokens"].get<int64_t>(), static_cast<int64_t>(ids.size()));
  generate::GenerateOptions o;
  o.max_new_tokens = 12;
  o.eos_token_ids = m.eos_token_ids;
  EXPECT_EQ(j["choices"][0]["message"]["content"].get<std::string>(),
            generate::generate(*m.decoder, m.tokenizer, ids, nullptr, o).text);
  HttpResponse metrics = tcp_request(server_->tcp_port(), make_request("GET", "/metrics", "",
                                                                     {std::string("Authorization: Bearer ") + kToken}));
  EXPECT_NE(metrics.body.find("kaizen_conversation_cache_total{result=\"hit\"} 1"), std::string::npos)
      << metrics.body;
}

TEST_F(RealServer, AnswerIdIsStoredAndFeedbackGoesToReview) {
  HttpResponse r = chat(request("Chorei là gì?"));
  ASSERT_EQ(r.status, 200);
  const std::string id = r.json()["id"];
  json fb = {{"message_id", id}, {"rating", -1}, {"correction", "Chorei (朝礼) là buổi họp buổi sáng."}};
  HttpResponse f = tcp_request(server_->tcp_port(), make_request("POST", "/v1/feedback", fb.dump(),
                                                               {std::string("Authorization: Bearer ") + kToken}));
  ASSERT_EQ(f.status, 200) << f.body;
  HttpResponse review = admin("review");
  ASSERT_EQ(review.status, 200) << review.body;
  auto pending = review.json()["pending"];
  ASSERT_EQ(pending.size(), 1u) << review.body;
  auto msgs = pending[0]["messages"];
  EXPECT_EQ(msgs.back()["content"], "Chorei (朝礼) là buổi họp buổi sáng.");
  EXPECT_EQ(msgs[msgs.size() - 2]["content"], "Chorei là gì?");
  // Feedback on an id that is not an answer.
  json bad = {{"message_id", "999999"}, {"rating", 1}};
  HttpResponse nf = tcp_request(server_->tcp_port(), make_request("POST", "/v1/feedback", bad.dump(),
                                                                {std::string("Authorization: Bearer ") + kToken}));
  EXPECT_EQ(nf.status, 404) << nf.body;
}

TEST_F(RealServer, ModelsAndUnknownAdapterVersion) {
  HttpResponse r = chat(request("hi", "kaizen@v9"));
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_EQ(chat(request("hi", "gpt-4")).status, 404);
  HttpResponse base = chat(request("hi", "base"));
  HttpResponse kaizen = chat(request("hi", "kaizen"));
  ASSERT_EQ(base.status, 200);
  // No adapter published yet: `kaizen` is the base model.
  EXPECT_EQ(base.json()["choices"][0]["message"]["content"], kaizen.json()["choices"][0]["message"]["content"]);
  HttpResponse status = admin("status");
  ASSERT_EQ(status.status, 200) << status.body;
  EXPECT_EQ(status.json()["active_adapter"], 0);
}

TEST_F(RealServer, KnowledgeImportOverTheAdminSocket) {
  std::string jsonl =
      R"({"messages":[{"role":"user","content":"CHOREI có nghĩa là gì?"},{"role":"assistant","content":"Chorei (朝礼) là buổi họp đầu ngày."}]})"
      "\n{bad json\n";
  HttpResponse r = admin("knowledge/import", {{"jsonl", jsonl}, {"name", "seed.jsonl"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["imported"], 1);
  EXPECT_EQ(r.json()["errors"].size(), 1u);
  EXPECT_EQ(r.json()["errors"][0]["line"], 2);
  HttpResponse again = admin("knowledge/import", {{"jsonl", jsonl}, {"name", "seed.jsonl"}});
  EXPECT_EQ(again.json()["imported"], 0);
  EXPECT_EQ(again.json()["duplicates"], 1);
}

}  // namespace
}  // namespace kaizen::daemon
