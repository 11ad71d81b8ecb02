#include "keel/db/database.hpp"

#include <charconv>
#include <cstdlib>

#include "keel/core/time.hpp"

namespace keel::db {

std::exception_ptr copy_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const DbError& x) {
    // Built afresh, not copied: a copy of a std::runtime_error shares its message (libstdc++ counts its
    // references), which is what must not be shared.
    return std::make_exception_ptr(DbError(x.kind(), std::string(x.what())));
  } catch (const Error& x) {
    Error fresh(x.status(), std::string(x.title()), std::string(x.detail()), x.errors());
    fresh.headers = x.headers;
    return std::make_exception_ptr(fresh);
  } catch (const std::exception& x) {
    return std::make_exception_ptr(std::runtime_error(x.what()));
  } catch (...) {
    return std::make_exception_ptr(std::runtime_error("unknown error"));
  }
}

std::string array_literal(const std::vector<std::optional<std::string>>& items) {
  size_t size = 2;
  for (const auto& i : items) size += (i ? i->size() + 3 : 5);
  std::string out;
  out.reserve(size);
  out += '{';
  for (size_t n = 0; n < items.size(); ++n) {
    if (n) out += ',';
    if (!items[n]) {
      out += "NULL";
      continue;
    }
    out += '"';
    for (char c : *items[n]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

Error to_http_error(const DbError& e) {
  switch (e.kind()) {
    case DbError::Kind::Unavailable:
      return Error::unavailable("the database is unavailable", 1);
    case DbError::Kind::Busy:
      return Error::unavailable("the database is busy", 1);
    case DbError::Kind::UniqueViolation:
      return Error::conflict("the resource already exists");
    case DbError::Kind::ForeignKeyViolation:
      return Error::conflict("a referenced resource does not exist");
    default:
      return Error(500, "Internal Server Error", "an unexpected database error occurred");
  }
}

Error DbError::http_error() const { return to_http_error(*this); }

std::optional<Database::WriteFailure> Database::last_write_failure() const {
  std::lock_guard lk(write_failure_mu_);
  if (write_failure_ && write_failure_->at <= write_probe_passed_) return std::nullopt;
  return write_failure_;
}

void Database::note_write_probe_passed() {
  std::lock_guard lk(write_failure_mu_);
  write_probe_passed_ = std::chrono::steady_clock::now();
}

void Database::note_write_failure(const DbError& e) {
  if (e.kind() != DbError::Kind::Unavailable) return;
  const std::string what = e.what();
  const auto has = [&](const char* s) { return what.find(s) != std::string::npos; };
  const char* reason = has("full") || has("No space") || has("space left")      ? "disk full"
                       : has("read-only") || has("readonly") || has("READONLY") ? "read-only"
                       : has("I/O") || has("disk I/O")                          ? "i/o error"
                                                                                : "unavailable";
  std::lock_guard lk(write_failure_mu_);
  write_failure_ = WriteFailure{std::chrono::steady_clock::now(), reason};
}

boost::asio::awaitable<Result> Database::query_read(const std::string& sql,
                                                    const std::vector<Value>& params) {
  co_return co_await read([&](Session& s) { return s.query(sql, params); });
}

void lock_for_transaction(Session& s, LockKey key) {
  if (s.dialect() == Dialect::Postgres)
    s.defer("SELECT pg_advisory_xact_lock($1)", {static_cast<int64_t>(key)});  // with the next statement
}

const std::string& Row::text(size_t i) const {
  const auto& v = values_.at(i);
  if (!v) throw DbError(DbError::Kind::Other, "unexpected NULL in column " + std::to_string(i));
  return *v;
}

int64_t Row::int64(size_t i) const {
  const std::string& s = text(i);
  int64_t out = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  if (r.ec != std::errc())
    throw DbError(DbError::Kind::Other, "not an integer in column " + std::to_string(i));
  return out;
}

double Row::real(size_t i) const { return std::strtod(text(i).c_str(), nullptr); }

bool Row::boolean(size_t i) const {
  const std::string& s = text(i);
  return s == "1" || s == "t" || s == "true";
}

std::string Row::time(size_t i) const { return normalize_timestamp(text(i)); }

size_t Row::index(std::string_view column) const {
  for (size_t i = 0; i < columns_->size(); ++i)
    if ((*columns_)[i] == column) return i;
  throw DbError(DbError::Kind::Other, "no column " + std::string(column));
}

}  // namespace keel::db
