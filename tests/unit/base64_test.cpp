#include "keel/core/base64.hpp"

#include <gtest/gtest.h>

#include "keel/core/ids.hpp"

TEST(Base64Url, RoundTripsEveryLengthAndByte) {
  for (size_t len = 0; len < 80; ++len) {
    std::string raw;
    for (size_t i = 0; i < len; ++i) raw.push_back(static_cast<char>((i * 37 + len * 11) & 0xff));
    const std::string enc = keel::base64url_encode(raw);
    EXPECT_EQ(enc.find_first_of("+/="), std::string::npos);
    auto dec = keel::base64url_decode(enc);
    ASSERT_TRUE(dec.has_value()) << "length " << len << " " << enc;
    EXPECT_EQ(*dec, raw);
  }
  for (int i = 0; i < 200; ++i) {
    const std::string raw = "k1:" + keel::uuid_v7();
    auto dec = keel::base64url_decode(keel::base64url_encode(raw));
    ASSERT_TRUE(dec.has_value()) << keel::base64url_encode(raw);
    EXPECT_EQ(*dec, raw);
  }
}

TEST(Base64Url, RejectsOtherAlphabetsAndPadding) {
  EXPECT_FALSE(keel::base64url_decode("ab+/").has_value());
  EXPECT_FALSE(keel::base64url_decode("YQ==").has_value());
  EXPECT_FALSE(keel::base64url_decode("a b").has_value());
}
