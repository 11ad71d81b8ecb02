// JWS signing and the verifier's RFC 8725 checks, against a real (SQLite) key store.
#include "keel/auth/jws.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>

#include "keel/auth/crypto.hpp"
#include "keel/auth/issuer.hpp"
#include "keel/auth/keys.hpp"
#include "keel/auth/verifier.hpp"
#include "keel/core/config.hpp"
#include "keel/core/error.hpp"
#include "keel/core/ids.hpp"
#include "keel/db/database.hpp"
#include "keel/db/migrations.hpp"

using namespace keel::auth;
namespace json = boost::json;

TEST(Jws, EdDsaAndEs256SignAndVerify) {
  for (Alg alg : {Alg::EdDSA, Alg::ES256}) {
    SigningKey key = SigningKey::generate(alg, "kid-1");
    const std::string token = sign_jwt(key, json::object{{"sub", "u1"}});
    auto decoded = decode_jwt(token);
    ASSERT_TRUE(decoded);
    EXPECT_EQ(decoded->header.at("alg").as_string(), alg_name(alg));
    EXPECT_EQ(decoded->header.at("kid").as_string(), "kid-1");
    EXPECT_TRUE(key.public_key().verify(decoded->signing_input, decoded->signature));
    // The JWK round-trips, and a reloaded private key signs tokens the old public key accepts.
    auto from_jwk = VerifyKey::from_jwk(key.public_key().jwk());
    ASSERT_TRUE(from_jwk);
    EXPECT_TRUE(from_jwk->verify(decoded->signing_input, decoded->signature));
    SigningKey reloaded = SigningKey::from_private(alg, "kid-1", key.private_bytes());
    const std::string token2 = sign_jwt(reloaded, json::object{{"sub", "u2"}});
    auto again = decode_jwt(token2);
    EXPECT_TRUE(key.public_key().verify(again->signing_input, again->signature));
    // Another key's signature fails.
    SigningKey other = SigningKey::generate(alg, "kid-1");
    EXPECT_FALSE(other.public_key().verify(decoded->signing_input, decoded->signature));
  }
}

TEST(Jws, MalformedTokensDoNotDecode) {
  EXPECT_FALSE(decode_jwt(""));
  EXPECT_FALSE(decode_jwt("a.b"));
  EXPECT_FALSE(decode_jwt("a.b.c.d"));
  EXPECT_FALSE(decode_jwt("!!!.e30.e30"));
  EXPECT_FALSE(decode_jwt("e30.WzFd.e30"));  // payload is an array
}

TEST(Crypto, SealedDataNeedsTheKeyAndTheSameAad) {
  MasterKey k{};
  k[0] = 1;
  const std::string sealed = seal(k, "private key bytes", "kid-1");
  EXPECT_EQ(open(k, sealed, "kid-1").value(), "private key bytes");
  EXPECT_FALSE(open(k, sealed, "kid-2"));
  MasterKey other{};
  EXPECT_FALSE(open(other, sealed, "kid-1"));
  std::string tampered = sealed;
  tampered.back() ^= 1;
  EXPECT_FALSE(open(k, tampered, "kid-1"));
}

namespace {
class VerifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("keel-jws-" + keel::random_hex(6));
    keel::Config config;
    config.data_dir = dir_;
    config.database = "sqlite://" + (dir_ / "keel.db").string();
    std::filesystem::create_directories(dir_);
    db_ = keel::db::open_database(config);
    keel::db::migrate(*db_);
    settings_ = AuthSettings::from(config);
    master_ = create_master_key_file(dir_ / "master.key");
    issuer_ = std::make_unique<TokenIssuer>(*db_, settings_, master_);
    issuer_->load_sync();
    verifier_ = std::make_unique<TokenVerifier>(*db_, VerifierSettings{"keel", "keel", 900, 30});
    verifier_->load_sync();
  }
  void TearDown() override {
    db_->close();
    std::filesystem::remove_all(dir_);
  }
  int64_t now() const {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  // Signs arbitrary claims with the real signing key, to test the claim checks.
  std::string sign_claims(const json::object& claims) {
    auto keys = db_->read_sync([](keel::db::Session& s) { return load_published_keys(s); });
    return sign_jwt(unseal_key(keys.at(0), master_), claims);
  }
  json::object good_claims() {
    return {{"iss", "keel"},
            {"aud", "keel"},
            {"sub", "u1"},
            {"sid", "s1"},
            {"exp", now() + 60},
            {"iat", now()},
            {"roles", json::array{"user"}}};
  }
  void expect_rejected(const std::string& token, const char* why) {
    try {
      verifier_->verify(token);
      ADD_FAILURE() << "accepted: " << why;
    } catch (const keel::Error& e) {
      EXPECT_EQ(e.status(), 401) << why;
    }
  }

  std::filesystem::path dir_;
  std::unique_ptr<keel::db::Database> db_;
  AuthSettings settings_;
  MasterKey master_{};
  std::unique_ptr<TokenIssuer> issuer_;
  std::unique_ptr<TokenVerifier> verifier_;
};
}  // namespace

TEST_F(VerifierTest, AcceptsItsOwnTokens) {
  const std::string token = issuer_->sign({"u1", "s1", {"user", "admin"}, now() + 60, {}});
  Principal p = verifier_->verify(token);
  EXPECT_EQ(p.user_id, "u1");
  EXPECT_EQ(p.session_id, "s1");
  EXPECT_TRUE(p.is_admin());
  EXPECT_FALSE(p.is_service());
  // The second check is served from the cache and still sees a revocation.
  verifier_->revoke_local("s1", std::chrono::system_clock::now() + std::chrono::minutes(1));
  expect_rejected(token, "revoked session");
}

TEST_F(VerifierTest, ExpiredTokensLeaveTheCache) {
  const std::string short_lived = issuer_->sign({"u1", "s1", {"user"}, now() + 5, {}});
  const std::string long_lived = issuer_->sign({"u2", "s2", {"user"}, now() + 600, {}});
  verifier_->verify(short_lived);
  verifier_->verify(long_lived);
  EXPECT_EQ(verifier_->cached(), 2u);
  EXPECT_EQ(verifier_->forget_expired(now()), 0u);
  EXPECT_EQ(verifier_->forget_expired(now() + 10), 1u);
  EXPECT_EQ(verifier_->cached(), 1u);
  EXPECT_EQ(verifier_->verify(long_lived).user_id, "u2");
}

TEST_F(VerifierTest, TokensNotPresentedForAMinuteLeaveTheCache) {
  const std::string token = issuer_->sign({"u3", "s3", {"user"}, now() + 3600, {}});
  verifier_->verify(token);
  EXPECT_EQ(verifier_->forget_expired(now() + 30), 0u);  // idle half a minute: kept
  EXPECT_EQ(verifier_->forget_expired(now() + 61), 1u);  // idle over a minute: gone, though still valid
  EXPECT_EQ(verifier_->cached(), 0u);
  EXPECT_EQ(verifier_->verify(token).user_id, "u3");  // still accepted when it comes back
}

TEST_F(VerifierTest, RefusesBadClaims) {
  auto with = [&](const char* key, json::value v) {
    auto c = good_claims();
    c[key] = v;
    return sign_claims(c);
  };
  EXPECT_NO_THROW(verifier_->verify(sign_claims(good_claims())));
  expect_rejected(with("iss", "someone-else"), "issuer");
  expect_rejected(with("aud", "other"), "audience");
  expect_rejected(with("aud", json::array{"x", "y"}), "audience array without keel");
  EXPECT_NO_THROW(verifier_->verify(with("aud", json::array{"x", "keel"})));
  expect_rejected(with("exp", now() - 1), "expired");
  expect_rejected(with("nbf", now() + 3600), "not yet valid");
  auto no_exp = good_claims();
  no_exp.erase("exp");
  expect_rejected(sign_claims(no_exp), "no exp");
  auto no_sid = good_claims();
  no_sid.erase("sid");
  expect_rejected(sign_claims(no_sid), "no sid");
}

TEST_F(VerifierTest, RefusesForeignAlgorithmsAndKeys) {
  const std::string good = issuer_->sign({"u1", "s1", {"user"}, now() + 60, {}});
  auto decoded = decode_jwt(good);
  const std::string kid(decoded->header.at("kid").as_string());
  const std::string payload = good.substr(good.find('.') + 1, good.rfind('.') - good.find('.') - 1);
  auto header = [&](const char* alg) {
    return keel::base64url_encode(json::serialize(json::object{{"alg", alg}, {"typ", "JWT"}, {"kid", kid}}));
  };
  expect_rejected(header("none") + "." + payload + ".", "alg none");
  const std::string hs_input = header("HS256") + "." + payload;
  expect_rejected(hs_input + "." + keel::base64url_encode(hmac_sha256("public key", hs_input)), "HS256");
  expect_rejected(header("ES256") + "." + payload + "." + good.substr(good.rfind('.') + 1), "alg swapped");
  SigningKey impostor = SigningKey::generate(Alg::EdDSA, kid);
  expect_rejected(sign_jwt(impostor, good_claims()), "another key under our kid");
  expect_rejected(sign_jwt(SigningKey::generate(Alg::EdDSA, "unknown-kid"), good_claims()), "unknown kid");
  const std::string crit = keel::base64url_encode(
      json::serialize(json::object{{"alg", "EdDSA"}, {"kid", kid}, {"crit", json::array{"exp"}}}));
  expect_rejected(crit + "." + payload + "." + good.substr(good.rfind('.') + 1), "crit header");
}

TEST_F(VerifierTest, RotationKeepsOldTokensAndPublishesTheNewKeyBeforeUse) {
  const std::string before = issuer_->sign({"u1", "s1", {"user"}, now() + 60, {}});
  const std::string old_kid = issuer_->current_kid();
  db_->write_sync([&](keel::db::Session& s) { rotate_keys(s, master_, Alg::EdDSA, 900); });
  issuer_->load_sync();
  verifier_->load_sync();
  auto keys = db_->read_sync([](keel::db::Session& s) { return load_published_keys(s); });
  EXPECT_EQ(keys.size(), 2u);
  // The new key is published now but signs only once verifiers have had time to load it.
  EXPECT_EQ(issuer_->current_kid(), old_kid);
  EXPECT_NO_THROW(verifier_->verify(before));
}
