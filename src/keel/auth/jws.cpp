#include "keel/auth/jws.hpp"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>
#include <sodium.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <stdexcept>

#include "keel/auth/crypto.hpp"

namespace keel::auth {

namespace {

std::shared_ptr<void> wrap(EVP_PKEY* p) {
  return std::shared_ptr<void>(p, [](void* q) { EVP_PKEY_free(static_cast<EVP_PKEY*>(q)); });
}
EVP_PKEY* pkey(const std::shared_ptr<void>& p) { return static_cast<EVP_PKEY*>(p.get()); }

// 0x04 || x || y of a P-256 key.
std::string ec_public_point(EVP_PKEY* key) {
  unsigned char buf[65];
  size_t len = 0;
  if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, buf, sizeof buf, &len) != 1 || len != 65)
    throw std::runtime_error("ES256: cannot read the public key");
  return std::string(reinterpret_cast<char*>(buf), len);
}

EVP_PKEY* ec_from_point(const std::string& point) {
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
  OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size());
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr);
  EVP_PKEY* key = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
      EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
    key = nullptr;
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  return key;
}

}  // namespace

std::optional<Alg> parse_alg(std::string_view name) {
  if (name == "EdDSA") return Alg::EdDSA;
  if (name == "ES256") return Alg::ES256;
  return std::nullopt;
}

std::string_view alg_name(Alg alg) { return alg == Alg::EdDSA ? "EdDSA" : "ES256"; }

std::optional<VerifyKey> VerifyKey::from_jwk(const boost::json::object& jwk) {
  auto str = [&](const char* k) -> std::string {
    auto it = jwk.find(k);
    return it != jwk.end() && it->value().is_string() ? std::string(it->value().as_string()) : std::string();
  };
  VerifyKey k;
  k.kid_ = str("kid");
  const auto alg = parse_alg(str("alg"));
  if (!alg || k.kid_.empty()) return std::nullopt;
  k.alg_ = *alg;
  if (k.alg_ == Alg::EdDSA) {
    auto x = base64url_decode(str("x"));
    if (str("kty") != "OKP" || str("crv") != "Ed25519" || !x || x->size() != crypto_sign_PUBLICKEYBYTES)
      return std::nullopt;
    k.raw_ = *x;
    return k;
  }
  auto x = base64url_decode(str("x"));
  auto y = base64url_decode(str("y"));
  if (str("kty") != "EC" || str("crv") != "P-256" || !x || !y || x->size() != 32 || y->size() != 32)
    return std::nullopt;
  k.raw_ = "\x04" + *x + *y;
  EVP_PKEY* key = ec_from_point(k.raw_);
  if (!key) return std::nullopt;
  k.evp_ = wrap(key);
  return k;
}

boost::json::object VerifyKey::jwk() const {
  boost::json::object o;
  if (alg_ == Alg::EdDSA) {
    o["kty"] = "OKP";
    o["crv"] = "Ed25519";
    o["x"] = base64url_encode(raw_);
  } else {
    o["kty"] = "EC";
    o["crv"] = "P-256";
    o["x"] = base64url_encode(std::string_view(raw_).substr(1, 32));
    o["y"] = base64url_encode(std::string_view(raw_).substr(33, 32));
  }
  o["kid"] = kid_;
  o["alg"] = alg_name(alg_);
  o["use"] = "sig";
  return o;
}

bool VerifyKey::verify(std::string_view input, std::string_view sig) const {
  if (alg_ == Alg::EdDSA) {
    return sig.size() == crypto_sign_BYTES &&
           crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(sig.data()),
                                       reinterpret_cast<const unsigned char*>(input.data()), input.size(),
                                       reinterpret_cast<const unsigned char*>(raw_.data())) == 0;
  }
  if (sig.size() != 64) return false;
  ECDSA_SIG* es = ECDSA_SIG_new();
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data()), 32, nullptr);
  BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data()) + 32, 32, nullptr);
  ECDSA_SIG_set0(es, r, s);
  unsigned char* der = nullptr;
  const int der_len = i2d_ECDSA_SIG(es, &der);
  ECDSA_SIG_free(es);
  if (der_len <= 0) return false;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok = EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, pkey(evp_)) == 1 &&
                  EVP_DigestVerify(ctx, der, static_cast<size_t>(der_len),
                                   reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
  EVP_MD_CTX_free(ctx);
  OPENSSL_free(der);
  return ok;
}

SigningKey SigningKey::generate(Alg alg, std::string kid) {
  ensure_sodium();
  if (alg == Alg::EdDSA) {
    std::string pk(crypto_sign_PUBLICKEYBYTES, '\0'), sk(crypto_sign_SECRETKEYBYTES, '\0');
    crypto_sign_keypair(reinterpret_cast<unsigned char*>(pk.data()),
                        reinterpret_cast<unsigned char*>(sk.data()));
    return from_private(alg, std::move(kid), sk);
  }
  EVP_PKEY* key = EVP_EC_gen("P-256");
  if (!key) throw std::runtime_error("ES256: key generation failed");
  unsigned char* der = nullptr;
  const int len = i2d_PrivateKey(key, &der);
  EVP_PKEY_free(key);
  if (len <= 0) throw std::runtime_error("ES256: cannot encode the private key");
  std::string bytes(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return from_private(alg, std::move(kid), bytes);
}

SigningKey SigningKey::from_private(Alg alg, std::string kid, std::string_view bytes) {
  SigningKey k;
  k.alg_ = alg;
  k.kid_ = kid;
  k.private_ = std::string(bytes);
  k.public_.alg_ = alg;
  k.public_.kid_ = std::move(kid);
  if (alg == Alg::EdDSA) {
    if (bytes.size() != crypto_sign_SECRETKEYBYTES) throw std::runtime_error("EdDSA: malformed private key");
    std::string pk(crypto_sign_PUBLICKEYBYTES, '\0');
    crypto_sign_ed25519_sk_to_pk(reinterpret_cast<unsigned char*>(pk.data()),
                                 reinterpret_cast<const unsigned char*>(bytes.data()));
    k.public_.raw_ = pk;
    return k;
  }
  const unsigned char* p = reinterpret_cast<const unsigned char*>(bytes.data());
  EVP_PKEY* key = d2i_PrivateKey(EVP_PKEY_EC, nullptr, &p, static_cast<long>(bytes.size()));
  if (!key) throw std::runtime_error("ES256: malformed private key");
  k.evp_ = wrap(key);
  k.public_.raw_ = ec_public_point(key);
  k.public_.evp_ = wrap(ec_from_point(k.public_.raw_));
  return k;
}

std::string SigningKey::private_bytes() const { return private_; }

std::string SigningKey::sign(std::string_view input) const {
  if (alg_ == Alg::EdDSA) {
    std::string sig(crypto_sign_BYTES, '\0');
    crypto_sign_detached(reinterpret_cast<unsigned char*>(sig.data()), nullptr,
                         reinterpret_cast<const unsigned char*>(input.data()), input.size(),
                         reinterpret_cast<const unsigned char*>(private_.data()));
    return sig;
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t der_len = 0;
  std::string der;
  bool ok = EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, pkey(evp_)) == 1 &&
            EVP_DigestSign(ctx, nullptr, &der_len, reinterpret_cast<const unsigned char*>(input.data()),
                           input.size()) == 1;
  if (ok) {
    der.resize(der_len);
    ok = EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(der.data()), &der_len,
                        reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
  }
  EVP_MD_CTX_free(ctx);
  if (!ok) throw std::runtime_error("ES256: signing failed");
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der_len));
  if (!es) throw std::runtime_error("ES256: malformed signature");
  std::string raw(64, '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(es), reinterpret_cast<unsigned char*>(raw.data()), 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(es), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
  ECDSA_SIG_free(es);
  return raw;
}

std::string sign_jwt(const SigningKey& key, const boost::json::object& claims) {
  const boost::json::object header{{"alg", alg_name(key.alg())}, {"typ", "JWT"}, {"kid", key.kid()}};
  std::string input = base64url_encode(boost::json::serialize(header));
  input += '.';
  input += base64url_encode(boost::json::serialize(claims));
  const std::string sig = key.sign(input);
  input += '.';
  input += base64url_encode(sig);
  return input;
}

std::optional<DecodedJwt> decode_jwt(std::string_view token) {
  if (token.size() > 8192) return std::nullopt;
  const auto d1 = token.find('.');
  if (d1 == std::string_view::npos) return std::nullopt;
  const auto d2 = token.find('.', d1 + 1);
  if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos) return std::nullopt;
  auto header = base64url_decode(token.substr(0, d1));
  auto claims = base64url_decode(token.substr(d1 + 1, d2 - d1 - 1));
  auto sig = base64url_decode(token.substr(d2 + 1));
  if (!header || !claims || !sig) return std::nullopt;
  boost::system::error_code ec1, ec2;
  auto hv = boost::json::parse(*header, ec1);
  auto cv = boost::json::parse(*claims, ec2);
  if (ec1 || ec2 || !hv.is_object() || !cv.is_object()) return std::nullopt;
  return DecodedJwt{std::move(hv.as_object()), std::move(cv.as_object()), token.substr(0, d2),
                    std::move(*sig)};
}

}  // namespace keel::auth
