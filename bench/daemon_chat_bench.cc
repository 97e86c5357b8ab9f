// kaizend under load, in-process on loopback: the real Service (engine + Store) behind
// the real HTTP server on the demo-sized model.
//  1. Bounded load: C concurrent clients x R streaming chats each; p50/p99 latency,
//     time to first token, completion tokens/s, failures. Peers in the same run: the
//     same load on an engine without continuous batching (decode_batch = 1: one chat
//     per forward, round-robin), and the same requests generated one after another
//     in-process without the server.
//  2. Time to first token with a ~2,000-token system message, prefix KV cache hit vs
//     miss (first request computes it, later ones reuse it).
//  3. A ~3,000-token prompt arriving while clients/2 chats stream: the longest pause in
//     their streams and the newcomer's TTFT, prefill in prefill_chunk-token chunks
//     between decode steps vs the whole prompt in one forward (prefill_chunk = 0).
//  4. A multi-turn conversation sent as chat clients send it (the whole history every
//     turn): TTFT per turn with the conversation cache vs without (conversation_cache_mb
//     = 0: only the system message's prefix is cached).
//
//   daemon_chat_bench [--clients 8] [--requests 4] [--max-tokens 32] [--hidden 256 --layers 4]
//                     [--stream-tokens 96] [--turns 8]
#include <algorithm>
#include <filesystem>
#include <sys/socket.h>
#include <unistd.h>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/config.h"
#include "daemon/serve/kaizen_service.h"
#include "daemon/http/server.h"
#include "http_client.h"
#include "bench/bench_args.h"
#include "learning/generate/chat_model.h"
#include "learning/generate/generator.h"
#include "learning/model/tiny.h"

namespace {

using kaizen::bench::arg;

using Clock = std::chrono::steady_clock;
using nlohmann::json;
using namespace kaizen::daemon;
using namespace kaizen::daemon::testing;

double ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}
double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5))];
}

struct StreamOutcome {
  bool ok = false;
  double total_ms = 0, ttft_ms = 0;
  double max_gap_ms = 0;  // longest pause between two chunks of text after the first
  int64_t tokens = 0;
  int64_t prompt_tokens = 0;
  int64_t cached_tokens = 0;  // usage.prompt_tokens_details.cached_tokens
  std::string text;
};

// One streaming chat over TCP; the first SSE chunk with content marks the first token.
// started (optional) is incremented when the first token arrives.
StreamOutcome streaming_messages(uint16_t port, const json& messages, int64_t max_tokens, std::atomic<int>* started) {
  StreamOutcome o;
  json body = {{"model", "kaizen"},
               {"messages", messages},
               {"temperature", 0},
               {"max_tokens", max_tokens},
               {"stream", true},
               {"stream_options", {{"include_usage", true}}}};
  auto t0 = Clock::now();
  int fd = connect_tcp(port);
  if (fd < 0) return o;
  set_timeout(fd, 120000);
  send_all(fd, make_request("POST", "/v1/chat/completions", body.dump(),
                            {std::string("Authorization: Bearer ") + kToken}));
  // Read until the first byte of body to time the first token, then the rest.
  char c;
  std::string head;
  const std::string key = "\"content\":\"";  // a chunk with non-empty text (the role chunk has none)
  while (recv(fd, &c, 1, 0) == 1) {
    head += c;
    const size_t k = head.rfind(key);
    if (k != std::string::npos && head.size() > k + key.size() && head[k + key.size()] != '"') break;
  }
  o.ttft_ms = ms(t0, Clock::now());
  if (started) ++*started;
  std::string rest;
  char buf[4096];
  ssize_t n;
  auto last = Clock::now();
  while ((n = recv(fd, buf, sizeof buf, 0)) > 0) {
    const auto now = Clock::now();
    const std::string got(buf, static_cast<size_t>(n));
    if (got.find(key) != std::string::npos) {  // a chunk with text (not usage, not [DONE])
      o.max_gap_ms = std::max(o.max_gap_ms, ms(last, now));
      last = now;
    }
    rest += got;
    if (rest.find("[DONE]") != std::string::npos) break;
  }
  close(fd);
  o.total_ms = ms(t0, Clock::now());
  const std::string all = head + rest;
  o.ok = all.find("HTTP/1.1 200") == 0 && all.find("[DONE]") != std::string::npos;
  // Each SSE event is one HTTP chunk: "data: {...}\n\n" between chunk-size lines.
  for (size_t at = all.find("data: {"); at != std::string::npos; at = all.find("data: {", at + 1)) {
    const size_t end = all.find("\n\n", at);
    if (end == std::string::npos) break;
    json c = json::parse(all.substr(at + 6, end - at - 6), nullptr, false);
    if (c.is_discarded()) continue;
    if (c.contains("usage") && c["usage"].is_object()) {
      o.tokens = c["usage"].value("completion_tokens", int64_t{0});
      o.prompt_tokens = c["usage"].value("prompt_tokens", int64_t{0});
      o.cached_tokens = c["usage"]["prompt_tokens_details"].value("cached_tokens", int64_t{0});
    }
    if (c.contains("choices") && !c["choices"].empty()) o.text += c["choices"][0]["delta"].value("content", "");
  }
  return o;
}

StreamOutcome streaming_chat(uint16_t port, const std::string& question, int64_t max_tokens,
                       std::atomic<int>* started = nullptr) {
  return streaming_messages(port, json::array({{{"role", "user"}, {"content", question}}}), max_tokens, started);
}

struct Load {
  std::vector<StreamOutcome> outcomes;
  double wall_s = 0;
  int64_t tokens() const {
    int64_t n = 0;
    for (const auto& o : outcomes) n += o.tokens;
    return n;
  }
  int64_t failed() const {
    return std::count_if(outcomes.begin(), outcomes.end(), [](const StreamOutcome& o) { return !o.ok; });
  }
  std::vector<double> latencies_ms() const {
    std::vector<double> v;
    for (const auto& o : outcomes) v.push_back(o.total_ms);
    return v;
  }
};

// `clients` threads, each sending `requests` streaming chats one after another.
Load bounded_load(uint16_t port, int clients, int requests, int64_t max_tokens) {
  Load load;
  load.outcomes.resize(static_cast<size_t>(clients * requests));
  auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      for (int r = 0; r < requests; ++r) {
        load.outcomes[static_cast<size_t>(c * requests + r)] =
            streaming_chat(port, "Client " + std::to_string(c) + " asks question " + std::to_string(r), max_tokens);
      }
    });
  }
  for (auto& t : threads) t.join();
  load.wall_s = ms(t0, Clock::now()) / 1000;
  return load;
}

// A long prompt arriving while `streams` chats stream their answers: how long their
// streams pause (the longest gap between two chunks, over all streams) and the
// newcomer's time to first token.
struct Stall {
  double max_gap_ms = 0, long_ttft_ms = 0;
  bool ok = true;
};
Stall long_prompt_stall(uint16_t port, int streams, int64_t max_tokens, const std::string& long_question) {
  Stall st;
  std::atomic<int> started{0};
  std::vector<StreamOutcome> outs(static_cast<size_t>(streams));
  std::vector<std::thread> threads;
  for (int c = 0; c < streams; ++c) {
    threads.emplace_back([&, c] {
      outs[static_cast<size_t>(c)] = streaming_chat(port, "Stream " + std::to_string(c), max_tokens, &started);
    });
  }
  while (started < streams) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // every stream is in its decode rhythm
  StreamOutcome newcomer = streaming_chat(port, long_question, 1);
  for (auto& t : threads) t.join();
  st.long_ttft_ms = newcomer.ttft_ms;
  st.ok = newcomer.ok;
  for (const auto& o : outs) {
    st.max_gap_ms = std::max(st.max_gap_ms, o.max_gap_ms);
    st.ok = st.ok && o.ok;
  }
  return st;
}

// A conversation sent as chat clients send it (the whole history every turn), each
// turn adding a paragraph of new text: every turn's TTFT and cached prompt tokens.
struct Conversation {
  std::vector<double> ttft_ms;
  std::vector<int64_t> cached, prompt;
  bool ok = true;
};
Conversation conversation(uint16_t port, int turns, int64_t answer_tokens) {
  Conversation c;
  json messages = json::array();
  for (int t = 0; t < turns; ++t) {
    std::string q = "Turn " + std::to_string(t) + ".";
    for (int i = 0; i < 12; ++i) {
      q += " Our Sabitech team " + std::to_string(t * 12 + i) + " reviewed ticket " + std::to_string(900 + i) +
           " after Chorei.";
    }
    messages.push_back({{"role", "user"}, {"content", q}});
    StreamOutcome o = streaming_messages(port, messages, answer_tokens, nullptr);
    c.ok = c.ok && o.ok;
    c.ttft_ms.push_back(o.ttft_ms);
    c.cached.push_back(o.cached_tokens);
    c.prompt.push_back(o.prompt_tokens);
    messages.push_back({{"role", "assistant"}, {"content", o.text}});
  }
  return c;
}

// Runs `fn(port)` against the real Service + Server started from `config`.
template <class Fn>
bool with_server(const Config& config, Fn fn) {
  auto made = make_kaizen_service(config, StartupProgress{});
  if (!made.ok()) {
    std::fprintf(stderr, "service: %s\n", made.error().message.c_str());
    return false;
  }
  auto service = std::move(made.value());
  ServerOptions opts;
  opts.use_socket_activation = false;
  opts.handle_signals = false;
  opts.reload_source.path.clear();
  Server server(config, *service, opts);
  if (!server.start().empty()) return false;
  std::thread runner([&] { server.run(); });
  fn(server.tcp_port());
  server.stop();
  runner.join();
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  const int clients = std::stoi(arg(argc, argv, "clients", "8"));
  const int requests = std::stoi(arg(argc, argv, "requests", "4"));
  const int64_t max_tokens = std::stoll(arg(argc, argv, "max-tokens", "32"));
  kaizen::model::TinyModelSpec spec;
  spec.hidden_size = std::stoll(arg(argc, argv, "hidden", "256"));
  spec.num_layers = std::stoll(arg(argc, argv, "layers", "4"));
  spec.intermediate_size = spec.hidden_size * 3;
  spec.head_dim = spec.hidden_size / spec.num_heads;
  const std::string tmp = "/tmp/kaizen-daemon-bench-" + std::to_string(getpid());
  kaizen::model::write_tiny_model(spec, tmp + "/model", KAIZEN_BENCH_TOKENIZER_DIR);

  std::string company;  // ~2,000 tokens of company facts for the system message
  for (int i = 0; company.size() < 9000; ++i) {
    company += "Fact " + std::to_string(i) + ": Sabitech holds Chorei (朝礼), the morning meeting, at 8:" +
               std::to_string(10 + i % 50) + " in office " + std::to_string(100 + i) + ". ";
  }
  Config config = TestServer::default_config();
  config.model = tmp + "/model";
  config.state_dir = tmp + "/state";
  config.device = "cpu";
  config.threads = 2;
  config.system_prompt = "You are {agent_name}. Company facts: " + company;
  config.limits.max_active_chats = clients;
  config.limits.max_tokens = 4096;

  std::string long_question;  // ~3,000 tokens the prefix cache knows nothing of
  for (int i = 0; long_question.size() < 12000; ++i) {
    long_question += "Ticket " + std::to_string(7000 + i) + ": the printer on floor " + std::to_string(i % 9) +
                     " jams after " + std::to_string(3 + i % 40) + " pages. ";
  }
  const int streams = std::max(1, clients / 2);
  const int64_t stream_tokens = std::stoll(arg(argc, argv, "stream-tokens", "96"));

  // TTFT with the long system message (the first request misses, the next ones hit),
  // then the bounded load with continuous batching (decode_batch = clients), then a
  // long prompt arriving while chats stream (prefill in prefill_chunk-token chunks).
  StreamOutcome miss;
  std::vector<double> hit_ttft;
  Load batched, one_by_one;
  Stall chunked, whole;
  const int turns = std::max(1, std::stoi(arg(argc, argv, "turns", "8")));
  Conversation kept, not_kept;
  config.decode_batch = clients;
  const int64_t prefill_chunk = config.prefill_chunk, conversation_cache_mb = config.conversation_cache_mb;
  if (!with_server(config, [&](uint16_t port) {
        miss = streaming_chat(port, "Chorei là gì?", 1);
        for (int i = 0; i < 3; ++i) hit_ttft.push_back(streaming_chat(port, "Question " + std::to_string(i), 1).ttft_ms);
        batched = bounded_load(port, clients, requests, max_tokens);
        chunked = long_prompt_stall(port, streams, stream_tokens, long_question);
        kept = conversation(port, turns, max_tokens);
      }))
    return 1;
  // Peer 1: the same load on an engine that runs one chat per forward, round-robin.
  config.decode_batch = 1;
  config.state_dir = tmp + "/state-one-by-one";
  if (!with_server(config, [&](uint16_t port) { one_by_one = bounded_load(port, clients, requests, max_tokens); }))
    return 1;
  // Peer 2: the long prompt prefilled in one forward (prefill_chunk = 0), and the
  // conversation without the conversation cache (only the system prefix is cached).
  config.decode_batch = clients;
  config.prefill_chunk = 0;
  config.conversation_cache_mb = 0;
  config.state_dir = tmp + "/state-peer";
  if (!with_server(config, [&](uint16_t port) {
        streaming_chat(port, "Chorei là gì?", 1);  // the system message's prefix, as above
        whole = long_prompt_stall(port, streams, stream_tokens, long_question);
        not_kept = conversation(port, turns, max_tokens);
      }))
    return 1;
  auto m = kaizen::generate::ChatModel::load(config.model, {"cpu", "float32"});
  const size_t long_tokens = m.encode(long_question).size();
  const size_t sys_tokens = m.encode(m.chat_template->render({{"system", config.system_prompt}}, {false, false})).size();
  const std::vector<StreamOutcome>& outcomes = batched.outcomes;
  const double wall_s = batched.wall_s;

  const std::vector<double> lat = batched.latencies_ms();
  const int64_t tokens = batched.tokens(), failed = batched.failed();
  std::vector<double> ttft;
  for (const auto& o : outcomes) ttft.push_back(o.ttft_ms);
  // Peer 2: the same work generated sequentially in-process (no HTTP, no engine, no log).
  kaizen::generate::GenerateOptions go;
  go.max_new_tokens = max_tokens;
  go.eos_token_ids = m.eos_token_ids;
  int64_t peer_tokens = 0;
  auto p0 = Clock::now();
  for (int i = 0; i < clients * requests; ++i) {
    auto ids = m.encode_chat({{"system", config.system_prompt}, {"user", "Client asks question " + std::to_string(i)}},
                             {true, false});
    peer_tokens += static_cast<int64_t>(kaizen::generate::generate(*m.decoder, m.tokenizer, ids, nullptr, go).ids.size());
  }
  const double peer_s = ms(p0, Clock::now()) / 1000;

  std::printf("model: tiny qwen3 hidden %lld, %lld layers; system message %zu tokens; 2 threads\n",
              (long long)spec.hidden_size, (long long)spec.num_layers, sys_tokens);
  std::printf("\nTTFT with the system message        ms\n");
  std::printf("  prefix cache miss (first)   %9.1f\n", miss.ttft_ms);
  std::printf("  prefix cache hit (median)   %9.1f\n", pct(hit_ttft, 0.5));
  std::printf("  ratio miss/hit              %9.1fx\n", miss.ttft_ms / std::max(1e-9, pct(hit_ttft, 0.5)));
  std::printf("\nload: %d clients x %d streaming chats, max_tokens %lld\n", clients, requests, (long long)max_tokens);
  std::printf("  failed                      %9lld of %zu\n", (long long)failed, outcomes.size());
  std::printf("  latency p50 / p99 (ms)      %9.1f / %.1f\n", pct(lat, 0.5), pct(lat, 0.99));
  std::printf("  TTFT p50 / p99 (ms)         %9.1f / %.1f\n", pct(ttft, 0.5), pct(ttft, 0.99));
  std::printf("  completion tokens/s         %9.1f (server, concurrent, decode_batch %d)\n", tokens / wall_s,
              clients);
  std::printf("  peer tokens/s               %9.1f (server, concurrent, decode_batch 1: one chat per forward; "
              "%lld failed, p50 %.1f ms)\n",
              one_by_one.tokens() / one_by_one.wall_s, (long long)one_by_one.failed(),
              pct(one_by_one.latencies_ms(), 0.5));
  std::printf("  ratio batched/one-by-one    %9.2fx\n",
              (tokens / wall_s) / std::max(1e-9, one_by_one.tokens() / one_by_one.wall_s));
  std::printf("  peer tokens/s               %9.1f (in-process, sequential, uncached system message)\n",
              peer_tokens / peer_s);
  std::printf("  ratio server/peer           %9.2fx\n", (tokens / wall_s) / (peer_tokens / peer_s));
  std::printf("\na %zu-token prompt arrives while %d chats stream (%lld tokens each)\n", long_tokens, streams,
              (long long)stream_tokens);
  std::printf("  %-28s %16s %16s\n", "", "longest pause ms", "its TTFT ms");
  std::printf("  prefill_chunk %-14lld %16.1f %16.1f%s\n", (long long)prefill_chunk, chunked.max_gap_ms,
              chunked.long_ttft_ms, chunked.ok ? "" : "  (FAILED)");
  std::printf("  prefill_chunk 0 (peer)       %16.1f %16.1f%s\n", whole.max_gap_ms, whole.long_ttft_ms,
              whole.ok ? "" : "  (FAILED)");
  std::printf("  ratio peer/chunked           %15.2fx %15.2fx\n", whole.max_gap_ms / std::max(1e-9, chunked.max_gap_ms),
              whole.long_ttft_ms / std::max(1e-9, chunked.long_ttft_ms));
  std::printf("\na conversation of %d turns, the whole history sent each turn (%lld new prompt tokens per turn)\n",
              turns, (long long)((kept.prompt.back() - kept.prompt.front()) / std::max(1, turns - 1)));
  std::printf("  %-6s %14s %22s %22s\n", "turn", "prompt tokens", "TTFT ms (cached)", "peer TTFT ms (cached)");
  double sum_kept = 0, sum_peer = 0;
  for (int t = 0; t < turns; ++t) {
    std::printf("  %-6d %14lld %14.1f (%5lld) %14.1f (%5lld)\n", t + 1, (long long)kept.prompt[t], kept.ttft_ms[t],
                (long long)kept.cached[t], not_kept.ttft_ms[t], (long long)not_kept.cached[t]);
    if (t > 0) sum_kept += kept.ttft_ms[t], sum_peer += not_kept.ttft_ms[t];
  }
  std::printf("  turns 2-%d mean TTFT: %.1f ms with conversation_cache_mb = %lld vs %.1f ms with 0 (peer): %.2fx\n",
              turns, sum_kept / std::max(1, turns - 1), (long long)conversation_cache_mb,
              sum_peer / std::max(1, turns - 1), sum_peer / std::max(1e-9, sum_kept));
  std::filesystem::remove_all(tmp);
  return failed == 0 && one_by_one.failed() == 0 && chunked.ok && whole.ok && kept.ok && not_kept.ok ? 0 : 1;
}
