// The acceptance gate of the continual-learning loop (DESIGN.md "Continual learning
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
//   canary: still behaves like the base model elsewhere — mean KL(base || candidate) of
//           the next-token distributions over a fixed set of general prompts is at
//           most canary_max_kl (nats).
// judge() is a pure function of the measured numbers and the thresholds, so the
// decision can be tested (and re-derived from a run record) without a model.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "learning/adapter/adapter.h"
#include "learning/model/decoder.h"
#include "learning/text/chat_template.h"
#include "learning/text/tokenizer.h"

namespace kaizen::eval {

struct GateThresholds {
  double learn_min = 0.90;        // answer-token accuracy on the new examples, [0, 1]
  double learn_exact_min = 0.0;   // share of greedy answers equal to the expected text, [0, 1]
  double retain_max_drop = 0.05;  // allowed accuracy drop on the held-out replay set, [0, 1]
  double canary_max_kl = 1.0;     // mean KL(base || candidate) in nats on general prompts
  double paraphrase_min = 0.0;    // answer-token accuracy on held-out paraphrases of the new
                                  // examples' questions, [0, 1]; 0 = measured, not required
};

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
  int64_t paraphrase_n = 0;       // held-out paraphrases scored (never trained on)
  double paraphrase_acc = 0;      // candidate, teacher-forced answer-token accuracy there
  int64_t paraphrase_exact_n = 0; // paraphrases generated greedily
  double paraphrase_exact = 0;    // candidate exact-match rate there

  double retain_drop() const { return retain_acc_active - retain_acc; }
  double retain_exact_drop() const { return retain_exact_active - retain_exact; }
  // Every number under a stable name, for the run and adapter records.
  std::map<std::string, double> to_map() const;
};

struct GateVerdict {
  bool pass = false;
  std::vector<std::string> failures;  // one line per failed check, e.g. "retain drop 0.31 > 0.05"
  std::string summary() const;        // "pass" or the failures joined with "; "
};

GateVerdict judge(const GateMetrics& metrics, const GateThresholds& thresholds);

// A fixed set of general prompts (English and Vietnamese small talk, arithmetic,
// instructions) that company facts should not change.
const std::vector<std::string>& default_canary_prompts();

// Mean over prompts of the mean over positions of KL(p_base || p_adapter), where the
// distributions are the next-token predictions at every position of each prompt
// rendered as a user turn with the generation prompt (non-thinking, as served).
// `base_adapter` nullptr = the plain base model. No gradients. Returns 0 for no prompts.
double canary_kl(const model::Decoder& decoder, const text::Tokenizer& tokenizer,
                 const text::ChatTemplate& chat_template, const adapter::Adapter* base_adapter,
                 const adapter::Adapter* candidate, const std::vector<std::string>& prompts);

}  // namespace kaizen::eval
