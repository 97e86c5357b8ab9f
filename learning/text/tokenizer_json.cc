// Reads tokenizer.json into Tokenizer::Impl, refusing anything it would get wrong.
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "learning/text/byte_level.h"
#include "learning/text/nfc.h"
#include "learning/text/tokenizer_impl.h"

namespace kaizen::text {

namespace {

using nlohmann::json;

// The regex ByteLevel uses when use_regex is true (GPT-2's).
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw TokenizerError(path + ": " + what);
}

bool flag(const json& j, const char* key, bool def) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? def : it->get<bool>();
}

std::string type_of(const json& j) {
  auto it = j.find("type");
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

void load_normalizer(const json& n, Tokenizer::Impl& t) {
  if (n.is_null()) return;
  const std::string type = type_of(n);
  if (type == "NFC") {
    t.nfc = true;
  } else if (type == "Sequence") {
    for (const auto& sub : n.at("normalizers")) load_normalizer(sub, t);
  } else {
    fail(t.path, "unsupported normalizer type '" + type + "' (only NFC is implemented)");
  }
}

void load_pre_tokenizer(const json& p, Tokenizer::Impl& t, bool* byte_level) {
  const std::string type = type_of(p);
  if (*byte_level) fail(t.path, "unsupported pre_tokenizer: '" + type + "' after ByteLevel");
  if (type == "Sequence") {
    for (const auto& sub : p.at("pretokenizers")) load_pre_tokenizer(sub, t, byte_level);
  } else if (type == "Split") {
    const json& pat = p.at("pattern");
    const std::string behavior = p.value("behavior", "");
    if (behavior != "Isolated") {
      fail(t.path, "unsupported Split behavior '" + behavior + "' (only Isolated)");
    }
    if (flag(p, "invert", false)) fail(t.path, "unsupported Split with invert=true");
    PreTokenizerStep step;
    if (pat.contains("Regex")) {
      step.regex =
          std::make_unique<RegexSplitter>(pat.at("Regex").get<std::string>(), false, t.path);
    } else if (pat.contains("String")) {
      step.regex =
          std::make_unique<RegexSplitter>(pat.at("String").get<std::string>(), true, t.path);
    } else {
      fail(t.path, "Split pre_tokenizer without a Regex or String pattern");
    }
    t.steps.push_back(std::move(step));
  } else if (type == "ByteLevel") {
    PreTokenizerStep step;
    step.add_prefix_space = flag(p, "add_prefix_space", true);
    if (flag(p, "use_regex", true)) {
      step.regex = std::make_unique<RegexSplitter>(kGpt2Pattern, false, t.path);
    }
    t.steps.push_back(std::move(step));
    *byte_level = true;
  } else {
    fail(t.path,
         "unsupported pre_tokenizer type '" + type + "' (implemented: Sequence, Split, ByteLevel)");
  }
}

// merges are "a b" strings in older files and ["a", "b"] pairs in newer ones.
std::vector<std::pair<std::string, std::string>> load_merges(const json& merges,
                                                             const std::string& path) {
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(merges.size());
  for (const auto& m : merges) {
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t sp = s.find(' ', 1);
      if (sp == std::string::npos) fail(path, "malformed merge '" + s + "'");
      out.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else if (m.is_array() && m.size() == 2) {
      out.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      fail(path, "malformed merge " + m.dump());
    }
  }
  return out;
}

void set_token(Tokenizer::Impl& t, int32_t id, const std::string& token, uint8_t flags) {
  if (id < 0) fail(t.path, "negative token id for '" + token + "'");
  if (static_cast<size_t>(id) >= t.id_to_token.size()) {
    t.id_to_token.resize(id + 1);
    t.id_bytes.resize(id + 1);
    t.flags.resize(id + 1);
  }
  t.id_to_token[id] = token;
  t.id_bytes[id].clear();
  byte_level::decode_token(token, t.id_bytes[id]);
  t.flags[id] = flags;
  t.token_to_id[token] = id;
}

void load(const json& j, Tokenizer::Impl& t) {
  if (!j.is_object()) fail(t.path, "not a JSON object");
  if (!j.contains("model")) fail(t.path, "no \"model\" section");
  const json& model = j.at("model");
  std::string type = type_of(model);
  if (type.empty() && model.contains("merges")) type = "BPE";  // HF infers it the same way
  if (type != "BPE") {
    fail(t.path, "unsupported model type '" + type + "' (only byte-level BPE is implemented)");
  }
  if (model.contains("dropout") && !model.at("dropout").is_null()) {
    fail(t.path, "BPE dropout is not supported");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (model.contains(key) && model.at(key).is_string() &&
        !model.at(key).get<std::string>().empty()) {
      fail(t.path, std::string("unsupported BPE ") + key);
    }
  }
  if (!model.contains("vocab") || !model.at("vocab").is_object())
    fail(t.path, "model.vocab missing");
  if (!model.contains("merges") || !model.at("merges").is_array())
    fail(t.path, "model.merges missing");

  std::unordered_map<std::string, int32_t> vocab;
  vocab.reserve(model.at("vocab").size());
  for (const auto& [token, id] : model.at("vocab").items()) {
    vocab.emplace(token, id.get<int32_t>());
    set_token(t, id.get<int32_t>(), token, 0);
  }

  load_normalizer(j.value("normalizer", json()), t);
  bool byte_level = false;
  if (j.contains("pre_tokenizer") && !j.at("pre_tokenizer").is_null()) {
    load_pre_tokenizer(j.at("pre_tokenizer"), t, &byte_level);
  }
  if (!byte_level)
    fail(t.path, "pre_tokenizer has no ByteLevel step (only byte-level BPE is implemented)");
  if (j.contains("decoder") && !j.at("decoder").is_null() &&
      type_of(j.at("decoder")) != "ByteLevel") {
    fail(t.path, "unsupported decoder type '" + type_of(j.at("decoder")) + "' (only ByteLevel)");
  }

  t.bpe = std::make_unique<BpeModel>(vocab, load_merges(model.at("merges"), t.path),
                                     flag(model, "ignore_merges", false), t.path);

  std::vector<AddedToken> raw, normalized;
  if (j.contains("added_tokens") && j.at("added_tokens").is_array()) {
    for (const auto& a : j.at("added_tokens")) {
      AddedToken tok;
      tok.id = a.at("id").get<int32_t>();
      tok.content = a.at("content").get<std::string>();
      tok.single_word = flag(a, "single_word", false);
      tok.lstrip = flag(a, "lstrip", false);
      tok.rstrip = flag(a, "rstrip", false);
      tok.normalized = flag(a, "normalized", !flag(a, "special", false));
      tok.special = flag(a, "special", false);
      if (tok.content.empty()) continue;
      set_token(t, tok.id, tok.content,
                Tokenizer::Impl::kAdded | (tok.special ? Tokenizer::Impl::kSpecial : 0));
      if (tok.normalized) {
        // Matched in the normalized text, so match its normalized form.
        std::string scratch;
        if (t.nfc) tok.content = std::string(nfc(tok.content, scratch));
        normalized.push_back(std::move(tok));
      } else {
        raw.push_back(std::move(tok));
      }
    }
  }
  t.raw_added = AddedTokenMatcher(std::move(raw));
  t.normalized_added = AddedTokenMatcher(std::move(normalized));
}

}  // namespace

std::unique_ptr<Tokenizer::Impl> parse_tokenizer_json(std::string_view text,
                                                      const std::string& path) {
  auto t = std::make_unique<Tokenizer::Impl>();
  t->path = path;
  json j;
  try {
    j = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {  // parse_error, and out_of_range for 1E99999
    fail(path, std::string("malformed JSON (truncated?): ") + e.what());
  }
  try {
    load(j, *t);
  } catch (const json::exception& e) {
    fail(path, std::string("unexpected structure: ") + e.what());
  }
  return t;
}

std::unique_ptr<Tokenizer::Impl> load_tokenizer_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot open tokenizer file");
  std::stringstream buf;
  buf << in.rdbuf();
  if (in.bad()) fail(path, "read error");
  return parse_tokenizer_json(buf.str(), path);
}

}  // namespace kaizen::text
