#include "keel/auth/email.hpp"

#include <gtest/gtest.h>

using keel::auth::email_key;

TEST(EmailKey, AsciiIsItsLowerCaseAsBefore) {
  EXPECT_EQ(email_key("Ann.Smith+tag@Example.COM"), "ann.smith+tag@example.com");
  EXPECT_EQ(email_key("a@xn--bcher-kva.example"), "a@xn--bcher-kva.example");
}

TEST(EmailKey, LookAlikesAreOneKey) {
  // Ä and ä; full-width letters; the Kelvin sign; ß folds to ss; a ligature.
  EXPECT_EQ(email_key("\xc3\x84rger@example.com"), email_key("\xc3\xa4rger@example.com"));
  EXPECT_EQ(email_key("\xef\xbc\xa1\xef\xbc\xa2\xef\xbc\xa3@example.com"), "abc@example.com");
  EXPECT_EQ(email_key("\xe2\x84\xaa"
                      "elvin@example.com"),
            "kelvin@example.com");
  EXPECT_EQ(email_key("stra\xc3\x9f"
                      "e@example.com"),
            "strasse@example.com");
  EXPECT_EQ(email_key("\xef\xac\x81le@example.com"), "file@example.com");
  // A decomposed ä (a + combining diaeresis) is the composed one.
  EXPECT_EQ(email_key("a\xcc\x88@example.com"), email_key("\xc3\xa4@example.com"));
}

TEST(EmailKey, DomainsTakeTheirIdnaForm) {
  EXPECT_EQ(email_key("a@B\xc3\x9c"
                      "CHER.example"),
            "a@xn--bcher-kva.example");
  EXPECT_EQ(email_key("a@b\xc3\xbc"
                      "cher.example"),
            email_key("a@xn--bcher-kva.example"));
  EXPECT_EQ(email_key("a@\xef\xbd\x85xample.com"), "a@example.com");  // a full-width e in the domain
}

TEST(EmailKey, RefusesWhatIsNotTextOrNotADomain) {
  EXPECT_FALSE(email_key("a\xff@example.com"));          // not UTF-8
  EXPECT_FALSE(email_key("a@\xed\xa0\x80.example"));     // an encoded surrogate
  EXPECT_FALSE(email_key("a@exa\xe2\x80\x8dmple.com"));  // a joiner where no script needs one
  EXPECT_FALSE(email_key("a@xn--zz.example"));           // punycode that decodes to nothing valid
}
