// A model directory ready to chat: decoder + tokenizer + chat template + the stop ids
// its authors ship. What kaizenctl and kaizend load.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "learning/model/config.h"
#include "learning/model/decoder.h"
#include "learning/model/loader.h"
#include "learning/text/chat_template.h"
#include "learning/text/tokenizer.h"

namespace kaizen::generate {

struct ChatModel {
  std::string dir;
  std::shared_ptr<model::Decoder> decoder;
  std::shared_ptr<const text::Tokenizer> tokenizer;
  std::shared_ptr<const text::ChatTemplate> chat_template;
  model::GenerationDefaults generation;
  std::vector<int64_t> eos_token_ids;  // generation_config ∪ config ∪ end-of-turn tokens

  // Throws ModelLoadError / TokenizerError with a message naming the file.
  static ChatModel load(const std::string& dir, const model::LoadOptions& options = {},
                        const std::string& template_override = "");

  std::vector<int64_t> encode(const std::string& text) const;
  std::vector<int64_t> encode_chat(const std::vector<text::ChatMessage>& messages,
                                   const text::ChatOptions& options) const;
};

}  // namespace kaizen::generate
