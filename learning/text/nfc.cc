#include "learning/text/nfc.h"

#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>

#include <stdexcept>

#include "learning/text/utf8.h"

namespace kaizen::text {

namespace {

const icu::Normalizer2& nfc_instance() {
  static const icu::Normalizer2* n = [] {
    UErrorCode status = U_ZERO_ERROR;
    const icu::Normalizer2* inst = icu::Normalizer2::getNFCInstance(status);
    if (U_FAILURE(status)) throw std::runtime_error("ICU NFC normalizer unavailable");
    return inst;
  }();
  return *n;
}

bool is_nfc(std::string_view s) {
  UErrorCode status = U_ZERO_ERROR;
  const bool ok = nfc_instance().isNormalizedUTF8(icu::StringPiece(s.data(), s.size()), status);
  return U_SUCCESS(status) && ok;
}

void append_nfc(std::string_view s, std::string& out) {
  UErrorCode status = U_ZERO_ERROR;
  icu::StringByteSink<std::string> sink(&out);
  nfc_instance().normalizeUTF8(0, icu::StringPiece(s.data(), s.size()), sink, nullptr, status);
  if (U_FAILURE(status)) out.append(s);  // cannot happen for well-formed input
}

}  // namespace

std::string_view nfc(std::string_view in, std::string& scratch) {
  if (utf8::is_ascii(in)) return in;
  if (utf8::is_valid(in)) {
    if (is_nfc(in)) return in;
    scratch.clear();
    append_nfc(in, scratch);
    return scratch;
  }
  // Ill-formed input: normalize each well-formed run, copy the bad bytes through.
  scratch.clear();
  size_t i = 0, run = 0, len = 0;
  while (i < in.size()) {
    if (utf8::next_sequence(in, i, &len) == utf8::Seq::kValid) {
      i += len;
      continue;
    }
    append_nfc(in.substr(run, i - run), scratch);
    scratch.append(in.substr(i, len));
    i += len;
    run = i;
  }
  append_nfc(in.substr(run), scratch);
  return scratch;
}

}  // namespace kaizen::text
