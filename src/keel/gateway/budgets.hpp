#pragma once
// Budgets that every gateway sharing one PostgreSQL spends from: token buckets (a rate and a burst, per user
// and per client address) and window quotas (a plan's requests per wall-clock minute). The request path
// spends from memory: each gateway holds a lease, a slice it was granted, and a background loop leases more
// before it runs out (sized to the key's recent demand) and gives back what an idle key still holds. The
// database never grants more than a budget has, so however many gateways share it, no more than the budget
// passes. A request that finds its gateway's lease empty waits for the next lease round (milliseconds)
// rather than being refused. README, "Limits across a fleet", gives the accuracy this guarantees.
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "keel/core/rounds.hpp"

namespace keel::db {
class Database;
class Session;
}  // namespace keel::db

namespace keel::gateway {

struct Budget {
  double rate = 0;   // tokens a second; 0 for a window quota
  double burst = 0;  // the bucket's size, or the window's quota
  double expires_at =
      0;  // unix seconds past which the shared row means nothing (a full bucket, a past window)
};

// One lease of one key, as the database answered it.
struct LeaseRequest {
  std::string key;
  Budget budget;
  int64_t want = 0;      // units asked for
  int64_t returned = 0;  // unspent units given back
};
// Applies the requests in one transaction and returns what each was granted (same order).
std::vector<int64_t> lease(db::Session& s, const std::vector<LeaseRequest>& requests, double now_unix);
// Forgets budgets whose rows expired before `before_unix`.
void forget_expired_budgets(db::Session& s, double before_unix);

class SharedBudgets {
 public:
  enum class Outcome {
    Granted,      // one unit taken from this gateway's lease
    Empty,        // none left here; more is being leased: await next_round() and take again
    Refused,      // the shared budget had none at the last lease
    Unavailable,  // leases cannot be had (the database is unreachable): the caller applies its fallback
  };
  SharedBudgets(db::Database& db, std::chrono::milliseconds period);
  Outcome take(const std::string& key, const Budget& budget);
  // Returns when a lease round that started after this call has finished, or at `deadline`.
  boost::asio::awaitable<void> next_round(std::chrono::steady_clock::time_point deadline);
  // The lease loop, until its io_context stops: a round every `period`, at once when a request found its
  // lease empty.
  boost::asio::awaitable<void> run();
  size_t keys() const;  // keys with a lease or demand here

 private:
  struct Lease {
    Budget budget;
    int64_t available = 0;  // granted and not yet spent
    int64_t spent = 0;      // taken since the last round: the demand a lease is sized to
    int64_t missed = 0;     // requests that found none since the last round
    bool refused = false;   // the last round asked and got nothing
    std::chrono::steady_clock::time_point used;
  };

  db::Database& db_;
  const std::chrono::milliseconds period_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Lease> leases_;
  Rounds rounds_;
  std::atomic<bool> unavailable_{false};
};

}  // namespace keel::gateway
