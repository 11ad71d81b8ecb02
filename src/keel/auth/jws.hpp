#pragma once
// JWS compact serialization (RFC 7515) for JWTs, with EdDSA (Ed25519, libsodium) and ES256 (P-256, OpenSSL).
// Each key carries exactly one algorithm: a token is checked with its key's algorithm, never its own claim.
#include <boost/json/object.hpp>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace keel::auth {

enum class Alg { EdDSA, ES256 };
std::optional<Alg> parse_alg(std::string_view name);
std::string_view alg_name(Alg alg);

class VerifyKey {
 public:
  static std::optional<VerifyKey> from_jwk(const boost::json::object& jwk);
  const std::string& kid() const { return kid_; }
  Alg alg() const { return alg_; }
  boost::json::object jwk() const;
  bool verify(std::string_view signing_input, std::string_view signature) const;

 private:
  friend class SigningKey;
  Alg alg_ = Alg::EdDSA;
  std::string kid_;
  std::string raw_;            // Ed25519: 32-byte public key; ES256: 0x04 || x || y
  std::shared_ptr<void> evp_;  // ES256: EVP_PKEY*
};

class SigningKey {
 public:
  static SigningKey generate(Alg alg, std::string kid);
  // From private_bytes() of an earlier key; throws on malformed input.
  static SigningKey from_private(Alg alg, std::string kid, std::string_view private_bytes);
  const std::string& kid() const { return kid_; }
  Alg alg() const { return alg_; }
  std::string private_bytes() const;
  const VerifyKey& public_key() const { return public_; }
  std::string sign(std::string_view signing_input) const;

 private:
  Alg alg_ = Alg::EdDSA;
  std::string kid_;
  std::string private_;        // Ed25519: 64-byte secret key; ES256: DER
  std::shared_ptr<void> evp_;  // ES256: EVP_PKEY*
  VerifyKey public_;
};

// header.payload.signature with header {"alg","typ":"JWT","kid"}.
std::string sign_jwt(const SigningKey& key, const boost::json::object& claims);

struct DecodedJwt {
  boost::json::object header;
  boost::json::object claims;
  std::string_view signing_input;  // into the token passed to decode_jwt
  std::string signature;
};
// Structure only (three base64url parts holding JSON objects); nothing is verified.
std::optional<DecodedJwt> decode_jwt(std::string_view token);

}  // namespace keel::auth
