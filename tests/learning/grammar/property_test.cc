// Property test against an independent validator: random schemas from the supported subset,
// random walks over the real Qwen3 vocabulary under each (a random allowed token each step,
// sometimes steering towards the end, some walks with a token budget), then every text must
// parse as JSON and validate against its schema in Python's jsonschema
// (tools/ref/json_schema_check.py). Along the way: every sampled token is accepted, spot
// checks of masked-in and masked-out tokens agree with accept_token, a budget walk always
// ends complete within its budget, and no walk runs into a dead end.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <random>

#include "grammar_test_util.h"
#include "schema_gen.h"
#include "learning/grammar/json_schema.h"
#include "learning/grammar/matcher.h"
#include "learning/grammar/tool_call.h"

namespace kaizen::grammar {
namespace {

using Json = nlohmann::ordered_json;
using testing::SchemaGen;

struct Walker {
  std::shared_ptr<const Vocab> vocab;
  std::mt19937 rng;
  std::vector<uint32_t> mask;
  int full_check_step = -1;  // compare every token at this step
  static inline int full_checks = 0;

  int pick(int n) { return static_cast<int>(rng() % static_cast<uint32_t>(n)); }

  // The index-th set bit of the mask.
  int32_t nth_allowed(int64_t index) {
    for (size_t w = 0; w < mask.size(); ++w) {
      const int c = __builtin_popcount(mask[w]);
      if (index >= c) {
        index -= c;
        continue;
      }
      for (int b = 0; b < 32; ++b) {
        if ((mask[w] >> b & 1) && index-- == 0) return static_cast<int32_t>(w * 32 + b);
      }
    }
    return -1;
  }

  bool in_mask(int32_t id) const { return mask[id / 32] >> (id % 32) & 1; }

  // Whether m would take id within the budget (brute force, on a copy).
  static bool fits(const Matcher& m, int32_t id, int64_t tokens_left) {
    Matcher probe = m;
    if (!probe.accept_token(id)) return false;
    return tokens_left <= 0 || static_cast<int64_t>(probe.min_bytes_to_finish()) <= tokens_left - 2;
  }

  // One walk; returns the text, or fails the test. budget 0 = none.
  std::string walk(const std::shared_ptr<const Grammar>& g, int64_t budget, const std::string& what) {
    std::string text;
    walk_into(g, budget, what, text);
    return text;
  }

  void walk_into(const std::shared_ptr<const Grammar>& g, int64_t budget, const std::string& what,
                 std::string& text) {
    Matcher m(g, vocab);
    mask.assign(vocab->mask_words(), 0);
    for (int step = 0;; ++step) {
      const int64_t left = budget > 0 ? budget - step : 0;
      if (m.must_finish()) break;
      if (m.can_finish() && (pick(100) < 10 || (budget > 0 && left <= 1))) break;
      if (budget > 0 && left <= 1) {
        ADD_FAILURE() << what << ": budget " << budget << " ran out before the end: " << text;
        return;
      }
      if (step > 3000) {
        ADD_FAILURE() << what << ": walk does not end: " << text.substr(0, 200);
        return;
      }
      m.fill_mask(mask.data(), left);
      int64_t count = 0;
      for (uint32_t w : mask) count += __builtin_popcount(w);
      if (count == 0) {
        if (m.can_finish()) break;
        ADD_FAILURE() << what << ": dead end after " << text;
        return;
      }
      if (step == full_check_step) {  // the whole mask against brute force
        ++full_checks;
        for (int32_t id = 0; id < vocab->size(); ++id) {
          ASSERT_EQ(in_mask(id), fits(m, id, left)) << what << ": token " << id << " after " << text;
        }
      }
      if (step % 7 == 3) {  // spot checks: the mask agrees with accept_token
        for (int i = 0; i < 12; ++i) {
          const int32_t in = nth_allowed(pick(static_cast<int>(count)));
          EXPECT_TRUE(fits(m, in, left))
              << what << ": masked in, refused: " << in << " after " << text;
          const int32_t any = pick(vocab->size());
          if (!in_mask(any)) {
            EXPECT_FALSE(fits(m, any, left))
                << what << ": masked out, fits: " << any << " after " << text;
          }
        }
      }
      int32_t id = nth_allowed(pick(static_cast<int>(count)));
      if (step > 120 || pick(100) < 15) id = towards_end(m, count, id);
      if (!m.accept_token(id)) {
        ADD_FAILURE() << what << ": a masked-in token was refused: " << id << " after " << text;
        return;
      }
      text += vocab->token_bytes(id);
    }
    EXPECT_TRUE(m.can_finish()) << what;
  }

  // Among the allowed single bytes and a few random allowed tokens, one that leaves the
  // fewest bytes to finish.
  int32_t towards_end(const Matcher& m, int64_t count, int32_t fallback) {
    std::vector<int32_t> candidates;
    for (int i = 0; i < 8; ++i) candidates.push_back(nth_allowed(pick(static_cast<int>(count))));
    for (int32_t id : single_bytes()) {
      if (in_mask(id)) candidates.push_back(id);
    }
    int32_t best = fallback;
    size_t best_fin = SIZE_MAX;
    for (int32_t id : candidates) {
      Matcher probe = m;
      if (!probe.accept_token(id)) continue;
      const size_t fin = probe.min_bytes_to_finish();
      if (fin < best_fin || (fin == best_fin && pick(2))) best = id, best_fin = fin;
    }
    return best;
  }

  const std::vector<int32_t>& single_bytes() {
    static std::vector<int32_t> ids = [this] {
      std::vector<int32_t> out;
      for (int32_t id = 0; id < vocab->size(); ++id) {
        if (vocab->token_bytes(id).size() == 1) out.push_back(id);
      }
      return out;
    }();
    return ids;
  }
};

TEST(Property, RandomSchemasAndWalksValidateInJsonschema) {
  const auto vocab = testing::qwen3_vocab();
  std::vector<nlohmann::json> lines;
  std::vector<std::string> what;
  int64_t steps = 0;
  for (uint32_t i = 0; i < 200; ++i) {
    SchemaGen gen(1000 + i);
    const Json schema = i % 2 == 0 ? gen.object(0) : gen.schema(0);
    std::shared_ptr<const Grammar> g;
    try {
      g = json_schema_grammar(schema);
    } catch (const SchemaError& e) {
      ADD_FAILURE() << "schema " << i << " refused: " << e.what() << "\n" << schema.dump();
      continue;
    }
    const size_t shortest = Matcher(g, vocab).min_bytes_to_finish();
    for (uint32_t w = 0; w < 3; ++w) {
      Walker walker{vocab, std::mt19937(7919 * i + w), {}};
      if (i % 20 == 7) walker.full_check_step = static_cast<int>(w);  // 30 full checks
      // A budget below the shortest answer (+ EOS) cannot be kept: start there at least.
      const int64_t fits = static_cast<int64_t>(shortest) + 1;
      const int64_t budget = w == 0   ? 0
                             : w == 1 ? std::max<int64_t>(fits, 20 + walker.pick(181))
                                      : fits + walker.pick(8);
      const std::string label = "schema " + std::to_string(i) + " walk " + std::to_string(w) +
                                " budget " + std::to_string(budget) + " " + schema.dump();
      const std::string text = walker.walk(g, budget, label);
      steps += static_cast<int64_t>(text.size());
      lines.push_back(
          {{"schema", nlohmann::json::parse(schema.dump())}, {"text_hex", testing::hex(text)}});
      what.push_back(label + " " + schema.dump() + "\n  text: " + text);
    }
  }
  for (uint32_t i = 0; i < 20; ++i) {  // json_object
    Walker walker{vocab, std::mt19937(31 + i), {}};
    const std::string label = "json_object walk " + std::to_string(i);
    const std::string text =
        walker.walk(json_object_grammar(), i % 2 ? 30 + walker.pick(100) : 0, label);
    lines.push_back({{"schema", {{"type", "object"}}}, {"text_hex", testing::hex(text)}});
    what.push_back(label + "\n  text: " + text);
  }
  for (uint32_t i = 0; i < 20; ++i) {  // tool calls
    SchemaGen gen(5000 + i);
    std::vector<ToolSpec> tools;
    nlohmann::json spec = nlohmann::json::array();
    static const char* kTools[] = {"get_weather", "get", "search", "run_code"};
    for (int t = 0, n = 1 + gen.pick(3); t < n; ++t) {
      const Json params = gen.coin(20) ? Json(nullptr) : gen.object(1);
      const nlohmann::json plain = nlohmann::json::parse(params.dump());
      tools.push_back({kTools[t], plain, params});
      spec.push_back({{"name", kTools[t]}, {"parameters", plain}});
    }
    const bool parallel = gen.coin(50);
    Walker walker{vocab, std::mt19937(77 + i), {}};
    const std::string label = "tool_call " + std::to_string(i);
    const std::string text =
        walker.walk(tool_call_grammar(tools, parallel), i % 2 ? 200 : 0, label);
    lines.push_back({{"tools", spec}, {"parallel", parallel}, {"text_hex", testing::hex(text)}});
    what.push_back(label + " " + spec.dump() + "\n  text: " + text);
  }
  std::printf("property test: %zu texts, %lld bytes, %d whole masks checked\n", lines.size(),
              static_cast<long long>(steps), Walker::full_checks);
  EXPECT_GE(Walker::full_checks, 20);
  if (const char* dump = std::getenv("KAIZEN_GRAMMAR_DUMP")) {  // for eyeballing: JSON lines
    std::ofstream out(dump);
    for (const auto& l : lines) out << l.dump() << "\n";
  }
  if (!testing::have_python_jsonschema()) {
    GTEST_SKIP()
        << "python3 jsonschema missing (apt-get install python3-jsonschema): texts not validated";
  }
  const auto results = testing::run_schema_check(lines);
  ASSERT_EQ(results.size(), lines.size());
  int bad = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    if (results[i] != "ok") {
      ++bad;
      ADD_FAILURE() << what[i] << "\n  " << results[i];
    }
  }
  EXPECT_EQ(bad, 0);
}

}  // namespace
}  // namespace kaizen::grammar
