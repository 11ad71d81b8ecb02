// Migrations and a repository round trip on both backends: SQLite always, PostgreSQL when
// KEEL_TEST_PG_URL names a server (make test starts one).
#include "keel/db/database.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <thread>

#include "keel/billing/ledger.hpp"
#include "keel/billing/rollup.hpp"
#include "keel/core/config.hpp"
#include "keel/core/ids.hpp"
#include "keel/core/time.hpp"
#include "keel/db/group_write.hpp"
#include "keel/db/migrations.hpp"

namespace fs = std::filesystem;
using namespace keel::db;

namespace {

class DatabaseTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    keel::Config config;
    if (GetParam() == "sqlite") {
      dir_ = fs::temp_directory_path() / ("keel-db-test-" + keel::random_hex(6));
      fs::create_directories(dir_);
      config.database = "sqlite://" + (dir_ / "keel.db").string();
    } else {
      const char* url = std::getenv("KEEL_TEST_PG_URL");
      // make test and scripts/sanitize.sh start a server and set KEEL_REQUIRE_PG: there a missing URL fails.
      if ((!url || !*url) && std::getenv("KEEL_REQUIRE_PG") &&
          std::string(std::getenv("KEEL_REQUIRE_PG")) == "1")
        FAIL() << "KEEL_REQUIRE_PG=1 but KEEL_TEST_PG_URL is not set";
      if (!url || !*url) GTEST_SKIP() << "KEEL_TEST_PG_URL is not set";
      // A fresh database per test, so tests can run in parallel (ctest -j).
      keel::Config admin_config;
      admin_config.database = url;
      auto admin = open_database(admin_config);
      const std::string name = "keel_unit_" + keel::random_hex(6);
      admin->read_sync([&](Session& s) { s.exec_script("CREATE DATABASE " + name); });
      admin->close();
      std::string base(url);
      config.database = base.substr(0, base.rfind('/') + 1) + name;
    }
    db_ = open_database(config);
  }
  void TearDown() override {
    if (db_) db_->close();
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  // Coroutine tests run on it. Declared first, so it is destroyed last: after TearDown has closed the
  // database and joined its workers, none of which may still be inside a post() to it.
  boost::asio::io_context io_;
  fs::path dir_;
  std::unique_ptr<Database> db_;
};

std::string insert_user(Session& s, const std::string& email) {
  const std::string id = keel::uuid_v7();
  const std::string now = keel::now_rfc3339();
  s.query(
      "INSERT INTO users (id, email, email_lower, display_name, password_hash, metadata, created_at, "
      "updated_at) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
      {id, email, email, nullptr, std::string("$argon2id$x"), std::string(R"({"plan":"pro"})"), now});
  return id;
}

}  // namespace

TEST_P(DatabaseTest, MigrationsApplyOnceAndRecordTheirVersion) {
  auto first = migrate(*db_);
  EXPECT_FALSE(first.applied.empty());
  EXPECT_EQ(first.applied.front(), "0001_init");
  EXPECT_GE(first.version, 1);
  auto second = migrate(*db_);
  EXPECT_TRUE(second.applied.empty());
  EXPECT_EQ(second.version, first.version);
  auto rows = db_->read_sync(
      [](Session& s) { return s.query("SELECT version, name FROM schema_migrations ORDER BY version"); });
  ASSERT_EQ(rows.rows.size(), first.applied.size());
  EXPECT_EQ(rows.rows[0].int64(0), 1);
  EXPECT_EQ(rows.rows[0].text(1), "0001_init");
}

TEST_P(DatabaseTest, RepositoryRoundTripKeepsTypesAndTimes) {
  migrate(*db_);
  const std::string id = db_->write_sync([](Session& s) { return insert_user(s, "a@example.com"); });
  auto r = db_->read_sync([&](Session& s) {
    return s.query("SELECT id, email, display_name, metadata, created_at, roles FROM users WHERE id = $1",
                   {id});
  });
  ASSERT_EQ(r.rows.size(), 1u);
  const Row& row = r.rows[0];
  EXPECT_EQ(row.text("id"), id);
  EXPECT_EQ(row.text("email"), "a@example.com");
  EXPECT_TRUE(row.is_null(2));
  EXPECT_NE(row.text(3).find("\"plan\""), std::string::npos);
  EXPECT_TRUE(keel::parse_rfc3339(row.time(4)).has_value());
  EXPECT_EQ(row.time(4).size(), 24u);
  EXPECT_NE(row.text(5).find("user"), std::string::npos);
}

TEST_P(DatabaseTest, ConstraintsAreEnforced) {
  migrate(*db_);
  db_->write_sync([](Session& s) { insert_user(s, "dup@example.com"); });
  try {
    db_->write_sync([](Session& s) { insert_user(s, "dup@example.com"); });
    FAIL() << "duplicate email accepted";
  } catch (const DbError& e) {
    EXPECT_EQ(e.kind(), DbError::Kind::UniqueViolation);
  }
  try {
    db_->write_sync([](Session& s) {
      const std::string now = keel::now_rfc3339();
      s.query("INSERT INTO billing_accounts (id, user_id, created_at, updated_at) VALUES ($1, $2, $3, $3)",
              {keel::uuid_v7(), keel::uuid_v7(), now});
    });
    FAIL() << "billing account for a missing user accepted";
  } catch (const DbError& e) {
    EXPECT_EQ(e.kind(), DbError::Kind::ForeignKeyViolation);
  }
}

TEST_P(DatabaseTest, AFailedTransactionLeavesNothingBehind) {
  migrate(*db_);
  EXPECT_THROW(db_->write_sync([](Session& s) {
    insert_user(s, "rollback@example.com");
    throw std::runtime_error("abort");
  }),
               std::runtime_error);
  auto r = db_->read_sync([](Session& s) { return s.query("SELECT COUNT(*) FROM users"); });
  EXPECT_EQ(r.rows[0].int64(0), 0);
}

TEST_P(DatabaseTest, ConcurrentWritersAllLand) {
  migrate(*db_);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i)
        db_->write_sync(
            [&](Session& s) { insert_user(s, "u" + std::to_string(t) + "-" + std::to_string(i) + "@x.io"); });
    });
  for (auto& th : threads) th.join();
  auto r = db_->read_sync([](Session& s) { return s.query("SELECT COUNT(*) FROM users"); });
  EXPECT_EQ(r.rows[0].int64(0), 100);
}

TEST_P(DatabaseTest, AFailingWriteAmongConcurrentOnesRollsBackAlone) {
  // On SQLite concurrent writes share one commit (each in its own savepoint): a failure must undo only its
  // own.
  migrate(*db_);
  std::vector<std::thread> threads;
  std::atomic<int> failed{0};
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        try {
          db_->write_sync([&](Session& s) {
            insert_user(s, "g" + std::to_string(t) + "-" + std::to_string(i) + "@x.io");
            if (i % 5 == 4) throw std::runtime_error("this one fails after writing");
          });
        } catch (const std::runtime_error&) {
          ++failed;
        }
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(failed.load(), 8 * 5);
  auto r = db_->read_sync([](Session& s) { return s.query("SELECT COUNT(*) FROM users"); });
  EXPECT_EQ(r.rows[0].int64(0), 8 * 20);
}

TEST_P(DatabaseTest, RecoversWhenTheServerDropsItsConnections) {
  if (GetParam() != "postgres") GTEST_SKIP() << "a PostgreSQL outage";
  migrate(*db_);
  auto count = [&] {
    return db_->read_sync([](Session& s) { return s.query("SELECT COUNT(*) FROM users").rows[0].int64(0); });
  };
  EXPECT_EQ(count(), 0);
  // Every pooled connection of this database is killed, as a server restart would.
  keel::Config admin_config;
  admin_config.database = std::getenv("KEEL_TEST_PG_URL");
  auto admin = open_database(admin_config);
  const std::string dbname =
      db_->read_sync([](Session& s) { return s.query("SELECT current_database()").rows[0].text(0); });
  admin->read_sync([&](Session& s) {
    s.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", {dbname});
  });
  admin->close();
  EXPECT_EQ(count(), 0);
  db_->write_sync([](Session& s) { insert_user(s, "after-outage@example.com"); });
  EXPECT_EQ(count(), 1);
}

TEST_P(DatabaseTest, DeferredStatementsCommitTogetherOrNotAtAll) {
  // On PostgreSQL a transaction of deferred statements only is one pipeline with no BEGIN or COMMIT (an
  // implicit transaction): a failure in it must still undo the statements before it.
  migrate(*db_);
  const auto insert = [](Session& s, const std::string& email) {
    const std::string now = keel::now_rfc3339();
    s.defer(
        "INSERT INTO users (id, email, email_lower, password_hash, created_at, updated_at) "
        "VALUES ($1, $2, $2, 'x', $3, $3)",
        {keel::uuid_v7(), email, now});
  };
  db_->write_sync([&](Session& s) {
    insert(s, "d1@example.com");
    insert(s, "d2@example.com");
  });
  EXPECT_THROW(db_->write_sync([&](Session& s) {
    insert(s, "d3@example.com");
    insert(s, "d1@example.com");  // a duplicate: the whole transaction goes
  }),
               DbError);
  auto r = db_->read_sync([](Session& s) { return s.query("SELECT email FROM users ORDER BY email"); });
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_EQ(r.rows[0].text(0), "d1@example.com");
  EXPECT_EQ(r.rows[1].text(0), "d2@example.com");
}

TEST_P(DatabaseTest, AnArrayLiteralCarriesAnyTextAndNulls) {
  if (GetParam() != "postgres") GTEST_SKIP() << "PostgreSQL arrays";
  const std::vector<std::optional<std::string>> items{
      "plain", "say \"hi\"", "back\\slash\\", "{a,b}",        "NULL", std::nullopt,
      "",      " ",          "line\nbreak",   "Z\xc3\xbcrich"};
  auto r = db_->read_sync([&](Session& s) {
    return s.query("SELECT v FROM unnest($1::text[]) WITH ORDINALITY AS u(v, n) ORDER BY n",
                   {keel::db::array_literal(items)});
  });
  ASSERT_EQ(r.rows.size(), items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    EXPECT_EQ(r.rows[i].opt_text(0), items[i]) << i;
  }
}

TEST_P(DatabaseTest, ALastStatementCommitsWithItsTransaction) {
  migrate(*db_);
  // Its result comes back, and what the transaction wrote before it is committed with it.
  auto r = db_->write_sync([](Session& s) {
    insert_user(s, "l1@example.com");
    return s.query_last("SELECT COUNT(*) FROM users", {});
  });
  EXPECT_EQ(r.rows.at(0).int64(0), 1);
  // A failing last statement (the duplicate email) rolls back the statements before it, and the connection
  // is fit for the next transaction.
  for (int i = 0; i < 10; ++i)
    EXPECT_THROW(db_->write_sync([](Session& s) {
      insert_user(s, "l2@example.com");
      s.query_last(
          "INSERT INTO users (id, email, email_lower, password_hash, created_at, updated_at) "
          "VALUES ($1, 'l1@example.com', 'l1@example.com', 'x', $2, $2)",
          {keel::uuid_v7(), keel::now_rfc3339()});
    }),
                 DbError);
  auto count = db_->read_sync([](Session& s) { return s.query("SELECT COUNT(*) FROM users"); });
  EXPECT_EQ(count.rows[0].int64(0), 1);
  db_->write_sync([](Session& s) { insert_user(s, "l3@example.com"); });
  if (GetParam() == "postgres") {
    // Nothing may run after it: it would run outside the transaction.
    EXPECT_THROW(db_->write_sync([](Session& s) {
      s.query_last("SELECT 1", {});
      s.query("SELECT 2", {});
    }),
                 DbError);
  }
}

TEST_P(DatabaseTest, AGroupWriteCommitsEachWriteOnceAndFailsOnlyTheRefusedOne) {
  migrate(*db_);
  // Each item is an email; "dup@x.io" is refused (a unique violation) however it is grouped.
  db_->write_sync([](Session& s) { insert_user(s, "dup@x.io"); });
  std::atomic<int> calls{0};
  std::atomic<size_t> largest{0};
  auto group = std::make_shared<GroupWrite<std::string, std::string>>(
      *db_, [&](Session& s, const std::vector<std::string>& emails) {
        // The first transactions take their time, as a slow commit would: the writes behind them queue.
        if (calls++ < 2) std::this_thread::sleep_for(std::chrono::milliseconds(50));
        if (emails.size() > largest) largest = emails.size();
        std::vector<std::string> ids;
        for (const auto& e : emails) ids.push_back(insert_user(s, e));
        return ids;
      });
  boost::asio::io_context& io = io_;
  constexpr int kWrites = 200;
  std::vector<std::string> ids(kWrites);
  std::atomic<int> failed{0}, refused{0};
  for (int i = 0; i < kWrites; ++i)
    boost::asio::co_spawn(
        io,
        [&, i]() -> boost::asio::awaitable<void> {
          std::string email = i == 77 ? std::string("dup@x.io") : "w" + std::to_string(i) + "@x.io";
          try {
            ids[i] = co_await group->write(email);
          } catch (const DbError& e) {
            ++failed;
            if (e.kind() == DbError::Kind::UniqueViolation) ++refused;
          }
        },
        boost::asio::detached);
  io.run();
  EXPECT_EQ(failed.load(), 1);
  EXPECT_EQ(refused.load(), 1);
  // Writes that queued behind a transaction went together in the next one.
  EXPECT_GT(largest.load(), 20u);
  auto r = db_->read_sync([](Session& s) { return s.query("SELECT id, email FROM users"); });
  EXPECT_EQ(r.rows.size(), static_cast<size_t>(kWrites));  // 199 written once, and the first dup@x.io
  for (int i = 0; i < kWrites; ++i) {
    if (i == 77) continue;
    auto row = db_->read_sync(
        [&](Session& s) { return s.query("SELECT email FROM users WHERE id = $1", {ids[i]}); });
    ASSERT_EQ(row.rows.size(), 1u) << i;
    EXPECT_EQ(row.rows[0].text(0), "w" + std::to_string(i) + "@x.io");
  }
}

namespace {
// Runs `body` as a coroutine on `io`, on this thread (as an I/O thread), to its end.
void on_io_thread(boost::asio::io_context& io, std::function<boost::asio::awaitable<void>()> body) {
  io.restart();
  std::exception_ptr failed;
  // Stopped when the body ends: a PostgreSQL pipe's reader waits on its connection for as long as it runs.
  boost::asio::co_spawn(io, body(), [&](std::exception_ptr e) {
    failed = e;
    io.stop();
  });
  io.run();
  if (failed) std::rethrow_exception(failed);
}
}  // namespace

// On PostgreSQL: how many of this test's database connections are I/O threads' pipes.
int64_t pipes_of(Database& db) {
  keel::Config admin_config;
  admin_config.database = std::getenv("KEEL_TEST_PG_URL");
  auto admin = open_database(admin_config);
  const std::string dbname =
      db.read_sync([](Session& s) { return s.query("SELECT current_database()").rows[0].text(0); });
  const int64_t n = admin->read_sync([&](Session& s) {
    return s
        .query("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'keel-pipe'",
               {dbname})
        .rows.at(0)
        .int64(0);
  });
  admin->close();
  return n;
}

// Reads until the thread's pipe is up (it connects in the background; reads meanwhile take the pool).
boost::asio::awaitable<void> until_piped(Database& db, const std::string& dialect) {
  if (dialect != "postgres") co_return;
  boost::asio::steady_timer t(co_await boost::asio::this_coro::executor);
  const std::string sql = "SELECT 1";
  const std::vector<Value> none;
  for (int i = 0; i < 200 && pipes_of(db) == 0; ++i) {
    co_await db.query_read(sql, none);
    t.expires_after(std::chrono::milliseconds(10));
    co_await t.async_wait(boost::asio::use_awaitable);
  }
  EXPECT_EQ(pipes_of(db), 1);
}

TEST_P(DatabaseTest, ReadsOnAnIoThreadEachGetTheirOwnAnswer) {
  // On PostgreSQL they share the thread's pipelined connection: hundreds in flight at once, answered in
  // order, a failing one failing alone.
  migrate(*db_);
  constexpr int kReads = 300;
  std::vector<std::string> answers(kReads);
  int failures = 0;
  on_io_thread(io_, [&]() -> boost::asio::awaitable<void> {
    auto ex = co_await boost::asio::this_coro::executor;
    co_await until_piped(*db_, GetParam());
    int done = 0;
    for (int i = 0; i < kReads; ++i)
      boost::asio::co_spawn(
          ex,
          [&, i]() -> boost::asio::awaitable<void> {
            // Three statement texts, so some reads prepare while others run prepared.
            const std::string sql = i % 3 == 0   ? "SELECT $1::text || '-a' AS v"
                                    : i % 3 == 1 ? "SELECT $1::text || '-b' AS v"
                                                 : "SELECT CAST($1 AS integer) AS v";
            const std::vector<Value> params{i % 3 == 2 && i % 2 == 0 ? std::string("x") : std::to_string(i)};
            try {
              const Result r = co_await db_->query_read(sql, params);
              answers[i] = r.rows.at(0).text(0);
            } catch (const DbError&) {
              ++failures;  // CAST('x' AS integer): on PostgreSQL only (SQLite makes it 0)
            }
            ++done;
          },
          boost::asio::detached);
    boost::asio::steady_timer t(ex);
    while (done < kReads) {
      t.expires_after(std::chrono::milliseconds(1));
      co_await t.async_wait(boost::asio::use_awaitable);
    }
  });
  for (int i = 0; i < kReads; ++i) {
    if (i % 3 == 0) {
      EXPECT_EQ(answers[i], std::to_string(i) + "-a");
    } else if (i % 3 == 1) {
      EXPECT_EQ(answers[i], std::to_string(i) + "-b");
    } else if (i % 2 == 1) {
      EXPECT_EQ(answers[i], std::to_string(i));
    }
  }
  if (GetParam() == "postgres") {
    EXPECT_EQ(failures, 50);
  }
}

TEST_P(DatabaseTest, ReadsOnAnIoThreadSurviveTheServerDroppingItsConnections) {
  if (GetParam() != "postgres") GTEST_SKIP() << "a PostgreSQL outage";
  migrate(*db_);
  db_->write_sync([](Session& s) { insert_user(s, "pipe@example.com"); });
  const std::string dbname =
      db_->read_sync([](Session& s) { return s.query("SELECT current_database()").rows[0].text(0); });
  keel::Config admin_config;
  admin_config.database = std::getenv("KEEL_TEST_PG_URL");
  auto admin = open_database(admin_config);
  const std::string sql = "SELECT COUNT(*) FROM users";
  const std::vector<Value> none;
  on_io_thread(io_, [&]() -> boost::asio::awaitable<void> {
    auto ex = co_await boost::asio::this_coro::executor;
    boost::asio::steady_timer t(ex);
    co_await until_piped(*db_, GetParam());
    EXPECT_EQ((co_await db_->query_read(sql, none)).rows.at(0).int64(0), 1);
    // Every connection of this database is killed, the pipe's too, as a server restart would: reads go on.
    admin->read_sync([&](Session& s) {
      s.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", {dbname});
    });
    for (int i = 0; i < 50; ++i) {
      EXPECT_EQ((co_await db_->query_read(sql, none)).rows.at(0).int64(0), 1);
      t.expires_after(std::chrono::milliseconds(10));
      co_await t.async_wait(boost::asio::use_awaitable);
    }
  });
  EXPECT_EQ(pipes_of(*db_), 1);  // the pipe came back
  admin->close();
}

TEST_P(DatabaseTest, UsageRollsUpWithoutChangingTotals) {
  migrate(*db_);
  const std::string now = keel::now_rfc3339();
  const auto at = [&](std::chrono::minutes ago) {
    return keel::format_rfc3339(*keel::parse_rfc3339(now) - ago);
  };
  std::string account;
  db_->write_sync([&](Session& s) {
    const std::string user = insert_user(s, "usage@example.com");
    const keel::module::Outbox outbox;
    account = keel::billing::create_account(s, outbox, user, "");
    const auto row = [&](const std::string& key, int64_t q, const std::string& t) {
      s.query(
          "INSERT INTO usage_records (id, account_id, user_id, module, metric, quantity, idempotency_key, "
          "created_at, updated_at) VALUES ($1, $2, $3, 'memory', 'requests', $4, $5, $6, $6)",
          {keel::uuid_v7(), account, user, q, key, t});
    };
    // The meter's rows: 3 days old (two in one minute), 10 minutes old, and fresh.
    row("gateway:a:0", 5, at(std::chrono::minutes(3 * 1440)));
    row("gateway:a:1", 7, at(std::chrono::minutes(3 * 1440)));
    row("gateway:b:0", 11, at(std::chrono::minutes(10)));
    row("gateway:c:0", 13, at(std::chrono::minutes(1)));
    // A client's key, 10 minutes old: kept raw for 25 h, so the key is still recognised.
    row("client-key-1", 17, at(std::chrono::minutes(10)));
  });
  const auto total = [&] {
    return db_->read_sync([&](Session& s) {
      return s
          .query(
              "SELECT (SELECT COALESCE(SUM(quantity), 0) FROM usage_records WHERE account_id = $1) + "
              "(SELECT COALESCE(SUM(quantity), 0) FROM usage_rollups WHERE account_id = $1)",
              {account})
          .rows.at(0)
          .int64(0);
    });
  };
  const auto count = [&](const std::string& sql) {
    return db_->read_sync([&](Session& s) { return s.query(sql).rows.at(0).int64(0); });
  };
  EXPECT_EQ(total(), 53);
  keel::billing::UsageRetention r;  // 5 raw minutes, 2 minute-days, 400 days
  db_->write_sync([&](Session& s) { keel::billing::roll_up_usage(s, r, now); });
  EXPECT_EQ(total(), 53);
  EXPECT_EQ(count("SELECT COUNT(*) FROM usage_records"), 2);  // the fresh one and the client's
  EXPECT_EQ(count("SELECT COUNT(*) FROM usage_records WHERE idempotency_key = 'client-key-1'"), 1);
  // The 3-day-old minute went on into an hour; the 10-minute-old one is a minute.
  EXPECT_EQ(count("SELECT COUNT(*) FROM usage_rollups WHERE granularity = 'hour' AND quantity = 12"), 1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM usage_rollups WHERE granularity = 'minute' AND quantity = 11"), 1);
  // Again: nothing is counted twice.
  db_->write_sync([&](Session& s) { keel::billing::roll_up_usage(s, r, now); });
  EXPECT_EQ(total(), 53);
  // Past the retention, hours go.
  r.retention_days = 1;
  db_->write_sync([&](Session& s) { keel::billing::roll_up_usage(s, r, now); });
  EXPECT_EQ(total(), 41);
}

INSTANTIATE_TEST_SUITE_P(Backends, DatabaseTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });
