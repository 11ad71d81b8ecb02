// The refresh decision with a clock of the test's own: no sleeps, every boundary exact.
#include <gtest/gtest.h>

#include "keel/auth/sessions.hpp"

using keel::auth::decide_refresh;
using keel::auth::RefreshState;
using keel::auth::RefreshVerdict;
using std::chrono::seconds;
using Clock = std::chrono::system_clock;

namespace {
const Clock::time_point t0 = Clock::time_point{} + std::chrono::hours(24 * 365 * 50);
constexpr seconds kIdle(7 * 86400), kWindow(10);

RefreshState live() {
  RefreshState st;
  st.session_expires = t0 + seconds(30 * 86400);
  st.session_last_used = t0;
  return st;
}
RefreshVerdict at(const RefreshState& st, seconds after) {
  return decide_refresh(st, t0 + after, kIdle, kWindow);
}
}  // namespace

TEST(Refresh, TheNewestTokenRotates) { EXPECT_EQ(at(live(), seconds(60)), RefreshVerdict::Rotate); }

TEST(Refresh, ARetryWithinTheWindowGetsTheSameSuccessorAndNotAfterIt) {
  RefreshState st = live();
  st.rotated_at = t0;
  st.successor_current = true;
  EXPECT_EQ(at(st, seconds(0)), RefreshVerdict::SameSuccessor);
  EXPECT_EQ(at(st, kWindow), RefreshVerdict::SameSuccessor);  // the window's last second counts
  EXPECT_EQ(at(st, kWindow + seconds(1)), RefreshVerdict::Reuse);
}

TEST(Refresh, AnOldTokenWhoseSuccessorWasRotatedTooIsReuseEvenInsideTheWindow) {
  RefreshState st = live();
  st.rotated_at = t0;
  st.successor_current = false;
  EXPECT_EQ(at(st, seconds(1)), RefreshVerdict::Reuse);
}

TEST(Refresh, IdleAndAbsoluteExpiryEndTheSession) {
  RefreshState st = live();
  EXPECT_EQ(at(st, kIdle - seconds(1)), RefreshVerdict::Rotate);
  EXPECT_EQ(at(st, kIdle), RefreshVerdict::Expired);
  st.session_last_used = t0 + seconds(29 * 86400);
  EXPECT_EQ(at(st, seconds(30 * 86400) - seconds(1)), RefreshVerdict::Rotate);
  EXPECT_EQ(at(st, seconds(30 * 86400)), RefreshVerdict::Expired);
}

TEST(Refresh, ARevokedSessionIsRevokedWhateverElseHolds) {
  RefreshState st = live();
  st.session_revoked = true;
  st.rotated_at = t0;
  st.successor_current = true;
  EXPECT_EQ(at(st, seconds(1)), RefreshVerdict::Revoked);
  EXPECT_EQ(at(st, kIdle + seconds(1)), RefreshVerdict::Revoked);
}

TEST(Refresh, AnExpiredSessionIsExpiredEvenForARotatedToken) {
  RefreshState st = live();
  st.rotated_at = t0;
  st.successor_current = true;
  EXPECT_EQ(at(st, kIdle + seconds(1)), RefreshVerdict::Expired);
}
