#include "keel/auth/passwords.hpp"

#include <gtest/gtest.h>

using keel::auth::PasswordHasher;

TEST(Passwords, HashesAreArgon2idAtTheConfiguredCostAndVerify) {
  PasswordHasher h(19456, 2, 1, 4);
  const std::string stored = h.hash_sync("correct horse battery");
  EXPECT_EQ(stored.rfind("$argon2id$v=19$m=19456,t=2,p=1$", 0), 0u) << stored;
  EXPECT_TRUE(h.verify_sync(stored, "correct horse battery"));
  EXPECT_FALSE(h.verify_sync(stored, "correct horse batterY"));
  EXPECT_FALSE(h.needs_rehash(stored));
  // Unknown accounts verify against a dummy hash and never succeed.
  EXPECT_FALSE(h.verify_sync("", "correct horse battery"));
}

TEST(Passwords, WeakerStoredParametersNeedARehash) {
  PasswordHasher weak(8192, 1, 1, 4);
  const std::string old = weak.hash_sync("pw-pw-pw-pw");
  PasswordHasher strong(19456, 2, 1, 4);
  EXPECT_TRUE(strong.needs_rehash(old));
  EXPECT_TRUE(strong.verify_sync(old, "pw-pw-pw-pw"));
}
