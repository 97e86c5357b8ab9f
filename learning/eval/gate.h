// The acceptance gate of the continual-learning loop (docs/DESIGN.md §6 "Continual learning
// loop", step 4): a candidate adapter replaces the active one only when it
//   learn:  knows the new examples — teacher-forced answer-token accuracy >= learn_min
//           and greedy exact match >= learn_exact_min;
//   retain: still knows earlier facts — accuracy on a held-out replay set drops at most
//           retain_max_drop below the active adapter's, and so does the greedy exact
//           match there (teacher forcing hides a changed answer after its first token:
//           a contradicting fact barely moves token accuracy, it flips the answer);
//   (and, when the new examples carry paraphrases of their questions that were held out
//   of training, answer-token accuracy there >= paraphrase_min: knowing a fact, not one
//   wording of it);
//   canary: still behaves like the base model elsewhere — on a fixed set of general
//           prompts, the base model's own greedy answers keep their probability: the mean
//           KL(base || candidate) over those answers' tokens is at most canary_max_kl
//           (nats), and at most canary_max_leak of the candidate's own answers there
//           begin like one and the same answer it was trained on (an adapter that
//           answers everything with a company fact).
// judge() is a pure function of the measured numbers and the thresholds, so the
// decision can be tested (and re-derived from a run record) without a model.
//
// Defaults (GateThresholds::for_model, README "Gate defaults"), measured with gate_bench:
// real checkpoints (hidden >= 256) allow 1 nat and a quarter of the canary answers. The
// random demo model (hidden < 256, trained with the demo recipe's 100x learning rate)
// has no general behaviour to keep: every adapter moves its distributions by ~5.5-5.8
// nats, whether it learned 4 facts, 48 facts or to answer everything with one fact, and
// it answers many unrelated prompts with something it was taught (up to 92% of them for
// 4 short facts, spread over those facts). There the KL limit only catches a diverged
// run, and the collapse check is "nearly every canary prompt with one and the same
// answer" (an adapter trained on one answer for everything: 100%).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "learning/adapter/adapter.h"
#include "learning/model/decoder.h"
#include "learning/text/chat_template.h"
#include "learning/text/tokenizer.h"
#include "learning/train/dataset.h"

namespace kaizen::eval {

struct GateThresholds {
  double learn_min = 0.90;        // answer-token accuracy on the new examples, [0, 1]
  double learn_exact_min = 0.0;   // share of greedy answers equal to the expected text, [0, 1]
  double retain_max_drop = 0.05;  // allowed accuracy drop on the held-out replay set, [0, 1]
  double canary_max_kl = 1.0;     // mean KL(base || candidate) in nats over the base model's
                                  // answers to general prompts
  double canary_max_leak = 0.25;  // largest share of general prompts the candidate answers
                                  // like one trained example, [0, 1]
  double paraphrase_min = 0.0;    // answer-token accuracy on held-out paraphrases of the new
                                  // examples' questions, [0, 1]; 0 = measured, not required

  // The defaults for a model: as above for real checkpoints (hidden >= 256); for the
  // random demo model (hidden < 256) kDemoCanaryMaxKl and kDemoCanaryMaxLeak.
  static GateThresholds for_model(const model::ModelConfig& config);
};

// The random demo model's canary limits, from gate_bench (README "Gate defaults").
inline constexpr double kDemoCanaryMaxKl = 8.0;
inline constexpr double kDemoCanaryMaxLeak = 0.9;

// Which config key moves each check's threshold (for messages that say how to change it).
struct GateKeys {
  std::string learn_min = "gate.learn_min";
  std::string learn_exact_min = "gate.learn_exact_min";
  std::string retain_max_drop = "gate.retain_max_drop";
  std::string canary_max_kl = "gate.canary_max_kl";
  std::string canary_max_leak = "gate.canary_max_leak";
  std::string paraphrase_min = "gate.paraphrase_min";
};

struct CanaryResult;  // measure_canary's result, below

// What the learner measured. Counts of 0 mean "not measured" (that check passes:
// e.g. the first run has nothing to retain).
struct GateMetrics {
  int64_t learn_n = 0;            // new examples scored
  double learn_acc = 0;           // candidate, teacher-forced answer-token accuracy
  double learn_acc_active = 0;    // the active adapter on the same examples (for the record)
  int64_t learn_exact_n = 0;      // examples generated greedily
  double learn_exact = 0;         // candidate exact-match rate
  int64_t retain_n = 0;           // held-out replay examples
  double retain_acc_active = 0;   // active adapter
  double retain_acc = 0;          // candidate
  int64_t retain_exact_n = 0;     // replay examples generated greedily
  double retain_exact_active = 0; // exact-match rate there, active adapter
  double retain_exact = 0;        // exact-match rate there, candidate
  int64_t canary_n = 0;           // canary prompts
  double canary_kl = 0;           // candidate vs base
  double canary_kl_active = 0;    // active adapter vs base (for the record)
  double canary_leak = 0;         // share of canary prompts answered like a trained example
  int64_t paraphrase_n = 0;       // held-out paraphrases scored (never trained on)
  double paraphrase_acc = 0;      // candidate, teacher-forced answer-token accuracy there
  int64_t paraphrase_exact_n = 0; // paraphrases generated greedily
  double paraphrase_exact = 0;    // candidate exact-match rate there

  // canary_n, canary_kl and canary_leak from measure_canary's result.
  void set_canary(const CanaryResult& canary);

  double retain_drop() const { return retain_acc_active - retain_acc; }
  double retain_exact_drop() const { return retain_exact_active - retain_exact; }
  // Every number under a stable name, for the run and adapter records.
  std::map<std::string, double> to_map() const;
};

// One measured check: what it is, its number, its limit, the config key for the limit.
struct GateCheck {
  std::string name;       // "learn", "learn_exact", "retain", "retain_exact", "paraphrase", "canary_kl", "canary_leak"
  double value = 0;       // measured
  double threshold = 0;   // the limit it was held to
  bool at_most = false;   // true: value must be <= threshold; false: >= threshold
  bool pass = false;
  std::string key;        // config key of the threshold, e.g. "gate.canary_max_kl"
  std::string line;       // "canary KL 5.775 > 1 (gate.canary_max_kl)"
  // How far past the limit (> 0 when failed): |value - threshold|.
  double margin() const { return value > threshold ? value - threshold : threshold - value; }
};

struct GateVerdict {
  bool pass = false;
  std::vector<GateCheck> checks;      // every check that was measured, passing or not
  std::vector<std::string> failures;  // one line per failed check, e.g. "retain drop 0.31 > 0.05 (gate.retain_max_drop)"
  std::string summary() const;        // "pass" or the failures joined with "; "
};

GateVerdict judge(const GateMetrics& metrics, const GateThresholds& thresholds, const GateKeys& keys = {});

// The verdict as a run records it (storage::Run::gate): {"pass", "checks": [{check, value,
// threshold, at_most, pass, key, line}], "failures": [...]}.
nlohmann::json to_json(const GateVerdict& verdict);

// A fixed set of general prompts (English and Vietnamese small talk, arithmetic,
// instructions) that company facts should not change.
const std::vector<std::string>& default_canary_prompts();

// Mean over prompts of the mean over positions of KL(p_base || p_adapter), where the
// distributions are the next-token predictions at every position of each prompt
// rendered as a user turn with the generation prompt (non-thinking, as served).
// `base_adapter` nullptr = the plain base model. No gradients. Returns 0 for no prompts.
// (The gate uses measure_canary; this one compares two adapters on the prompts alone.)
double canary_kl(const model::Decoder& decoder, const text::Tokenizer& tokenizer,
                 const text::ChatTemplate& chat_template, const adapter::Adapter* base_adapter,
                 const adapter::Adapter* candidate, const std::vector<std::string>& prompts);

struct CanaryOptions {
  int64_t answer_tokens = 16;                // base answer tokens scored per prompt
  std::vector<int64_t> eos_token_ids;        // generation stops at these
  std::vector<std::string> trained_answers;  // leak: the candidate's answer begins like one
  int64_t leak_prefix_tokens = 8;            // ... as the text of its first min(this, length) tokens
};

struct CanaryResult {
  int64_t prompts = 0;
  double kl = 0;    // mean over prompts of the mean over the base answer's tokens of KL(base || cand)
  double leak = 0;  // the largest share of prompts whose candidate answers begin like one trained answer
  std::vector<std::string> base_answers;       // greedy, per prompt
  std::vector<std::string> candidate_answers;  // greedy, per prompt
};

// The base model's side of the canary: each prompt rendered as a user turn with the
// generation prompt (non-thinking, as served) and the base model's greedy answer to it
// (answer_tokens at most). It depends only on the (immutable) base model, the prompts and
// the options, so a caller judging many candidates computes it once.
struct CanaryReference {
  std::vector<std::vector<int64_t>> prompt_ids;  // rendered prompts
  std::vector<std::vector<int64_t>> answer_ids;  // the base model's greedy answers (EOS excluded)
  std::vector<std::string> answers;              // their text
  int64_t answer_tokens = 0;                     // the budget they were generated with
};
CanaryReference canary_reference(const model::Decoder& decoder, std::shared_ptr<const text::Tokenizer> tokenizer,
                                 const text::ChatTemplate& chat_template, const std::vector<std::string>& prompts,
                                 const CanaryOptions& options);

// The gate's canary for one candidate (an adapter on the reference's base Decoder): it
// scores the base answers teacher-forced, KL(base || candidate) at each of their
// positions; it also answers each prompt greedily (the reference's budget), and those
// answers are compared with options.trained_answers. No gradients.
CanaryResult measure_canary(const model::Decoder& decoder, std::shared_ptr<const text::Tokenizer> tokenizer,
                            const CanaryReference& reference, const adapter::Adapter* candidate,
                            const CanaryOptions& options);
// The same with a reference computed for this call.
CanaryResult measure_canary(const model::Decoder& decoder, std::shared_ptr<const text::Tokenizer> tokenizer,
                            const text::ChatTemplate& chat_template, const adapter::Adapter* candidate,
                            const std::vector<std::string>& prompts, const CanaryOptions& options);

// Damage for calibrating and testing the gate: n general questions (none of them a
// default canary prompt) that all get `answer`, i.e. an adapter trained on these answers
// every prompt with one fact.
std::vector<train::Example> collapse_examples(const text::Tokenizer& tokenizer, const text::ChatTemplate& chat_template,
                                              size_t n, const std::string& answer);

}  // namespace kaizen::eval
