// The fleet's shared budgets on PostgreSQL (KEEL_TEST_PG_URL; make test starts a server): what leases grant
// under concurrency, what given-back units and time refill, with the clock passed in.
#include "keel/gateway/budgets.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <thread>
#include <vector>

#include "keel/core/config.hpp"
#include "keel/core/ids.hpp"
#include "keel/db/database.hpp"
#include "keel/db/migrations.hpp"

using keel::gateway::Budget;
using keel::gateway::lease;
using keel::gateway::LeaseRequest;

namespace {

class BudgetsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* url = std::getenv("KEEL_TEST_PG_URL");
    // make test and scripts/sanitize.sh start a server and set KEEL_REQUIRE_PG: there a missing URL fails.
    if ((!url || !*url) && std::getenv("KEEL_REQUIRE_PG") &&
        std::string(std::getenv("KEEL_REQUIRE_PG")) == "1")
      FAIL() << "KEEL_REQUIRE_PG=1 but KEEL_TEST_PG_URL is not set";
    if (!url || !*url) GTEST_SKIP() << "KEEL_TEST_PG_URL is not set";
    keel::Config admin_config;
    admin_config.database = url;
    auto admin = keel::db::open_database(admin_config);
    const std::string name = "keel_budgets_" + keel::random_hex(6);
    admin->read_sync([&](keel::db::Session& s) { s.exec_script("CREATE DATABASE " + name); });
    admin->close();
    keel::Config config;
    const std::string base(url);
    config.database = base.substr(0, base.rfind('/') + 1) + name;
    db_ = keel::db::open_database(config);
    keel::db::migrate(*db_);
  }
  void TearDown() override {
    if (db_) db_->close();
  }
  int64_t grant(const std::string& key, const Budget& b, int64_t want, int64_t returned, double now) {
    return db_->write_sync([&](keel::db::Session& s) {
      return lease(s, {LeaseRequest{key, b, want, returned}}, now).at(0);
    });
  }
  std::unique_ptr<keel::db::Database> db_;
};

constexpr double kNow = 1'800'000'000;

TEST_F(BudgetsTest, ConcurrentGatewaysAreNeverGrantedMoreThanTheQuota) {
  const Budget quota{0, 30, kNow + 60};
  std::atomic<int64_t> granted{0};
  std::vector<std::thread> gateways;
  for (int g = 0; g < 4; ++g)
    gateways.emplace_back([&] {
      for (int i = 0; i < 10; ++i) granted += grant("q:user:1", quota, 4, 0, kNow);
    });
  for (auto& t : gateways) t.join();
  EXPECT_EQ(granted.load(), 30);
  EXPECT_EQ(grant("q:user:1", quota, 1, 0, kNow), 0);
}

TEST_F(BudgetsTest, GivenBackUnitsAreGrantedAgain) {
  const Budget quota{0, 10, kNow + 60};
  EXPECT_EQ(grant("q:user:2", quota, 10, 0, kNow), 10);
  EXPECT_EQ(grant("q:user:2", quota, 0, 4, kNow), 0);  // an idle gateway gives back 4 unspent
  EXPECT_EQ(grant("q:user:2", quota, 10, 0, kNow), 4);
}

TEST_F(BudgetsTest, ABucketRefillsAtItsRateUpToItsBurst) {
  const Budget bucket{10, 20, kNow + 10};
  EXPECT_EQ(grant("u:3", bucket, 100, 0, kNow), 20);
  EXPECT_EQ(grant("u:3", bucket, 100, 0, kNow + 0.5), 5);
  EXPECT_EQ(grant("u:3", bucket, 100, 0, kNow + 100), 20);  // never more than the burst
  // A gateway whose clock is behind the row's refills nothing and moves no time back.
  EXPECT_EQ(grant("u:3", bucket, 100, 0, kNow + 90), 0);
  EXPECT_EQ(grant("u:3", bucket, 100, 0, kNow + 100.5), 5);
}

TEST_F(BudgetsTest, ExpiredBudgetsAreForgotten) {
  EXPECT_EQ(grant("q:old", Budget{0, 5, kNow - 120}, 5, 0, kNow), 5);
  EXPECT_EQ(grant("q:new", Budget{0, 5, kNow + 60}, 5, 0, kNow), 5);
  const auto left = db_->write_sync([&](keel::db::Session& s) {
    keel::gateway::forget_expired_budgets(s, kNow - 60);
    return s.query("SELECT key FROM gateway_budgets ORDER BY key");
  });
  ASSERT_EQ(left.rows.size(), 1u);
  EXPECT_EQ(left.rows[0].text(0), "q:new");
}

}  // namespace
