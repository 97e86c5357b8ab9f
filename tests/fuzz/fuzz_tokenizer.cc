// libFuzzer target for the tokenizer, two inputs in one:
//  - first byte 'J': the rest is a tokenizer.json -> Tokenizer::from_json_text; bad files
//    must be a TokenizerError. A tokenizer that loads must encode and decode a probe text
//    with ids inside its vocabulary.
//  - otherwise: arbitrary bytes through the real Qwen3 tokenizer (KAIZEN_QWEN3_TOKENIZER_DIR,
//    set by ctest): decode(encode(x)) == NFC(x) for valid UTF-8 (Qwen3's normalizer is NFC);
//    for any bytes, ids are in range, the streaming decoder emits exactly decode()'s text,
//    and that text is valid UTF-8.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "learning/text/nfc.h"
#include "learning/text/tokenizer.h"
#include "learning/text/utf8.h"
#include "tests/fuzz/fuzz_check.h"

using kaizen::text::StreamDecoder;
using kaizen::text::Tokenizer;
using kaizen::text::TokenizerError;

namespace {

std::shared_ptr<const Tokenizer> qwen3;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* dir = std::getenv("KAIZEN_QWEN3_TOKENIZER_DIR");
  if (dir == nullptr || *dir == '\0') {
    std::fprintf(stderr, "KAIZEN_QWEN3_TOKENIZER_DIR is not set (ctest sets it)\n");
    std::abort();
  }
  qwen3 = Tokenizer::from_model_dir(dir);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  if (!input.empty() && input[0] == 'J') {
    std::shared_ptr<const Tokenizer> tok;
    try {
      tok = Tokenizer::from_json_text(input.substr(1), "fuzz/tokenizer.json");
    } catch (const TokenizerError&) {
      return 0;
    }
    const auto ids = tok->encode("Hello, Sabitech! <|im_end|> 123 \xe4\xbd\xa0\xe5\xa5\xbd");
    for (int32_t id : ids) FUZZ_CHECK(id >= 0 && id < tok->vocab_size());
    (void)tok->decode(ids);
    return 0;
  }
  const bool parse_special = size % 2 == 0;
  const auto ids = qwen3->encode(input, parse_special);
  for (int32_t id : ids) FUZZ_CHECK(id >= 0 && id < qwen3->vocab_size());
  const std::string text = qwen3->decode(ids);
  FUZZ_CHECK(kaizen::text::utf8::is_valid(text));
  if (kaizen::text::utf8::is_valid(input)) {
    std::string scratch;
    FUZZ_CHECK(text == kaizen::text::nfc(input, scratch));
  }
  StreamDecoder stream(qwen3, /*skip_special=*/false);
  std::string streamed;
  for (int32_t id : ids) streamed += stream.push(id);
  streamed += stream.flush();
  FUZZ_CHECK(streamed == text);
  return 0;
}
