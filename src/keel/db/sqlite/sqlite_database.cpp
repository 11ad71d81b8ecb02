#include "keel/db/sqlite/sqlite_database.hpp"

#include <pthread.h>
#include <sqlite3.h>
#include <sys/mman.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "keel/db/sqlite/fts_rank.hpp"

namespace keel::db {

namespace {

class Connection final : public Session {
 public:
  Connection(const std::filesystem::path& path, const SqliteOptions& opt, bool writer) {
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
      std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      db_ = nullptr;
      throw DbError(DbError::Kind::Unavailable, "cannot open SQLite database " + path.string() + ": " + msg);
    }
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, opt.busy_timeout_ms);
    register_fts_functions(db_);
    // temp_store=MEMORY: the group commit's savepoints keep their statement journals in memory, not in
    // temporary files. mmap_size (sqlite_mmap_mib) is off by default: it worsened search tail latency here.
    exec_script(
        "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY; PRAGMA synchronous=" +
        opt.synchronous + "; PRAGMA mmap_size=" + std::to_string(opt.mmap_mib * 1024 * 1024) +
        "; PRAGMA cache_size=-" + std::to_string(cache_kib(opt, writer)) + ";");
  }
  // This connection's share of opt.cache_mib, in KiB (at least 256).
  static int64_t cache_kib(const SqliteOptions& opt, bool writer) {
    const int64_t total = opt.cache_mib * 1024;
    const int64_t for_writer = std::min<int64_t>(2048, total / 2);
    const int64_t kib = writer ? for_writer : (total - for_writer) / static_cast<int64_t>(opt.readers + 2);
    return std::max<int64_t>(256, kib);
  }
  ~Connection() override {
    for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }

  Dialect dialect() const override { return Dialect::Sqlite; }

  Result query(std::string_view sql, const std::vector<Value>& params) override {
    sqlite3_stmt* stmt = prepare(sql);
    struct Reset {
      sqlite3_stmt* s;
      ~Reset() {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
      }
    } reset{stmt};
    const int n = sqlite3_bind_parameter_count(stmt);
    for (int i = 1; i <= n; ++i) {
      const char* name = sqlite3_bind_parameter_name(stmt, i);
      size_t idx = 0;
      if (!name || name[0] != '$' || std::sscanf(name + 1, "%zu", &idx) != 1 || idx == 0 ||
          idx > params.size())
        throw DbError(DbError::Kind::Other,
                      "SQL parameter " + std::string(name ? name : "?") + " has no value");
      bind(stmt, i, params[idx - 1]);
    }
    Result result;
    const int cols = sqlite3_column_count(stmt);
    auto names = std::make_shared<std::vector<std::string>>();
    for (int c = 0; c < cols; ++c) names->emplace_back(sqlite3_column_name(stmt, c));
    result.columns = names;
    for (;;) {
      int rc = sqlite3_step(stmt);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) fail(rc);
      std::vector<std::optional<std::string>> values;
      values.reserve(cols);
      for (int c = 0; c < cols; ++c) {
        switch (sqlite3_column_type(stmt, c)) {
          case SQLITE_NULL:
            values.emplace_back(std::nullopt);
            break;
          case SQLITE_FLOAT: {
            char buf[32];
            std::snprintf(buf, sizeof buf, "%.17g", sqlite3_column_double(stmt, c));
            values.emplace_back(buf);
            break;
          }
          default: {
            const void* p = sqlite3_column_blob(stmt, c);
            const int len = sqlite3_column_bytes(stmt, c);
            values.emplace_back(std::string(static_cast<const char*>(p ? p : ""), static_cast<size_t>(len)));
          }
        }
      }
      result.rows.emplace_back(names, std::move(values));
    }
    result.affected = sqlite3_changes(db_);
    return result;
  }

  void exec_script(std::string_view sql) override {
    char* err = nullptr;
    std::string s(sql);
    int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
      std::string msg = err ? err : sqlite3_errstr(rc);
      sqlite3_free(err);
      throw DbError(kind_of(rc), "SQLite: " + msg);
    }
  }

 private:
  static DbError::Kind kind_of(int rc) {
    switch (rc) {
      case SQLITE_CONSTRAINT_UNIQUE:
      case SQLITE_CONSTRAINT_PRIMARYKEY:
        return DbError::Kind::UniqueViolation;
      case SQLITE_CONSTRAINT_FOREIGNKEY:
        return DbError::Kind::ForeignKeyViolation;
      case SQLITE_BUSY:
      case SQLITE_LOCKED:
        return DbError::Kind::Busy;
      case SQLITE_CANTOPEN:
      case SQLITE_IOERR:
      case SQLITE_FULL:
        return DbError::Kind::Unavailable;
      default:
        switch (rc & 0xff) {
          case SQLITE_IOERR:
          case SQLITE_CANTOPEN:
          case SQLITE_FULL:
            return DbError::Kind::Unavailable;
          case SQLITE_BUSY:
          case SQLITE_LOCKED:
            return DbError::Kind::Busy;
          default:
            return DbError::Kind::Other;
        }
    }
  }

  [[noreturn]] void fail(int rc) {
    throw DbError(kind_of(rc), std::string("SQLite: ") + sqlite3_errmsg(db_));
  }

  sqlite3_stmt* prepare(std::string_view sql) {
    auto it = cache_.find(std::string(sql));
    if (it != cache_.end()) return it->second;
    // Statements built with a varying number of placeholders (filters, tags, search terms) make many texts:
    // past kMaxStatements the cache starts again from none (each query has run to its end before the next
    // prepare, so none is in use).
    constexpr size_t kMaxStatements = 512;
    if (cache_.size() >= kMaxStatements) {
      for (auto& [text, old] : cache_) sqlite3_finalize(old);
      cache_.clear();
    }
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                                &stmt, nullptr);
    if (rc != SQLITE_OK) fail(rc);
    cache_.emplace(std::string(sql), stmt);
    return stmt;
  }

  static void bind(sqlite3_stmt* stmt, int i, const Value& v) {
    std::visit(
        [&](const auto& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, std::nullptr_t>)
            sqlite3_bind_null(stmt, i);
          else if constexpr (std::is_same_v<T, int64_t>)
            sqlite3_bind_int64(stmt, i, x);
          else if constexpr (std::is_same_v<T, double>)
            sqlite3_bind_double(stmt, i, x);
          else if constexpr (std::is_same_v<T, bool>)
            sqlite3_bind_int(stmt, i, x ? 1 : 0);
          else if constexpr (std::is_same_v<T, Blob>)
            sqlite3_bind_blob(stmt, i, x.bytes.data(), static_cast<int>(x.bytes.size()), SQLITE_TRANSIENT);
          else
            sqlite3_bind_text(stmt, i, x.data(), static_cast<int>(x.size()), SQLITE_TRANSIENT);
        },
        v);
  }

  sqlite3* db_ = nullptr;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

// Writes go through one writer thread that commits them in groups: the transactions queued while one
// commits run together in the next, each inside its own savepoint (so one failing write rolls back alone),
// under one BEGIN/COMMIT. Same serial semantics as one transaction each, a fraction of the locking and WAL
// writes per write.
class SqliteDatabase final : public Database {
 public:
  explicit SqliteDatabase(const SqliteOptions& opt) : opt_(opt) {
    if (sqlite3_threadsafe() == 0) throw DbError(DbError::Kind::Other, "SQLite was built without threads");
    writer_ = std::make_unique<Connection>(opt_.path, opt_, true);
    // Pool threads mostly wait for the writer or run short reads; enough of them keeps group commits full.
    pool_ = std::make_unique<WorkerPool>("keel-sqlite", std::max<size_t>(opt_.readers, 16), 4096);
    writer_thread_ = std::thread([this] { write_loop(); });
    pthread_setname_np(writer_thread_.native_handle(), "keel-sqlite-w");
  }
  ~SqliteDatabase() override { close(); }

  Dialect dialect() const override { return Dialect::Sqlite; }
  std::string describe() const override { return opt_.path.string(); }
  std::string storage_dir() const override { return opt_.path.parent_path().string(); }

  void with_session(Access access, const std::function<void(Session&)>& fn) override {
    if (access == Access::Write) {
      WriteJob job{&fn, nullptr, false, {}};
      {
        std::lock_guard lk(queue_mu_);
        if (stopping_) throw DbError(DbError::Kind::Unavailable, "database is closed");
        queue_.push_back(&job);
      }
      queue_cv_.notify_one();
      std::unique_lock lk(queue_mu_);
      done_cv_.wait(lk, [&] { return job.done; });
      if (job.error) std::rethrow_exception(job.error);
      return;
    }
    std::unique_ptr<Connection> conn = take_reader();
    struct Return {
      SqliteDatabase* self;
      std::unique_ptr<Connection>& c;
      ~Return() { self->return_reader(std::move(c)); }
    } ret{this, conn};
    conn->drop_commit_hooks();
    fn(*conn);
    run_commit_hooks(conn->take_commit_hooks());
  }

  void close() override {
    if (pool_) pool_->stop();
    {
      std::lock_guard lk(queue_mu_);
      stopping_ = true;
    }
    queue_cv_.notify_all();
    if (writer_thread_.joinable()) writer_thread_.join();
    std::lock_guard lk2(readers_mu_);
    readers_.clear();
    writer_.reset();
  }

 private:
  struct WriteJob {
    const std::function<void(Session&)>* fn;
    std::exception_ptr error;
    bool done = false;
    std::vector<std::function<void()>> hooks;  // its after_commit calls, run once the batch commits
  };

  void write_loop() {
    for (;;) {
      std::vector<WriteJob*> batch;
      {
        std::unique_lock lk(queue_mu_);
        queue_cv_.wait(lk, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping, and everything queued is done
        while (!queue_.empty() && batch.size() < 256) {
          batch.push_back(queue_.front());
          queue_.pop_front();
        }
      }
      run_batch(batch);
      {
        std::lock_guard lk(queue_mu_);
        for (WriteJob* j : batch) j->done = true;
      }
      done_cv_.notify_all();
    }
  }

  void rollback() {
    try {
      writer_->exec_script("ROLLBACK");
    } catch (const DbError&) {
      // The transaction may already be gone (SQLite rolls back on some errors); nothing left to undo.
    }
  }

  void run_batch(const std::vector<WriteJob*>& batch) {
    try {
      writer_->exec_script("BEGIN IMMEDIATE");
    } catch (...) {
      for (WriteJob* j : batch) j->error = copy_of(std::current_exception());
      return;
    }
    writer_->drop_commit_hooks();
    if (batch.size() == 1) {
      try {
        (*batch[0]->fn)(*writer_);
        batch[0]->hooks = writer_->take_commit_hooks();
      } catch (...) {
        batch[0]->error = std::current_exception();
        writer_->drop_commit_hooks();
        rollback();
        return;
      }
    } else {
      for (WriteJob* j : batch) {
        try {
          writer_->exec_script("SAVEPOINT job");
          (*j->fn)(*writer_);
          writer_->exec_script("RELEASE job");
          j->hooks = writer_->take_commit_hooks();
        } catch (...) {
          j->error = std::current_exception();
          writer_->drop_commit_hooks();
          try {
            writer_->exec_script("ROLLBACK TO job; RELEASE job");
          } catch (const DbError&) {
            // SQLite ended the whole transaction (e.g. out of disk): everyone in the batch fails below.
            for (WriteJob* k : batch)
              if (!k->error)
                k->error =
                    std::make_exception_ptr(DbError(DbError::Kind::Unavailable, "write batch aborted"));
            rollback();
            return;
          }
        }
      }
    }
    try {
      writer_->exec_script("COMMIT");
    } catch (...) {
      for (WriteJob* j : batch)
        if (!j->error) j->error = copy_of(std::current_exception());
      rollback();
      return;
    }
    for (WriteJob* j : batch)
      if (!j->error) run_commit_hooks(std::move(j->hooks));
  }

  std::unique_ptr<Connection> take_reader() {
    {
      std::lock_guard lk(readers_mu_);
      if (!readers_.empty()) {
        auto c = std::move(readers_.back());
        readers_.pop_back();
        return c;
      }
    }
    return std::make_unique<Connection>(opt_.path, opt_, false);
  }
  void return_reader(std::unique_ptr<Connection> c) {
    std::lock_guard lk(readers_mu_);
    if (readers_.size() < opt_.readers + 2) readers_.push_back(std::move(c));
  }

  SqliteOptions opt_;
  std::unique_ptr<Connection> writer_;  // used by the writer thread only
  std::thread writer_thread_;
  std::mutex queue_mu_;
  std::condition_variable queue_cv_, done_cv_;
  std::deque<WriteJob*> queue_;
  bool stopping_ = false;
  std::mutex readers_mu_;
  std::vector<std::unique_ptr<Connection>> readers_;
};

}  // namespace

namespace {

// The page caches' memory, set aside once per process before SQLite starts: cache_mib of 4 KiB pages (keel's
// page size), in one block touched up front. SQLite takes its pages from there before it asks malloc, and a
// process's memory then does not climb for minutes as the caches fill with a growing database (a soak's RSS
// rose 23 -> 27 MiB over five minutes, half of it SQLite's pages, half the allocator holding what the pages
// left free between them). The block is the cache's full size from the start, as PostgreSQL's shared_buffers
// is; pages past it (a burst's extra readers) come from malloc as before.
void reserve_page_cache(int64_t cache_mib) {
  static std::once_flag once;
  std::call_once(once, [cache_mib] {
    int header = 0;
    if (cache_mib <= 0 || sqlite3_config(SQLITE_CONFIG_PCACHE_HDRSZ, &header) != SQLITE_OK) return;
    const size_t slot = (4096 + static_cast<size_t>(header) + 7) & ~size_t(7);
    const size_t slots = static_cast<size_t>(cache_mib) * 256;
    void* block = ::mmap(nullptr, slot * slots, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (block == MAP_FAILED) return;
    // Refused once SQLite has started (a process that used it before opening keel's database): then malloc.
    if (sqlite3_config(SQLITE_CONFIG_PAGECACHE, block, static_cast<int>(slot), static_cast<int>(slots)) !=
        SQLITE_OK)
      ::munmap(block, slot * slots);
  });
}

}  // namespace

std::unique_ptr<Database> open_sqlite(const SqliteOptions& options) {
  reserve_page_cache(options.cache_mib);
  return std::make_unique<SqliteDatabase>(options);
}

}  // namespace keel::db
