// tokenizer.json variants: bad files must give a TokenizerError that names the file and
// the problem; added-token flags (lstrip/rstrip/single_word) and ignore_merges must behave
// as in HF tokenizers.
#include <gtest/gtest.h>

#include "learning/text/byte_level.h"
#include "learning/text/tokenizer.h"
#include "text_test_util.h"

namespace kaizen::text {
namespace {

using nlohmann::json;
using testing::read_file;
using testing::TempDir;
using testing::write_file;

// A tiny byte-level BPE: the 256 byte tokens, then "ab" (256), "abc" (257), "xy" (258)
// where "xy" has no merge path, plus one added token.
json tiny_tokenizer() {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) {
    vocab[byte_level::encode(std::string(1, static_cast<char>(b)))] = b;
  }
  vocab["ab"] = 256;
  vocab["abc"] = 257;
  vocab["xy"] = 258;
  return {
      {"version", "1.0"},
      {"added_tokens",
       {{{"id", 259}, {"content", "<sep>"}, {"special", true}, {"normalized", false}}}},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model",
       {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"a b", "ab c"}}, {"ignore_merges", false}}},
  };
}

std::string expect_error(const std::string& path) {
  try {
    Tokenizer::from_file(path);
  } catch (const TokenizerError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos)
        << "no file name in: " << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no TokenizerError for " << path;
  return "";
}

TEST(TokenizerFiles, MissingFileAndDirectory) {
  TempDir d;
  EXPECT_NE(expect_error(d.file("nope.json")).find("cannot open"), std::string::npos);
  try {
    Tokenizer::from_model_dir(d.file("no-such-dir"));
    ADD_FAILURE();
  } catch (const TokenizerError& e) {
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
  }
  try {
    Tokenizer::from_model_dir(d.path());
    ADD_FAILURE();
  } catch (const TokenizerError& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.json"), std::string::npos) << e.what();
  }
}

TEST(TokenizerFiles, MalformedJson) {
  TempDir d;
  const std::string real = read_file(testing::qwen3_dir() + "/tokenizer.json");
  ASSERT_GT(real.size(), 1000000u);
  write_file(d.file("truncated.json"), real.substr(0, real.size() / 2));
  EXPECT_NE(expect_error(d.file("truncated.json")).find("malformed JSON"), std::string::npos);
  write_file(d.file("empty.json"), "");
  EXPECT_NE(expect_error(d.file("empty.json")).find("malformed JSON"), std::string::npos);
  write_file(d.file("array.json"), "[1, 2]");
  EXPECT_NE(expect_error(d.file("array.json")).find("not a JSON object"), std::string::npos);
  write_file(d.file("nomodel.json"), "{}");
  EXPECT_NE(expect_error(d.file("nomodel.json")).find("model"), std::string::npos);
  json j = tiny_tokenizer();
  j["model"]["vocab"] = "oops";
  write_file(d.file("badvocab.json"), j.dump());
  EXPECT_NE(expect_error(d.file("badvocab.json")).find("vocab"), std::string::npos);
  j = tiny_tokenizer();
  j["added_tokens"][0]["id"] = "x";
  write_file(d.file("badid.json"), j.dump());
  EXPECT_NE(expect_error(d.file("badid.json")).find("unexpected structure"), std::string::npos);
}

// The in-memory loader (the fuzzer's entry point) is the file loader without the read.
TEST(TokenizerFiles, JsonTextLoadsLikeTheFile) {
  const std::string path = testing::qwen3_dir() + "/tokenizer.json";
  const auto from_file = Tokenizer::from_file(path);
  const auto from_text = Tokenizer::from_json_text(read_file(path), "memory:qwen3");
  EXPECT_EQ(from_text->path(), "memory:qwen3");
  EXPECT_EQ(from_text->vocab_size(), from_file->vocab_size());
  const std::string sample = "Sabitech's Chorei starts at 8:30 <|im_end|> 改善 🙂";
  EXPECT_EQ(from_text->encode(sample), from_file->encode(sample));
  try {
    Tokenizer::from_json_text("{\"model\": 3", "memory:bad");
    ADD_FAILURE() << "no TokenizerError";
  } catch (const TokenizerError& e) {
    EXPECT_NE(std::string(e.what()).find("memory:bad"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("malformed JSON"), std::string::npos) << e.what();
  }
  // Found by fuzzing: a number too large for a double is nlohmann's out_of_range, not a
  // parse_error; it escaped the loader and would have ended kaizend.
  try {
    Tokenizer::from_json_text("801E18670", "memory:huge");
    ADD_FAILURE() << "no TokenizerError";
  } catch (const TokenizerError& e) {
    EXPECT_NE(std::string(e.what()).find("malformed JSON"), std::string::npos) << e.what();
  }
}

TEST(TokenizerFiles, UnsupportedKindsAreRefused) {
  TempDir d;
  struct Case {
    std::string name, expect;
    std::function<void(json&)> edit;
  };
  const std::vector<Case> cases = {
      {"unigram", "unsupported model type 'Unigram'",
       [](json& j) {
         j["model"] = {{"type", "Unigram"}, {"vocab", json::array()}};
       }},
      {"wordpiece", "unsupported model type 'WordPiece'",
       [](json& j) { j["model"]["type"] = "WordPiece"; }},
      {"nfkc", "unsupported normalizer type 'NFKC'",
       [](json& j) {
         j["normalizer"] = {{"type", "NFKC"}};
       }},
      {"metaspace", "unsupported pre_tokenizer type 'Metaspace'",
       [](json& j) {
         j["pre_tokenizer"] = {{"type", "Metaspace"}};
       }},
      {"nobytelevel", "no ByteLevel", [](json& j) { j["pre_tokenizer"] = nullptr; }},
      {"badregex", "does not compile",
       [](json& j) {
         j["pre_tokenizer"] = {
             {"type", "Sequence"},
             {"pretokenizers",
              {{{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}},
               {{"type", "ByteLevel"}, {"use_regex", false}}}}};
       }},
      {"badmerge", "not in the vocab", [](json& j) { j["model"]["merges"].push_back("q zz"); }},
      {"nobytes", "byte-level token for byte", [](json& j) { j["model"]["vocab"].erase("a"); }},
      {"dropout", "dropout", [](json& j) { j["model"]["dropout"] = 0.1; }},
  };
  for (const auto& c : cases) {
    json j = tiny_tokenizer();
    c.edit(j);
    write_file(d.file(c.name + ".json"), j.dump());
    const std::string msg = expect_error(d.file(c.name + ".json"));
    EXPECT_NE(msg.find(c.expect), std::string::npos) << c.name << ": " << msg;
  }
}

TEST(TokenizerFiles, TinyBpeMergesAndIgnoreMerges) {
  TempDir d;
  json j = tiny_tokenizer();
  write_file(d.file("t.json"), j.dump());
  auto tok = Tokenizer::from_file(d.file("t.json"));
  EXPECT_EQ(tok->vocab_size(), 260);
  EXPECT_EQ(tok->encode("abc"), (std::vector<int32_t>{257}));
  EXPECT_EQ(tok->encode("abab"), (std::vector<int32_t>{256, 256}));
  EXPECT_EQ(tok->encode("xy"), (std::vector<int32_t>{'x', 'y'}));  // no merge leads to "xy"
  EXPECT_EQ(tok->encode("a<sep>b"), (std::vector<int32_t>{'a', 259, 'b'}));
  j["model"]["ignore_merges"] = true;  // whole pre-tokens found in the vocab win
  write_file(d.file("t2.json"), j.dump());
  EXPECT_EQ(Tokenizer::from_file(d.file("t2.json"))->encode("xy"), (std::vector<int32_t>{258}));
}

TEST(TokenizerFiles, LstripRstripMatchReference) {
  // The real Qwen3 files with <|im_end|> stripping both sides and <think> its left side.
  TempDir d;
  json j = json::parse(read_file(testing::qwen3_dir() + "/tokenizer.json"));
  for (auto& t : j["added_tokens"]) {
    if (t["content"] == "<|im_end|>") t["lstrip"] = t["rstrip"] = true;
    if (t["content"] == "<think>") t["lstrip"] = true;
  }
  write_file(d.file("tokenizer.json"), j.dump());
  write_file(d.file("tokenizer_config.json"),
             read_file(testing::qwen3_dir() + "/tokenizer_config.json"));
  auto tok = Tokenizer::from_model_dir(d.path());
  const std::vector<std::string> texts = {"a  <|im_end|>  b", "x\n\n<think>y", "<|im_end|>   ",
                                          "   <think> z", "p <think>  <|im_end|>  q"};
  const json ref = testing::run_ref("encode", texts, {"--model", d.path()});
  ASSERT_EQ(ref.size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    EXPECT_EQ(tok->encode(texts[i]), ref[i].get<std::vector<int32_t>>()) << texts[i];
  }
  EXPECT_EQ(tok->encode("a  <|im_end|>  b"), (std::vector<int32_t>{64, 151645, 65}));
}

TEST(TokenizerFiles, SingleWordTokensMatchOnlyAlone) {
  // HF semantics (added_vocabulary.rs find_matches): a single_word match is dropped when a
  // word character touches it on either side, and the text is then encoded as plain text.
  TempDir d;
  json j = tiny_tokenizer();
  j["added_tokens"][0]["single_word"] = true;
  write_file(d.file("t.json"), j.dump());
  auto tok = Tokenizer::from_file(d.file("t.json"));
  EXPECT_EQ(tok->encode(" <sep> "), (std::vector<int32_t>{' ', 259, ' '}));
  EXPECT_EQ(tok->encode("<sep>"), (std::vector<int32_t>{259}));
  const auto glued = tok->encode("x<sep>");
  EXPECT_EQ(std::count(glued.begin(), glued.end(), 259), 0);
  EXPECT_EQ(tok->decode(glued), "x<sep>");
  const auto glued_right = tok->encode("<sep>é");
  EXPECT_EQ(std::count(glued_right.begin(), glued_right.end(), 259), 0);
}

}  // namespace
}  // namespace kaizen::text
