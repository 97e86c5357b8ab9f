#include "learning/eval/gate.h"

#include <cstdio>

#include <torch/torch.h>

namespace kaizen::eval {

namespace {
std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4g", v);
  return buf;
}
}  // namespace

std::map<std::string, double> GateMetrics::to_map() const {
  return {{"learn_n", static_cast<double>(learn_n)},
          {"learn_acc", learn_acc},
          {"learn_acc_active", learn_acc_active},
          {"learn_exact_n", static_cast<double>(learn_exact_n)},
          {"learn_exact", learn_exact},
          {"retain_n", static_cast<double>(retain_n)},
          {"retain_acc", retain_acc},
          {"retain_acc_active", retain_acc_active},
          {"retain_drop", retain_n ? retain_drop() : 0.0},
          {"retain_exact_n", static_cast<double>(retain_exact_n)},
          {"retain_exact", retain_exact},
          {"retain_exact_active", retain_exact_active},
          {"canary_n", static_cast<double>(canary_n)},
          {"canary_kl", canary_kl},
          {"canary_kl_active", canary_kl_active},
          {"paraphrase_n", static_cast<double>(paraphrase_n)},
          {"paraphrase_acc", paraphrase_acc},
          {"paraphrase_exact_n", static_cast<double>(paraphrase_exact_n)},
          {"paraphrase_exact", paraphrase_exact}};
}

std::string GateVerdict::summary() const {
  if (pass) return "pass";
  std::string s;
  for (const auto& f : failures) s += (s.empty() ? "" : "; ") + f;
  return s;
}

GateVerdict judge(const GateMetrics& m, const GateThresholds& t) {
  GateVerdict v;
  if (m.learn_n == 0) v.failures.push_back("no new examples were scored");
  if (m.learn_n > 0 && m.learn_acc < t.learn_min) {
    v.failures.push_back("learn accuracy " + fmt(m.learn_acc) + " < " + fmt(t.learn_min));
  }
  if (m.learn_exact_n > 0 && m.learn_exact < t.learn_exact_min) {
    v.failures.push_back("learn exact match " + fmt(m.learn_exact) + " < " + fmt(t.learn_exact_min));
  }
  if (m.retain_n > 0 && m.retain_drop() > t.retain_max_drop) {
    v.failures.push_back("retain drop " + fmt(m.retain_drop()) + " > " + fmt(t.retain_max_drop) + " (accuracy " +
                         fmt(m.retain_acc_active) + " -> " + fmt(m.retain_acc) + ")");
  }
  if (m.retain_exact_n > 0 && m.retain_exact_drop() > t.retain_max_drop) {
    v.failures.push_back("retain exact-match drop " + fmt(m.retain_exact_drop()) + " > " + fmt(t.retain_max_drop) +
                         " (" + fmt(m.retain_exact_active) + " -> " + fmt(m.retain_exact) + ")");
  }
  if (m.paraphrase_n > 0 && m.paraphrase_acc < t.paraphrase_min) {
    v.failures.push_back("paraphrase accuracy " + fmt(m.paraphrase_acc) + " < " + fmt(t.paraphrase_min));
  }
  if (m.canary_n > 0 && m.canary_kl > t.canary_max_kl) {
    v.failures.push_back("canary KL " + fmt(m.canary_kl) + " > " + fmt(t.canary_max_kl));
  }
  v.pass = v.failures.empty();
  return v;
}

const std::vector<std::string>& default_canary_prompts() {
  static const std::vector<std::string> prompts = {
      "What is the capital of France?",
      "Write one sentence about the sea.",
      "How many days are there in a week?",
      "Translate 'good morning' into Vietnamese.",
      "Hôm nay trời đẹp quá, bạn có khỏe không?",
      "Hãy kể một câu chuyện ngắn về con mèo.",
      "What is 12 plus 30?",
      "Give me three tips for writing clear emails.",
  };
  return prompts;
}

double canary_kl(const model::Decoder& decoder, const text::Tokenizer& tokenizer,
                 const text::ChatTemplate& chat_template, const adapter::Adapter* base_adapter,
                 const adapter::Adapter* candidate, const std::vector<std::string>& prompts) {
  if (prompts.empty()) return 0.0;
  c10::InferenceMode guard;
  text::ChatOptions co;
  co.add_generation_prompt = true;
  co.enable_thinking = false;
  const auto device = decoder.options().device;
  double sum = 0;
  for (const auto& p : prompts) {
    std::vector<int64_t> ids;
    for (int32_t id : tokenizer.encode(chat_template.render({{"user", p}}, co), true)) ids.push_back(id);
    torch::Tensor x = torch::tensor(ids, torch::kLong).unsqueeze(0).to(device);  // (1, T)
    torch::Tensor lp = torch::log_softmax(decoder.forward(x, nullptr, base_adapter).to(torch::kFloat), -1);
    torch::Tensor lq = torch::log_softmax(decoder.forward(x, nullptr, candidate).to(torch::kFloat), -1);
    // (1, T, V) -> per position sum_v p (log p - log q), then the mean over positions.
    sum += (lp.exp() * (lp - lq)).sum(-1).mean().item<double>();
  }
  return sum / static_cast<double>(prompts.size());
}

}  // namespace kaizen::eval
