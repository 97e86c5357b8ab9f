#include "learning/text/tokenizer.h"

#include <sys/stat.h>

#include "learning/text/nfc.h"
#include "learning/text/tokenizer_impl.h"
#include "learning/text/utf8.h"

namespace kaizen::text {

namespace {

// Per-thread buffers for encode: one piece list per pipeline depth, so the hot loop
// reuses capacity instead of allocating.
struct EncodeScratch {
  std::vector<TextPiece> raw_pieces, normalized_pieces;
  std::vector<std::vector<std::string_view>> step_pieces;
  std::string normalized;
  std::string prefixed;
};

EncodeScratch& encode_scratch() {
  thread_local EncodeScratch s;
  return s;
}

class Encoder {
 public:
  Encoder(const Tokenizer::Impl& t, std::vector<int32_t>& out)
      : t_(t), s_(encode_scratch()), out_(out) {
    if (s_.step_pieces.size() < t_.steps.size()) s_.step_pieces.resize(t_.steps.size());
  }

  void encode(std::string_view text, bool parse_special) {
    s_.raw_pieces.clear();
    t_.raw_added.split(text, parse_special, s_.raw_pieces);
    for (const TextPiece& p : s_.raw_pieces) {
      if (p.id >= 0) {
        out_.push_back(p.id);
      } else {
        encode_plain(p.text, parse_special);
      }
    }
  }

 private:
  void encode_plain(std::string_view text, bool parse_special) {
    if (t_.nfc) text = nfc(text, s_.normalized);
    if (t_.normalized_added.empty()) {
      pre_tokenize(text, 0);
      return;
    }
    s_.normalized_pieces.clear();
    t_.normalized_added.split(text, parse_special, s_.normalized_pieces);
    for (const TextPiece& p : s_.normalized_pieces) {
      if (p.id >= 0) {
        out_.push_back(p.id);
      } else {
        pre_tokenize(p.text, 0);
      }
    }
  }

  void pre_tokenize(std::string_view text, size_t step) {
    if (text.empty()) return;
    if (step == t_.steps.size()) {
      t_.bpe->encode_word(text, out_);
      return;
    }
    const PreTokenizerStep& st = t_.steps[step];
    if (st.add_prefix_space && text[0] != ' ') {
      // Rare (GPT-2 style files only); the prefixed copy lives until this piece is done.
      std::string prefixed = " ";
      prefixed.append(text);
      split_step(prefixed, step);
      return;
    }
    split_step(text, step);
  }

  void split_step(std::string_view text, size_t step) {
    const PreTokenizerStep& st = t_.steps[step];
    if (!st.regex) {
      pre_tokenize(text, step + 1);
      return;
    }
    std::vector<std::string_view>& pieces = s_.step_pieces[step];
    const size_t mark = pieces.size();
    st.regex->split(text, pieces);
    const size_t end = pieces.size();
    for (size_t i = mark; i < end; ++i) pre_tokenize(pieces[i], step + 1);
    pieces.resize(mark);
  }

  const Tokenizer::Impl& t_;
  EncodeScratch& s_;
  std::vector<int32_t>& out_;
};

bool is_directory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

std::shared_ptr<const Tokenizer> Tokenizer::from_file(const std::string& tokenizer_json) {
  return std::shared_ptr<const Tokenizer>(new Tokenizer(load_tokenizer_json(tokenizer_json)));
}

std::shared_ptr<const Tokenizer> Tokenizer::from_json_text(std::string_view text,
                                                           const std::string& origin) {
  return std::shared_ptr<const Tokenizer>(new Tokenizer(parse_tokenizer_json(text, origin)));
}

std::shared_ptr<const Tokenizer> Tokenizer::from_model_dir(const std::string& dir) {
  if (!is_directory(dir)) throw TokenizerError(dir + ": model directory does not exist");
  const std::string path = dir + "/tokenizer.json";
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    throw TokenizerError(path + ": missing (the model directory has no tokenizer.json)");
  }
  return from_file(path);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool parse_special) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 8);
  Encoder(*impl_, ids).encode(text, parse_special);
  return ids;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  std::string bytes;
  for (int32_t id : ids) {
    if (skip_special && is_special(id)) continue;
    bytes.append(token_bytes(id));
  }
  if (utf8::is_valid(bytes)) return bytes;
  std::string out;
  out.reserve(bytes.size() + 8);
  utf8::append_lossy(bytes, out);
  return out;
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  auto it = impl_->token_to_id.find(std::string(token));
  if (it == impl_->token_to_id.end()) return std::nullopt;
  return it->second;
}

std::string Tokenizer::id_to_token(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return "";
  return impl_->id_to_token[id];
}

const std::string& Tokenizer::token_bytes(int32_t id) const {
  if (id < 0 || id >= vocab_size()) {
    throw TokenizerError(impl_->path + ": token id " + std::to_string(id) + " out of range [0, " +
                         std::to_string(vocab_size()) + ")");
  }
  return impl_->id_bytes[id];
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && id < vocab_size() && (impl_->flags[id] & Impl::kSpecial);
}

bool Tokenizer::is_added(int32_t id) const {
  return id >= 0 && id < vocab_size() && (impl_->flags[id] & Impl::kAdded);
}

int32_t Tokenizer::vocab_size() const {
  return static_cast<int32_t>(impl_->id_to_token.size());
}

const std::string& Tokenizer::path() const {
  return impl_->path;
}

StreamDecoder::StreamDecoder(std::shared_ptr<const Tokenizer> tok, bool skip_special)
    : tok_(std::move(tok)), skip_special_(skip_special) {}

std::string StreamDecoder::push(int32_t id) {
  const std::string& bytes = tok_->token_bytes(id);  // throws for bad ids
  if (skip_special_ && tok_->is_special(id)) return "";
  pending_.append(bytes);
  std::string out;
  const size_t used = utf8::append_complete(pending_, out);
  pending_.erase(0, used);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out;
  utf8::append_lossy(pending_, out);
  pending_.clear();
  return out;
}

}  // namespace kaizen::text
