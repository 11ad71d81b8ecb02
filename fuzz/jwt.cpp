// Bearer tokens as keel's verifier reads them: structure (three base64url parts, JSON header and claims),
// then the signature against an Ed25519 and an ES256 key; and a JWK as a key set would hold it.
#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "keel/auth/jws.hpp"

using keel::auth::Alg;
using keel::auth::SigningKey;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const SigningKey ed = SigningKey::generate(Alg::EdDSA, "ed");
  static const SigningKey es = SigningKey::generate(Alg::ES256, "es");
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  if (auto jwt = keel::auth::decode_jwt(input)) {
    (void)keel::auth::parse_alg(jwt->header.contains("alg") && jwt->header.at("alg").is_string()
                                    ? std::string_view(jwt->header.at("alg").as_string())
                                    : std::string_view());
    if (ed.public_key().verify(jwt->signing_input, jwt->signature)) __builtin_trap();  // a forgery
    if (es.public_key().verify(jwt->signing_input, jwt->signature)) __builtin_trap();
  }
  boost::system::error_code ec;
  const auto v = boost::json::parse(input, ec);
  if (!ec && v.is_object()) {
    if (auto key = keel::auth::VerifyKey::from_jwk(v.as_object())) (void)key->verify("a.b", "signature");
  }
  return 0;
}
