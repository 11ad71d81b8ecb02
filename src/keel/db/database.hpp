#pragma once
// The database layer: one interface, two backends (sqlite/, postgres/). Module code talks to Database and
// Session only; SQL uses $1, $2, ... placeholders on both backends. Blocking calls run on the database's
// worker pool: coroutines use read()/write(), the command line and tests use the *_sync forms.
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "keel/core/error.hpp"
#include "keel/core/worker_pool.hpp"

namespace keel {
struct Config;
}

namespace keel::db {

enum class Dialect { Sqlite, Postgres };

// Binary data (SQLite BLOB, PostgreSQL bytea); read back with Row::text, which holds the raw bytes.
struct Blob {
  std::string bytes;
};

using Value = std::variant<std::nullptr_t, int64_t, double, std::string, bool, Blob>;

// A failure the caller may want to tell apart; the rest are plain DbError(kind Other).
class DbError : public MappedError {
 public:
  enum class Kind { Other, UniqueViolation, ForeignKeyViolation, Unavailable, Busy };
  DbError(Kind kind, const std::string& what) : MappedError(what), kind_(kind) {}
  Kind kind() const { return kind_; }
  Error http_error() const override;

 private:
  Kind kind_;
};

// How a database failure reaches a client: 503 when the database is down or busy, 409 for a conflicting
// write, 500 otherwise; the body never carries SQL or the driver's message.
Error to_http_error(const DbError& e);

// A fresh copy of the exception `e` holds (a DbError, an Error or any std::exception, as a runtime_error),
// sharing nothing with it (its message built anew),
// for handing one failure to writers on several threads: each lets go of its own object, so no thread frees
// one another is reading (libstdc++'s reference count on a shared exception is invisible to TSan).
std::exception_ptr copy_of(const std::exception_ptr& e);

// A PostgreSQL array literal of `items` ("{...}", for a `$1::text[]` parameter): each element double-quoted
// with `"` and `\` escaped, so any text goes through; a nullopt is NULL.
std::string array_literal(const std::vector<std::optional<std::string>>& items);

class Row {
 public:
  using Columns = std::shared_ptr<const std::vector<std::string>>;
  Row() = default;
  Row(Columns columns, std::vector<std::optional<std::string>> values)
      : columns_(std::move(columns)), values_(std::move(values)) {}
  size_t size() const { return values_.size(); }
  bool is_null(size_t i) const { return !values_.at(i).has_value(); }
  const std::string& text(size_t i) const;  // throws on NULL
  std::optional<std::string> opt_text(size_t i) const { return values_.at(i); }
  int64_t int64(size_t i) const;
  double real(size_t i) const;
  bool boolean(size_t i) const;      // 1/0 or t/f
  std::string time(size_t i) const;  // RFC 3339 UTC, whichever backend wrote it
  size_t index(std::string_view column) const;
  const std::string& text(std::string_view column) const { return text(index(column)); }
  int64_t int64(std::string_view column) const { return int64(index(column)); }

 private:
  Columns columns_;
  std::vector<std::optional<std::string>> values_;
};

struct Result {
  Row::Columns columns;
  std::vector<Row> rows;
  int64_t affected = 0;
  bool empty() const { return rows.empty(); }
};

class Session {
 public:
  virtual ~Session() = default;
  virtual Dialect dialect() const = 0;
  // One statement with $n parameters.
  virtual Result query(std::string_view sql, const std::vector<Value>& params) = 0;
  Result query(std::string_view sql, std::initializer_list<Value> params = {}) {
    return query(sql, std::vector<Value>(params));
  }
  // Several statements, no parameters (migrations).
  virtual void exec_script(std::string_view sql) = 0;
  // A statement whose result the caller does not need: PostgreSQL sends it with the transaction's next
  // statement or its COMMIT, in the same round trip; SQLite (in process) runs it at once. Its failure fails
  // the transaction, surfacing from that later statement or the commit.
  virtual void defer(std::string_view sql, const std::vector<Value>& params) { query(sql, params); }
  // The write transaction's last statement: PostgreSQL sends COMMIT with it, in the same round trip (the
  // transaction then must run no other statement); elsewhere, and in a read, the same as query().
  virtual Result query_last(std::string_view sql, const std::vector<Value>& params) {
    return query(sql, params);
  }

  // Runs `fn` once the transaction this call is part of has committed (after the call, for a read); never
  // when it rolls back. For what must follow a commit, such as waking whoever reads what it wrote; `fn`
  // runs on the database's thread and must be quick and not throw.
  void after_commit(std::function<void()> fn) { commit_hooks_.push_back(std::move(fn)); }
  // For the backends: the hooks registered since the last take or drop.
  std::vector<std::function<void()>> take_commit_hooks() { return std::exchange(commit_hooks_, {}); }
  void drop_commit_hooks() { commit_hooks_.clear(); }

 private:
  std::vector<std::function<void()>> commit_hooks_;
};

// Runs hooks taken from a committed session.
inline void run_commit_hooks(std::vector<std::function<void()>> hooks) {
  for (auto& h : hooks) h();
}

enum class Access { Read, Write };

class Database {
 public:
  virtual ~Database() = default;
  virtual Dialect dialect() const = 0;
  // A human-readable location without credentials (the SQLite path, or host:port/dbname).
  virtual std::string describe() const = 0;
  // Runs fn with a session on the calling thread. Write access runs in one transaction, committed when fn
  // returns and rolled back when it throws.
  virtual void with_session(Access access, const std::function<void(Session&)>& fn) = 0;
  virtual void close() = 0;

  WorkerPool& pool() { return *pool_; }
  // The write path as writes found it: the last write that failed because the database could not store it
  // (a full disk, a read-only or failing file system, a server that refuses or cannot be reached), for
  // /health. Constraint violations and busy retries are the caller's business and do not count.
  struct WriteFailure {
    std::chrono::steady_clock::time_point at;
    std::string reason;  // "disk full", "read-only", "i/o error" or "unavailable": no driver text
  };
  // The last failure, unless a write probe (health.hpp) has succeeded since.
  std::optional<WriteFailure> last_write_failure() const;
  void note_write_failure(const DbError& e);
  void note_write_probe_passed();
  // One read statement, awaited: the same as read() with one query in it. PostgreSQL runs it on the calling
  // I/O thread's own connection, pipelined with that thread's other such reads (postgres/pg_pipe.hpp),
  // without a hop to a worker and back; the statement must not write. Named arguments only (GCC 12 and
  // temporaries in co_await).
  virtual boost::asio::awaitable<Result> query_read(const std::string& sql, const std::vector<Value>& params);
  // A directory whose file system holds the data (SQLite's), for a free-space probe; empty for a server.
  virtual std::string storage_dir() const { return {}; }
  // A call queued this long for a worker fails (503) instead of starting: its client has waited its budget.
  void set_queue_timeout(std::chrono::milliseconds t) { queue_timeout_ = t; }

  template <class F>
  auto read_sync(F&& fn) {
    return run_sync(Access::Read, std::forward<F>(fn));
  }
  template <class F>
  auto write_sync(F&& fn) {
    return run_sync(Access::Write, std::forward<F>(fn));
  }
  // Awaitable forms: fn(Session&) runs on the worker pool.
  template <class F>
  boost::asio::awaitable<std::invoke_result_t<F&, Session&>> read(F fn) {
    return run_async(Access::Read, std::move(fn));
  }
  template <class F>
  boost::asio::awaitable<std::invoke_result_t<F&, Session&>> write(F fn) {
    return run_async(Access::Write, std::move(fn));
  }

 protected:
  std::unique_ptr<WorkerPool> pool_;
  std::chrono::milliseconds queue_timeout_{5000};
  mutable std::mutex write_failure_mu_;
  std::optional<WriteFailure> write_failure_;
  std::chrono::steady_clock::time_point write_probe_passed_{};

 private:
  template <class F>
  boost::asio::awaitable<std::invoke_result_t<F&, Session&>> run_async(Access access, F fn) {
    const auto queued = std::chrono::steady_clock::now();
    auto task = [this, access, queued, fn = std::move(fn)]() mutable {
      if (std::chrono::steady_clock::now() - queued > queue_timeout_)
        throw DbError(DbError::Kind::Busy, "waited too long for a database worker");
      return run_sync(access, fn);
    };
    // GCC 12 miscompiles `co_return co_await` of a void awaitable (a double free), hence the split.
    if constexpr (std::is_void_v<std::invoke_result_t<F&, Session&>>) {
      co_await offload(*pool_, std::move(task));
    } else {
      co_return co_await offload(*pool_, std::move(task));
    }
  }

  template <class F>
  auto run_sync(Access access, F&& fn) -> std::invoke_result_t<F&, Session&> {
    using R = std::invoke_result_t<F&, Session&>;
    try {
      if constexpr (std::is_void_v<R>) {
        with_session(access, [&](Session& s) { fn(s); });
      } else {
        std::optional<R> out;
        with_session(access, [&](Session& s) { out.emplace(fn(s)); });
        return std::move(*out);
      }
    } catch (const DbError& e) {
      if (access == Access::Write) note_write_failure(e);
      throw;
    }
  }
};

// keel's transaction-scoped advisory locks on PostgreSQL: processes sharing one database take them to do one
// thing at a time (SQLite has one writer anyway, so there they cost nothing).
enum class LockKey : int64_t { Migrations = 7336001, Sequencer = 7336002, SigningKeys = 7336003 };
void lock_for_transaction(Session& s, LockKey key);

// Opens the configured backend (creating the SQLite file and its directory when missing).
std::unique_ptr<Database> open_database(const Config& config);

}  // namespace keel::db
