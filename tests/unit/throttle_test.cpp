#include "keel/auth/throttle.hpp"

#include <gtest/gtest.h>

#include <thread>

using keel::auth::LoginThrottle;

TEST(Throttle, BlocksAnAccountAfterTheLimitAndSuccessClearsIt) {
  LoginThrottle t(3, 100, std::chrono::seconds(60));
  for (int i = 0; i < 3; ++i) {
    ASSERT_FALSE(t.acquire("a@x.io", "1.1.1.1").has_value());
    t.release("a@x.io", "1.1.1.1", false);
  }
  auto wait = t.acquire("a@x.io", "1.1.1.1");
  ASSERT_TRUE(wait.has_value());
  EXPECT_GE(*wait, 1);
  EXPECT_LE(*wait, 60);
  // Another account from the same address is unaffected.
  EXPECT_FALSE(t.acquire("b@x.io", "1.1.1.1").has_value());
  t.release("b@x.io", "1.1.1.1", true);
}

TEST(Throttle, ReservedAttemptsCountSoParallelGuessesCannotOvershoot) {
  LoginThrottle t(3, 100, std::chrono::seconds(60));
  int admitted = 0;
  for (int i = 0; i < 10; ++i)
    if (!t.acquire("a@x.io", "2.2.2.2")) ++admitted;  // none released yet: all "in flight"
  EXPECT_EQ(admitted, 3);
}

TEST(Throttle, PerAddressLimit) {
  LoginThrottle t(100, 2, std::chrono::seconds(60));
  for (const char* account : {"a@x.io", "b@x.io"}) {
    ASSERT_FALSE(t.acquire(account, "3.3.3.3"));
    t.release(account, "3.3.3.3", false);
  }
  EXPECT_TRUE(t.acquire("c@x.io", "3.3.3.3").has_value());
  EXPECT_FALSE(t.acquire("c@x.io", "4.4.4.4").has_value());
}

TEST(Throttle, TheWindowEnds) {
  LoginThrottle t(1, 100, std::chrono::seconds(1));
  ASSERT_FALSE(t.acquire("a@x.io", "5.5.5.5"));
  t.release("a@x.io", "5.5.5.5", false);
  EXPECT_TRUE(t.acquire("a@x.io", "5.5.5.5").has_value());
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_FALSE(t.acquire("a@x.io", "5.5.5.5").has_value());
}

#include "keel/gateway/gateway.hpp"

TEST(RateLimiter, LimitsEachKeyAndForgetsRefilledBuckets) {
  using keel::gateway::RateLimiter;
  // 20 a second, a burst of 2; refilled buckets are swept at every call (0 ms).
  RateLimiter limiter(20, 2, std::chrono::milliseconds(0));
  EXPECT_EQ(limiter.take("a"), 0);
  EXPECT_EQ(limiter.take("a"), 0);
  EXPECT_GE(limiter.take("a"), 1);  // the burst is spent
  EXPECT_EQ(limiter.take("b"), 0);  // another key has its own
  EXPECT_EQ(limiter.tracked(), 2u);
  // After a refill (2 tokens at 20/s: 100 ms), both buckets are as good as new: they are not kept.
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  EXPECT_EQ(limiter.take("c"), 0);
  EXPECT_EQ(limiter.tracked(), 1u);
  EXPECT_EQ(limiter.take("a"), 0);  // and "a" starts from a full bucket again
  EXPECT_EQ(limiter.take("a"), 0);
  EXPECT_GE(limiter.take("a"), 1);
}
