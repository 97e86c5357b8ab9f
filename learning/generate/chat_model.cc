#include "learning/generate/chat_model.h"

#include <algorithm>
#include <filesystem>

namespace kaizen::generate {

ChatModel ChatModel::load(const std::string& dir, const model::LoadOptions& options,
                          const std::string& template_override) {
  namespace fs = std::filesystem;
  ChatModel m;
  m.dir = dir;
  if (!fs::exists(fs::path(dir) / "tokenizer.json")) {
    throw model::ModelLoadError(dir + ": no tokenizer.json (a model directory needs its tokenizer)");
  }
  m.tokenizer = text::Tokenizer::from_model_dir(dir);
  m.chat_template = std::make_shared<const text::ChatTemplate>(
      text::ChatTemplate::from_model_dir(dir, template_override));
  m.decoder = model::load_decoder(dir, options);
  m.generation = model::GenerationDefaults::from_file((fs::path(dir) / "generation_config.json").string());
  auto add = [&](int64_t id) {
    if (std::find(m.eos_token_ids.begin(), m.eos_token_ids.end(), id) == m.eos_token_ids.end()) {
      m.eos_token_ids.push_back(id);
    }
  };
  for (int64_t id : m.generation.eos_token_ids) add(id);
  for (int64_t id : m.decoder->config().eos_token_ids) add(id);
  for (const std::string& t : m.chat_template->end_of_turn_tokens()) {
    if (auto id = m.tokenizer->token_to_id(t)) add(*id);
  }
  return m;
}

std::vector<int64_t> ChatModel::encode(const std::string& text) const {
  std::vector<int32_t> ids = tokenizer->encode(text);
  return std::vector<int64_t>(ids.begin(), ids.end());
}

std::vector<int64_t> ChatModel::encode_chat(const std::vector<text::ChatMessage>& messages,
                                            const text::ChatOptions& options) const {
  return encode(chat_template->render(messages, options));
}

}  // namespace kaizen::generate
