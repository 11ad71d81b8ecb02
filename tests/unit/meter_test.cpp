// The gateway's usage meter against a real (SQLite) database: a flush whose write committed but was reported
// as failed is written again under the same keys, and so counted and charged once.
#include <gtest/gtest.h>

#include <filesystem>

#include "keel/billing/ledger.hpp"
#include "keel/core/config.hpp"
#include "keel/core/ids.hpp"
#include "keel/core/time.hpp"
#include "keel/db/database.hpp"
#include "keel/db/migrations.hpp"
#include "keel/gateway/gateway.hpp"

namespace fs = std::filesystem;
using keel::gateway::Meter;

namespace {

class MeterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("keel-meter-test-" + keel::random_hex(6));
    fs::create_directories(dir_);
    keel::Config config;
    config.database = "sqlite://" + (dir_ / "keel.db").string();
    db_ = keel::db::open_database(config);
    keel::db::migrate(*db_);
    user_ = keel::uuid_v7();
    db_->write_sync([&](keel::db::Session& s) {
      const std::string now = keel::now_rfc3339();
      s.query(
          "INSERT INTO users (id, email, email_lower, display_name, password_hash, metadata, created_at, "
          "updated_at) VALUES ($1, $2, $2, NULL, 'x', '{}', $3, $3)",
          {user_, std::string("meter@example.com"), now});
      keel::billing::create_account(s, outbox_, user_, "");
    });
  }
  void TearDown() override {
    if (db_) db_->close();
    fs::remove_all(dir_);
  }
  int64_t scalar(const std::string& sql) {
    return db_->read_sync([&](keel::db::Session& s) { return s.query(sql, {user_}).rows[0].int64(0); });
  }
  keel::module::Outbox outbox_;
  fs::path dir_;
  std::unique_ptr<keel::db::Database> db_;
  std::string user_;
};

TEST_F(MeterTest, AWriteReportedAsFailedIsWrittenAgainAndChargedOnce) {
  keel::billing::Plans plans;
  plans.by_name["free"] = keel::billing::Plan{0, 10};
  const keel::billing::Ledger ledger(plans, outbox_);
  Meter meter(ledger);
  for (int i = 0; i < 3; ++i) meter.add(user_, "memory");

  const Meter::Batch first = meter.take();
  ASSERT_EQ(first.counts.size(), 1u);
  meter.write_sync(*db_, first);  // the commit went through...
  meter.settle(first, false);     // ...but its outcome was lost (a connection dropped at COMMIT)
  EXPECT_EQ(meter.pending(user_), 3);

  meter.add(user_, "memory");  // counted meanwhile: waits for the batch after
  const Meter::Batch again = meter.take();
  EXPECT_EQ(again.prefix, first.prefix);
  EXPECT_EQ(again.counts, first.counts);
  meter.write_sync(*db_, again);
  meter.settle(again, true);
  EXPECT_EQ(meter.pending(user_), 1);

  const Meter::Batch next = meter.take();
  EXPECT_NE(next.prefix, first.prefix);
  meter.write_sync(*db_, next);
  meter.settle(next, true);
  EXPECT_EQ(meter.pending(user_), 0);

  EXPECT_EQ(scalar("SELECT COALESCE(SUM(quantity), 0) FROM usage_records WHERE user_id = $1"), 4);
  EXPECT_EQ(scalar("SELECT balance FROM billing_accounts WHERE user_id = $1"), -40);
}

}  // namespace
