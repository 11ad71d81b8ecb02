#include "keel/module/idempotency.hpp"

#include <sodium.h>

#include <boost/json.hpp>
#include <chrono>

#include "keel/core/error.hpp"
#include "keel/core/time.hpp"
#include "keel/db/database.hpp"

namespace keel::module {

namespace json = boost::json;

namespace {
constexpr auto kKeep = std::chrono::hours(24);

std::string sha256_hex(std::string_view a, std::string_view b, std::string_view c) {
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  for (std::string_view part : {a, std::string_view("\n"), b, std::string_view("\n"), c})
    crypto_hash_sha256_update(&st, reinterpret_cast<const unsigned char*>(part.data()), part.size());
  unsigned char out[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&st, out);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char byte : out) {
    hex.push_back(kHex[byte >> 4]);
    hex.push_back(kHex[byte & 15]);
  }
  return hex;
}
}  // namespace

std::optional<Idempotency> Idempotency::of(const http::Request& req, std::string scope) {
  const std::string_view key = req.header("Idempotency-Key");
  if (key.empty()) return std::nullopt;
  bool visible = key.size() <= 255;
  for (char c : key) visible = visible && c > 0x20 && c < 0x7f;
  if (!visible) throw Error::bad_request("Idempotency-Key must be 1 to 255 visible ASCII characters");
  Idempotency out;
  out.scope_ = std::move(scope);
  out.key_ = std::string(key);
  out.request_hash_ = sha256_hex(req.method_str, req.path, req.body);
  return out;
}

std::optional<http::Response> Idempotency::replay(db::Session& s) const {
  auto r = s.query(
      "SELECT request_hash, status, headers, body FROM idempotent_requests WHERE scope = $1 AND key = $2 "
      "AND created_at > $3",
      {scope_, key_, format_rfc3339(std::chrono::system_clock::now() - kKeep)});
  if (r.empty()) return std::nullopt;
  const auto& row = r.rows[0];
  if (row.text(0) != request_hash_)
    throw Error::validation({{"Idempotency-Key", "was used for another request within 24 hours"}});
  http::Response out = http::Response::json_text(static_cast<int>(row.int64(1)), row.text(3));
  boost::system::error_code ec;
  const auto headers = json::parse(row.text(2), ec);
  if (!ec && headers.is_array())
    for (const auto& h : headers.as_array())
      if (h.is_array() && h.as_array().size() == 2 && h.as_array()[0].is_string() &&
          h.as_array()[1].is_string())
        out.headers.emplace_back(std::string(h.as_array()[0].as_string()),
                                 std::string(h.as_array()[1].as_string()));
  out.headers.emplace_back("Idempotent-Replayed", "true");
  return out;
}

void Idempotency::store(db::Session& s, const http::Response& answer) const {
  json::array headers;
  for (const auto& [name, value] : answer.headers) headers.push_back(json::array{name, value});
  const std::string now = now_rfc3339();
  // A row of the same key older than 24 h is no longer the key's: the new answer takes its place.
  s.query("DELETE FROM idempotent_requests WHERE scope = $1 AND key = $2 AND created_at <= $3",
          {scope_, key_, format_rfc3339(std::chrono::system_clock::now() - kKeep)});
  s.query(
      "INSERT INTO idempotent_requests (scope, key, request_hash, status, headers, body, created_at, "
      "updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
      {scope_, key_, request_hash_, int64_t{answer.status}, json::serialize(headers), answer.body, now});
}

boost::asio::awaitable<http::Response> create_once(
    db::Database& db, const std::optional<Idempotency>& idempotency,
    const std::function<http::Response(db::Session&)>& create) {
  for (int attempt = 0;; ++attempt) {
    try {
      co_return co_await db.write([&](db::Session& s) {
        if (idempotency)
          if (auto stored = idempotency->replay(s)) return std::move(*stored);
        http::Response answer = create(s);
        if (idempotency) idempotency->store(s, answer);
        return answer;
      });
    } catch (const db::DbError& e) {
      // Another request with this key committed first: answer with what it stored.
      if (!idempotency || attempt > 0 || e.kind() != db::DbError::Kind::UniqueViolation) throw;
    }
  }
}

void forget_idempotent_answers(db::Session& s) {
  s.query("DELETE FROM idempotent_requests WHERE created_at < $1",
          {format_rfc3339(std::chrono::system_clock::now() - kKeep)});
}

}  // namespace keel::module
