#include "keel/db/postgres/pg_database.hpp"

#include <libpq-fe.h>

#include <atomic>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/this_coro.hpp>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "keel/core/config.hpp"
#include "keel/core/log.hpp"
#include "keel/db/postgres/pg_connection.hpp"
#include "keel/db/postgres/pg_pipe.hpp"
#include "keel/db/postgres/pg_wire.hpp"

namespace keel::db {

namespace {

using postgres::Connection;

class PostgresDatabase final : public Database {
 public:
  explicit PostgresDatabase(const PostgresOptions& opt) : opt_(opt) {
    // Connect once now so a wrong URL or a down server is reported at start.
    idle_.push_back(std::make_unique<Connection>(opt_));
    pool_ = std::make_unique<WorkerPool>("keel-pg", opt_.pool_size, 4096);
  }
  ~PostgresDatabase() override { close(); }

  Dialect dialect() const override { return Dialect::Postgres; }
  std::string describe() const override { return redact_url(opt_.url); }

  void with_session(Access access, const std::function<void(Session&)>& fn) override {
    const bool probe = admit();
    struct EndProbe {
      std::atomic<bool>* probing;
      bool active;
      ~EndProbe() {
        if (active) probing->store(false, std::memory_order_release);
      }
    } end_probe{&probing_, probe};
    std::unique_ptr<Connection> conn;
    try {
      conn = take();
    } catch (const DbError& e) {
      if (e.kind() == DbError::Kind::Unavailable && !server_answered(e)) unreachable();
      throw;
    }
    struct Return {
      PostgresDatabase* self;
      std::unique_ptr<Connection>& c;
      ~Return() { self->give_back(std::move(c)); }
    } ret{this, conn};
    // A connection that broke while idle (a server restart, a failover) fails its first statement at once;
    // the server has then rolled back whatever the attempt did, so it is retried once on a fresh connection.
    // One that failed slowly (a deadline passed: the server is unreachable) is not: the budget is spent.
    for (int attempt = 0;; ++attempt) {
      const auto began = std::chrono::steady_clock::now();
      bool committing = false;
      try {
        conn->ensure_connected();
        conn->reset_transaction();
        conn->drop_commit_hooks();
        if (access == Access::Read) {
          fn(*conn);
        } else {
          conn->begin();
          try {
            fn(*conn);
            committing = true;
            conn->commit();
          } catch (...) {
            committing = committing || conn->commit_sent();  // a last statement took COMMIT with it
            if (conn->healthy()) {
              try {
                conn->rollback();
              } catch (const DbError&) {
                // The connection broke during rollback; it is reset on its next use.
              }
            }
            throw;
          }
        }
        reachable();
        run_commit_hooks(conn->take_commit_hooks());
        return;
      } catch (const DbError& e) {
        if (e.kind() != DbError::Kind::Unavailable || conn->healthy()) {
          reachable();  // it answered
          throw;
        }
        const bool fast = std::chrono::steady_clock::now() - began < std::chrono::milliseconds(200);
        // Never retry a COMMIT whose outcome is unknown.
        if (attempt > 0 || committing || !fast) {
          if (!server_answered(e)) unreachable();
          throw;
        }
      }
    }
  }

  void close() override {
    {
      std::lock_guard lk(pipes_mu_);
      pipes_closed_ = true;
    }
    if (pool_) pool_->stop();
    std::lock_guard lk(mu_);
    closed_ = true;
    idle_.clear();
    cv_.notify_all();
  }

  boost::asio::awaitable<Result> query_read(const std::string& sql,
                                            const std::vector<Value>& params) override {
    if (!down_.load(std::memory_order_acquire)) {
      const auto ex = co_await boost::asio::this_coro::executor;
      if (std::shared_ptr<Pipe> pipe = pipe_for(ex)) {
        const auto began = std::chrono::steady_clock::now();
        Pipe::Outcome outcome = co_await pipe->query(sql, params);
        if (outcome.error) std::rethrow_exception(outcome.error);
        if (outcome.result) co_return std::move(*outcome.result);
        // The pipe broke. At once (a server restart): the read runs again the worker pool's way, with its
        // retry and fail-fast rules. Slowly (its keepalives or tcp_user_timeout found the server gone): the
        // budget is spent, as for a pooled connection; the others fail fast from here.
        if (std::chrono::steady_clock::now() - began >= std::chrono::milliseconds(200)) {
          unreachable();
          throw DbError(DbError::Kind::Unavailable, "PostgreSQL: the connection broke");
        }
      }
    }
    co_return co_await read([&](Session& s) { return s.query(sql, params); });
  }

 private:
  // Whether this call may run: always while the server is reachable; once it is not, one call per
  // retry_after_ms probes it (true: the caller is that probe) and the others fail at once.
  bool admit() {
    if (!down_.load(std::memory_order_acquire)) return false;
    const int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
    bool expected = false;
    if (now >= next_probe_.load(std::memory_order_acquire) &&
        probing_.compare_exchange_strong(expected, true, std::memory_order_acq_rel)) {
      next_probe_.store(now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                  std::chrono::milliseconds(opt_.retry_after_ms))
                                  .count(),
                        std::memory_order_release);
      return true;
    }
    throw DbError(DbError::Kind::Unavailable, "PostgreSQL: unreachable (failing fast until it answers)");
  }
  void unreachable() {
    const int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
    if (!down_.exchange(true, std::memory_order_acq_rel)) {
      next_probe_.store(now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                  std::chrono::milliseconds(opt_.retry_after_ms))
                                  .count(),
                        std::memory_order_release);
      log::warn("database unreachable: failing fast until it answers", {{"database", describe()}});
    }
    // Idle connections went through the same network: drop them rather than find out one deadline at a time.
    std::vector<std::unique_ptr<Connection>> dropped;
    {
      std::lock_guard lk(mu_);
      dropped.swap(idle_);
      open_ -= dropped.size();
      cv_.notify_all();
    }
  }
  // A connect that the server refused itself ("too many clients", "starting up", a wrong password: libpq
  // reports them as FATAL) found the server reachable: no reason to fail everyone else fast.
  static bool server_answered(const DbError& e) {
    return std::string_view(e.what()).find("FATAL:") != std::string_view::npos;
  }
  void reachable() {
    if (down_.load(std::memory_order_acquire) && down_.exchange(false, std::memory_order_acq_rel))
      log::info("database reachable again", {{"database", describe()}});
  }

  // The I/O thread's pipe, or none yet: one is being connected (on a worker: a connect may wait out its
  // deadline), or the last attempt failed less than retry_after_ms ago. Meanwhile reads take the pool.
  std::shared_ptr<Pipe> pipe_for(const boost::asio::any_io_executor& ex) {
    auto* key = &boost::asio::query(ex, boost::asio::execution::context);
    std::lock_guard lk(pipes_mu_);
    PipeSlot& slot = pipes_[key];
    if (slot.pipe && !slot.pipe->broken()) return slot.pipe;
    slot.pipe.reset();
    const auto now = std::chrono::steady_clock::now();
    if (slot.connecting || now < slot.next_attempt || pipes_closed_) return nullptr;
    slot.connecting = true;
    const bool posted = pool_->try_post_fn([this, key, ex] {
      PGconn* conn = nullptr;
      try {
        conn = connect_postgres(opt_, "keel-pipe");
      } catch (const DbError&) {
        // Reads go on through the pool, whose own calls find out and report what is wrong.
      }
      std::lock_guard lk(pipes_mu_);
      PipeSlot& slot = pipes_[key];
      slot.connecting = false;
      if (!conn || pipes_closed_) {
        if (conn) PQfinish(conn);
        slot.next_attempt = std::chrono::steady_clock::now() + std::chrono::milliseconds(opt_.retry_after_ms);
        return;
      }
      auto pipe = std::make_shared<Pipe>(conn);
      slot.pipe = pipe;
      // Its reader runs on the thread that owns it.
      boost::asio::post(ex, [pipe, ex] { pipe->start(ex); });
    });
    if (!posted) slot.connecting = false;
    return nullptr;
  }

  std::unique_ptr<Connection> take() {
    std::unique_lock lk(mu_);
    for (;;) {
      if (closed_) throw DbError(DbError::Kind::Unavailable, "database is closed");
      if (!idle_.empty()) {
        auto c = std::move(idle_.back());
        idle_.pop_back();
        return c;
      }
      if (open_ < opt_.pool_size + 2) {
        ++open_;
        lk.unlock();
        try {
          return std::make_unique<Connection>(opt_);
        } catch (...) {
          lk.lock();
          --open_;
          throw;
        }
      }
      cv_.wait(lk);
    }
  }
  void give_back(std::unique_ptr<Connection> c) {
    std::lock_guard lk(mu_);
    if (closed_) return;
    idle_.push_back(std::move(c));
    cv_.notify_one();
  }

  PostgresOptions opt_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Connection>> idle_;
  size_t open_ = 1;
  bool closed_ = false;
  std::atomic<bool> down_{false};     // the server was found unreachable and has not answered since
  std::atomic<bool> probing_{false};  // a call is finding out whether it answers again
  std::atomic<int64_t> next_probe_{0};
  // One pipe for each I/O thread (its io_context) that reads with query_read.
  struct PipeSlot {
    std::shared_ptr<Pipe> pipe;
    bool connecting = false;
    std::chrono::steady_clock::time_point next_attempt{};
  };
  std::mutex pipes_mu_;
  std::map<const void*, PipeSlot> pipes_;
  bool pipes_closed_ = false;
};

}  // namespace

std::unique_ptr<Database> open_postgres(const PostgresOptions& options) {
  return std::make_unique<PostgresDatabase>(options);
}

}  // namespace keel::db
