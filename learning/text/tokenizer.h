// Byte-level BPE tokenizer read from a Hugging Face tokenizer.json (Qwen2/Qwen3, Llama-3,
// GPT-2 style), giving the same ids as HF tokenizers:
//   added tokens cut out (leftmost-longest, lstrip/rstrip/single_word/normalized as HF)
//   -> NFC normalizer (if configured) -> Split regex pre-tokenizer(s) -> ByteLevel
//   -> BPE merges by rank.
// encode() never adds BOS/EOS (tokenizer.json's post_processor is ignored): chat templates
// spell those out. Everything here is immutable after loading, so one Tokenizer is shared
// by all threads (encode/decode are thread-safe).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace kaizen::text {

// Loading or using a tokenizer failed; the message names the file and the problem.
struct TokenizerError : std::runtime_error {
  using runtime_error::runtime_error;
};

class Tokenizer {
 public:
  // Loads tokenizer.json. Throws TokenizerError for a missing/unreadable file, malformed
  // JSON, or a tokenizer this class does not implement (model other than BPE, a
  // normalizer other than NFC, pre-tokenizers other than Split/ByteLevel, no ByteLevel).
  static std::shared_ptr<const Tokenizer> from_file(const std::string& tokenizer_json);
  // The same from tokenizer.json's text; `origin` names it in errors (and is path()).
  static std::shared_ptr<const Tokenizer> from_json_text(std::string_view text,
                                                         const std::string& origin);
  // DIR/tokenizer.json; TokenizerError if DIR or the file is missing.
  static std::shared_ptr<const Tokenizer> from_model_dir(const std::string& dir);

  ~Tokenizer();

  // parse_special: special added tokens written in `text` (e.g. "<|im_end|>") become their
  // ids; when false they are encoded as plain text. Non-special added tokens (Qwen3's
  // <think>) are always matched, as in HF with split_special_tokens=True.
  // Ill-formed UTF-8 in `text` is not an error: those bytes are encoded through the
  // byte-level alphabet like any other byte (decode then shows them as U+FFFD).
  std::vector<int32_t> encode(std::string_view text, bool parse_special = true) const;

  // Concatenates the tokens' bytes; ill-formed UTF-8 in the result becomes U+FFFD (one per
  // maximal ill-formed subpart, as HF's ByteLevel decoder). skip_special drops special
  // added tokens. Throws TokenizerError for ids < 0 or >= vocab_size(); ids inside that
  // range that name no token decode to nothing.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const;

  // The id of a vocab token (written in the byte-level alphabet, e.g. "Ġthe") or added
  // token ("<|im_end|>").
  std::optional<int32_t> token_to_id(std::string_view token) const;
  // The token text of id ("" if id names no token).
  std::string id_to_token(int32_t id) const;
  // The raw bytes id stands for (may be part of a UTF-8 sequence); "" if id names no token.
  const std::string& token_bytes(int32_t id) const;
  bool is_special(int32_t id) const;
  bool is_added(int32_t id) const;  // special or not
  int32_t vocab_size() const;       // max id + 1 over vocab and added tokens
  const std::string& path() const;  // the tokenizer.json it was read from

  struct Impl;

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Token-by-token decoding for streaming output. Holds back the bytes of an incomplete
// UTF-8 sequence until the token that completes it arrives, so what it emits is always
// well-formed, and the concatenation of push() results plus flush() equals
// tok->decode(all ids, skip_special). Not thread-safe (one per stream).
class StreamDecoder {
 public:
  explicit StreamDecoder(std::shared_ptr<const Tokenizer> tok, bool skip_special = true);
  // Text that became complete with this token (maybe ""). Throws TokenizerError for ids
  // outside [0, vocab_size()).
  std::string push(int32_t id);
  // Whatever is left (an incomplete sequence as U+FFFD); the decoder is then empty.
  std::string flush();

 private:
  std::shared_ptr<const Tokenizer> tok_;
  bool skip_special_;
  std::string pending_;  // bytes of an incomplete UTF-8 sequence
};

}  // namespace kaizen::text
