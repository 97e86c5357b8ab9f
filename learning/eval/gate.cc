#include "learning/eval/gate.h"

#include <algorithm>
#include <cstdio>
#include <map>

#include <torch/torch.h>

#include "learning/generate/generator.h"

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
          {"canary_leak", canary_leak},
          {"paraphrase_n", static_cast<double>(paraphrase_n)},
          {"paraphrase_acc", paraphrase_acc},
          {"paraphrase_exact_n", static_cast<double>(paraphrase_exact_n)},
          {"paraphrase_exact", paraphrase_exact}};
}

void GateMetrics::set_canary(const CanaryResult& canary) {
  canary_n = canary.prompts;
  canary_kl = canary.kl;
  canary_leak = canary.leak;
}

std::string GateVerdict::summary() const {
  if (pass) return "pass";
  std::string s;
  for (const auto& f : failures) s += (s.empty() ? "" : "; ") + f;
  return s;
}

GateThresholds GateThresholds::for_model(const model::ModelConfig& config) {
  GateThresholds t;
  if (config.hidden_size < 256) {
    t.canary_max_kl = kDemoCanaryMaxKl;
    t.canary_max_leak = kDemoCanaryMaxLeak;
  }
  return t;
}

GateVerdict judge(const GateMetrics& m, const GateThresholds& t, const GateKeys& k) {
  GateVerdict v;
  if (m.learn_n == 0) v.failures.push_back("no new examples were scored");
  // label value op threshold (key)[ detail]
  auto check = [&](const char* name, const std::string& label, double value, double threshold, bool at_most,
                   const std::string& key, const std::string& detail = "") {
    GateCheck c;
    c.name = name;
    c.value = value;
    c.threshold = threshold;
    c.at_most = at_most;
    c.pass = at_most ? value <= threshold : value >= threshold;
    c.key = key;
    c.line = label + " " + fmt(value) + (c.pass ? (at_most ? " <= " : " >= ") : (at_most ? " > " : " < ")) +
             fmt(threshold) + (detail.empty() ? "" : " " + detail) + " (" + key + ")";
    if (!c.pass) v.failures.push_back(c.line);
    v.checks.push_back(std::move(c));
  };
  if (m.learn_n > 0) check("learn", "learn accuracy", m.learn_acc, t.learn_min, false, k.learn_min);
  if (m.learn_exact_n > 0) {
    check("learn_exact", "learn exact match", m.learn_exact, t.learn_exact_min, false, k.learn_exact_min);
  }
  if (m.retain_n > 0) {
    check("retain", "retain drop", m.retain_drop(), t.retain_max_drop, true, k.retain_max_drop,
          "(accuracy " + fmt(m.retain_acc_active) + " -> " + fmt(m.retain_acc) + ")");
  }
  if (m.retain_exact_n > 0) {
    check("retain_exact", "retain exact-match drop", m.retain_exact_drop(), t.retain_max_drop, true,
          k.retain_max_drop, "(" + fmt(m.retain_exact_active) + " -> " + fmt(m.retain_exact) + ")");
  }
  if (m.paraphrase_n > 0) {
    check("paraphrase", "paraphrase accuracy", m.paraphrase_acc, t.paraphrase_min, false, k.paraphrase_min);
  }
  if (m.canary_n > 0) {
    check("canary_kl", "canary KL", m.canary_kl, t.canary_max_kl, true, k.canary_max_kl);
    check("canary_leak", "canary answers like a trained example", m.canary_leak, t.canary_max_leak, true,
          k.canary_max_leak);
  }
  v.pass = v.failures.empty();
  return v;
}

nlohmann::json to_json(const GateVerdict& v) {
  nlohmann::json checks = nlohmann::json::array();
  for (const auto& c : v.checks) {
    checks.push_back({{"check", c.name},
                      {"value", c.value},
                      {"threshold", c.threshold},
                      {"at_most", c.at_most},
                      {"pass", c.pass},
                      {"key", c.key},
                      {"line", c.line}});
  }
  return {{"pass", v.pass}, {"checks", checks}, {"failures", v.failures}};
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
      "Why is the sky blue?",
      "Name three colours of the rainbow.",
      "Write a haiku about autumn leaves.",
      "What is the opposite of 'hot'?",
      "Bạn thích ăn món gì nhất?",
      "Một năm có bao nhiêu tháng?",
      "How do I boil an egg?",
      "Summarise the plot of Romeo and Juliet in one sentence.",
      "What language is spoken in Brazil?",
      "Can you recommend a good book for a long flight?",
      "Hãy viết một lời chúc sinh nhật ngắn.",
      "What is the square root of 81?",
      "Explain what a computer keyboard is for.",
      "Thủ đô của Nhật Bản là gì?",
      "List two benefits of drinking water.",
      "Say hello in French.",
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

CanaryReference canary_reference(const model::Decoder& decoder, std::shared_ptr<const text::Tokenizer> tokenizer,
                                 const text::ChatTemplate& chat_template, const std::vector<std::string>& prompts,
                                 const CanaryOptions& options) {
  c10::InferenceMode guard;
  text::ChatOptions co;
  co.add_generation_prompt = true;
  co.enable_thinking = false;
  CanaryReference ref;
  ref.answer_tokens = options.answer_tokens;
  if (prompts.empty()) return ref;
  for (const auto& p : prompts) {
    std::vector<int64_t> ids;
    for (int32_t id : tokenizer->encode(chat_template.render({{"user", p}}, co), true)) ids.push_back(id);
    ref.prompt_ids.push_back(std::move(ids));
  }
  generate::GenerateOptions go;
  go.eos_token_ids = options.eos_token_ids;
  go.max_new_tokens = options.answer_tokens;
  for (auto& r : generate::generate_many(decoder, tokenizer, ref.prompt_ids, nullptr,
                                         std::vector<generate::GenerateOptions>(prompts.size(), go))) {
    ref.answer_ids.push_back(std::move(r.ids));
    ref.answers.push_back(std::move(r.text));
  }
  return ref;
}

CanaryResult measure_canary(const model::Decoder& decoder, std::shared_ptr<const text::Tokenizer> tokenizer,
                            const CanaryReference& reference, const adapter::Adapter* candidate,
                            const CanaryOptions& options) {
  CanaryResult out;
  const size_t n = reference.prompt_ids.size();
  if (n == 0) return out;
  c10::InferenceMode guard;
  generate::GenerateOptions go;
  go.eos_token_ids = options.eos_token_ids;
  go.max_new_tokens = reference.answer_tokens;
  const auto cand = generate::generate_many(decoder, tokenizer, reference.prompt_ids, candidate,
                                            std::vector<generate::GenerateOptions>(n, go));

  // A leak: the candidate's answer text begins with the text of a trained answer's first
  // leak_prefix_tokens tokens (text, not ids: a generated answer and the same text
  // tokenized again need not be the same ids). Answers that begin alike are one answer.
  std::map<std::string, int64_t> leaks_of;  // trained answer prefix -> canary answers beginning with it
  const size_t prefix_tokens = static_cast<size_t>(std::max<int64_t>(1, options.leak_prefix_tokens));
  for (const auto& a : options.trained_answers) {
    std::vector<int32_t> ids = tokenizer->encode(a, false);
    if (ids.empty()) continue;
    if (ids.size() > prefix_tokens) ids.resize(prefix_tokens);
    const std::string prefix = tokenizer->decode(ids);
    if (!prefix.empty()) leaks_of.emplace(prefix, 0);
  }

  const auto device = decoder.options().device;
  double kl_sum = 0;
  for (size_t i = 0; i < n; ++i) {
    out.candidate_answers.push_back(cand[i].text);
    for (auto& [prefix, count] : leaks_of) count += cand[i].text.compare(0, prefix.size(), prefix) == 0;
    // Positions P-1 .. P+A-2 predict the A answer tokens (A >= 1: an answer that is only
    // EOS still scores the first position).
    const auto& prompt = reference.prompt_ids[i];
    const auto& answer = reference.answer_ids[i];
    std::vector<int64_t> ids = prompt;
    ids.insert(ids.end(), answer.begin(), answer.end());
    const int64_t p = static_cast<int64_t>(prompt.size());
    const int64_t a = std::max<int64_t>(1, static_cast<int64_t>(answer.size()));
    torch::Tensor x = torch::tensor(ids, torch::kLong).unsqueeze(0).to(device);  // (1, T)
    torch::Tensor lp = torch::log_softmax(decoder.forward(x, nullptr, nullptr).to(torch::kFloat), -1)
                           .narrow(1, p - 1, a);  // (1, A, V)
    torch::Tensor lq = torch::log_softmax(decoder.forward(x, nullptr, candidate).to(torch::kFloat), -1)
                           .narrow(1, p - 1, a);
    kl_sum += (lp.exp() * (lp - lq)).sum(-1).mean().item<double>();
  }
  out.base_answers = reference.answers;
  out.prompts = static_cast<int64_t>(n);
  out.kl = kl_sum / static_cast<double>(n);
  int64_t most = 0;
  for (const auto& [prefix, count] : leaks_of) most = std::max(most, count);
  out.leak = static_cast<double>(most) / static_cast<double>(n);
  return out;
}

CanaryResult measure_canary(const model::Decoder& decoder, std::shared_ptr<const text::Tokenizer> tokenizer,
                            const text::ChatTemplate& chat_template, const adapter::Adapter* candidate,
                            const std::vector<std::string>& prompts, const CanaryOptions& options) {
  return measure_canary(decoder, tokenizer, canary_reference(decoder, tokenizer, chat_template, prompts, options),
                        candidate, options);
}

std::vector<train::Example> collapse_examples(const text::Tokenizer& tokenizer, const text::ChatTemplate& chat_template,
                                              size_t n, const std::string& answer) {
  static const std::vector<std::string> subjects = {
      "the moon", "coffee", "a good breakfast", "rainy days", "the ocean", "learning to swim", "old books",
      "mountains", "bicycles", "the history of tea", "music", "winter", "gardening", "cats", "trains",
      "the stars", "cooking rice", "football", "a quiet evening", "birds"};
  static const std::vector<std::string> forms = {"Tell me something about {}.", "What do you think of {}?",
                                                 "Can you explain {} to a child?", "Hãy nói về {}."};
  std::vector<train::Example> out;
  for (size_t i = 0; out.size() < n; ++i) {
    std::string q = forms[(i / subjects.size()) % forms.size()];
    q.replace(q.find("{}"), 2, subjects[i % subjects.size()]);
    if (i >= subjects.size() * forms.size()) q += " (" + std::to_string(i) + ")";
    out.push_back(train::encode_example({{"user", q}, {"assistant", answer}}, tokenizer, chat_template, 2048));
  }
  return out;
}

}  // namespace kaizen::eval
