#include "keel/auth/email.hpp"

#include <unicode/normalizer2.h>
#include <unicode/uidna.h>
#include <unicode/unistr.h>
#include <unicode/utf8.h>

#include <algorithm>
#include <memory>

namespace keel::auth {

namespace {

bool valid_utf8(std::string_view s) {
  int32_t i = 0;
  const auto n = static_cast<int32_t>(s.size());
  while (i < n) {
    UChar32 c;
    U8_NEXT(reinterpret_cast<const uint8_t*>(s.data()), i, n, c);
    if (c < 0) return false;
  }
  return true;
}

struct IdnaClose {
  void operator()(UIDNA* p) const { uidna_close(p); }
};

}  // namespace

std::optional<std::string> email_key(std::string_view email) {
  if (!valid_utf8(email)) return std::nullopt;
  const size_t at = email.rfind('@');
  const std::string_view local = email.substr(0, at == std::string_view::npos ? email.size() : at);
  const std::string_view domain = at == std::string_view::npos ? std::string_view() : email.substr(at + 1);
  UErrorCode err = U_ZERO_ERROR;
  const icu::Normalizer2* fold = icu::Normalizer2::getNFKCCasefoldInstance(err);
  if (U_FAILURE(err)) return std::nullopt;
  const icu::UnicodeString folded = fold->normalize(
      icu::UnicodeString::fromUTF8(icu::StringPiece(local.data(), static_cast<int32_t>(local.size()))), err);
  if (U_FAILURE(err)) return std::nullopt;
  std::string out;
  folded.toUTF8String(out);
  if (at == std::string_view::npos) return out;
  out += '@';
  static thread_local std::unique_ptr<UIDNA, IdnaClose> idna;
  if (!idna) {
    UErrorCode open = U_ZERO_ERROR;
    idna.reset(
        uidna_openUTS46(UIDNA_NONTRANSITIONAL_TO_ASCII | UIDNA_CHECK_BIDI | UIDNA_CHECK_CONTEXTJ, &open));
    if (U_FAILURE(open)) return std::nullopt;
  }
  char ascii[256];
  UIDNAInfo info = UIDNA_INFO_INITIALIZER;
  const int32_t len = uidna_nameToASCII_UTF8(idna.get(), domain.data(), static_cast<int32_t>(domain.size()),
                                             ascii, sizeof ascii, &info, &err);
  if (U_FAILURE(err) || info.errors != 0 || len <= 0 || len >= static_cast<int32_t>(sizeof ascii))
    return std::nullopt;
  std::string d(ascii, static_cast<size_t>(len));
  std::transform(d.begin(), d.end(), d.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out + d;
}

}  // namespace keel::auth
