#pragma once
// Idempotent creates (CONTRACT.md, "Safety rules"). A create sent with an `Idempotency-Key` header stores its
// answer in the same transaction as what it created; the same key from the same principal within 24 h gets
// that answer again, with `Idempotent-Replayed: true`, and the same key with another request is 422. A
// client that lost an answer (a timeout, a 503 whose commit went through unseen, a server killed after
// committing) retries safely: what was committed is answered, what was not is created once.
#include <boost/asio/awaitable.hpp>
#include <functional>
#include <optional>
#include <string>

#include "keel/http/request.hpp"

namespace keel::db {
class Database;
class Session;
}  // namespace keel::db

namespace keel::module {

class Idempotency {
 public:
  // From the request's header: none without one; 400 for a malformed key (1 to 255 visible ASCII
  // characters). `scope` names the principal and the route ("memory:<user id>").
  static std::optional<Idempotency> of(const http::Request& req, std::string scope);
  // In the write transaction, before creating: the stored answer if the key was used (422 if for another
  // request).
  std::optional<http::Response> replay(db::Session& s) const;
  // In the same transaction, after creating: stores the answer.
  void store(db::Session& s, const http::Response& answer) const;

 private:
  std::string scope_, key_, request_hash_;
};

// Runs `create` in one write transaction and returns its answer; with a key, replays a stored answer instead,
// or stores this one. Two requests racing with one key create once: the loser's transaction rolls back on
// the key and it answers with the winner's.
// Arguments are named objects of the caller (GCC 12 and temporaries in co_await: README, "Developing").
boost::asio::awaitable<http::Response> create_once(db::Database& db,
                                                   const std::optional<Idempotency>& idempotency,
                                                   const std::function<http::Response(db::Session&)>& create);

// Stored answers older than 24 h go (serve's housekeeping calls it).
void forget_idempotent_answers(db::Session& s);

}  // namespace keel::module
