#include "keel/gateway/budgets.hpp"

#include <algorithm>
#include <cmath>

#include "keel/core/log.hpp"
#include "keel/core/time.hpp"
#include "keel/db/database.hpp"

namespace keel::gateway {

namespace net = boost::asio;

namespace {

// A key unused this long gives its lease back and is forgotten here.
constexpr auto kIdle = std::chrono::seconds(1);

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// What is left of the row's budget: its tokens, plus what is given back, plus the refill since it was last
// brought up to date (a clock behind the row's refills nothing), at most the burst.
constexpr const char* kAvailable =
    "LEAST(CAST($2 AS double precision), b.tokens + CAST($6 AS double precision) + "
    "GREATEST(0, CAST($4 AS double precision) - b.refilled_at) * CAST($3 AS double precision))";

const std::string& lease_sql() {
  static const std::string grant =
      std::string("GREATEST(0, LEAST(CAST($5 AS double precision), FLOOR(") + kAvailable + ")))";
  static const std::string sql =
      "INSERT INTO gateway_budgets AS b (key, tokens, refilled_at, last_grant, expires_at, created_at, "
      "updated_at) VALUES ($1, CAST($2 AS double precision) - LEAST(CAST($5 AS double precision), "
      "FLOOR(CAST($2 AS double precision))), CAST($4 AS double precision), CAST(LEAST(CAST($5 AS double "
      "precision), FLOOR(CAST($2 AS double precision))) AS bigint), CAST($7 AS double precision), $8, $8) "
      "ON CONFLICT (key) DO UPDATE SET tokens = " +
      std::string(kAvailable) + " - " + grant +
      ", refilled_at = GREATEST(b.refilled_at, CAST($4 AS double precision)), last_grant = CAST(" + grant +
      " AS bigint), expires_at = CAST($7 AS double precision), updated_at = $8 RETURNING last_grant";
  return sql;
}

}  // namespace

std::vector<int64_t> lease(db::Session& s, const std::vector<LeaseRequest>& requests, double now_unix) {
  std::vector<int64_t> granted;
  granted.reserve(requests.size());
  const std::string now = now_rfc3339();
  for (const auto& r : requests) {
    auto rows = s.query(lease_sql(), {r.key, r.budget.burst, r.budget.rate, now_unix, r.want, r.returned,
                                      r.budget.expires_at, now});
    granted.push_back(rows.rows.at(0).int64(0));
  }
  return granted;
}

void forget_expired_budgets(db::Session& s, double before_unix) {
  s.query("DELETE FROM gateway_budgets WHERE expires_at < $1", {before_unix});
}

SharedBudgets::SharedBudgets(db::Database& db, std::chrono::milliseconds period) : db_(db), period_(period) {}

size_t SharedBudgets::keys() const {
  std::lock_guard lk(mu_);
  return leases_.size();
}

SharedBudgets::Outcome SharedBudgets::take(const std::string& key, const Budget& budget) {
  const auto now = coarse_steady_now();
  {
    std::lock_guard lk(mu_);
    Lease& l = leases_[key];
    l.budget = budget;
    l.used = now;
    if (l.available > 0) {
      --l.available;
      ++l.spent;
      return Outcome::Granted;
    }
    ++l.missed;
    if (unavailable_.load(std::memory_order_relaxed)) return Outcome::Unavailable;
    if (l.refused) return Outcome::Refused;
  }
  rounds_.wake();  // the loop leases at once instead of at its next period
  return Outcome::Empty;
}

net::awaitable<void> SharedBudgets::next_round(std::chrono::steady_clock::time_point deadline) {
  return rounds_.next(deadline);
}

net::awaitable<void> SharedBudgets::run() {
  auto last_cleanup = std::chrono::steady_clock::now();
  for (;;) {
    co_await rounds_.sleep(period_);

    // Which keys to lease for: those that ran out or will within a period (ask for two periods of their
    // demand), and idle ones, whose unspent units go back for other gateways.
    std::vector<LeaseRequest> requests;
    std::vector<std::string> forget;
    const uint64_t round = rounds_.begin();
    const auto now = std::chrono::steady_clock::now();
    const double now_unix = unix_now();
    {
      std::lock_guard lk(mu_);
      for (auto it = leases_.begin(); it != leases_.end();) {
        Lease& l = it->second;
        const int64_t demand = l.spent + l.missed;
        if (l.budget.expires_at < now_unix || (now - l.used > kIdle && l.available == 0)) {
          it = leases_.erase(it);  // a past window, or nothing held: nothing to give back
          continue;
        }
        if (now - l.used > kIdle) {
          requests.push_back({it->first, l.budget, 0, l.available});
          forget.push_back(it->first);
          l.available = 0;
        } else if (l.missed > 0 || l.available < std::max<int64_t>(1, l.spent)) {
          const int64_t target = std::max<int64_t>(1, 2 * demand);
          const int64_t cap = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(l.budget.burst)));
          requests.push_back(
              {it->first, l.budget, std::min(cap, std::max<int64_t>(1, target - l.available)), 0});
        }
        l.spent = 0;
        l.missed = 0;
        ++it;
      }
    }
    bool reached = true;
    // In key order, as every gateway does: two rounds never wait on each other's row locks in a cycle.
    std::sort(requests.begin(), requests.end(),
              [](const LeaseRequest& a, const LeaseRequest& b) { return a.key < b.key; });
    if (!requests.empty()) {
      try {
        const auto granted = co_await db_.write([&](db::Session& s) { return lease(s, requests, now_unix); });
        std::lock_guard lk(mu_);
        for (size_t i = 0; i < requests.size(); ++i) {
          auto it = leases_.find(requests[i].key);
          if (it == leases_.end()) continue;
          it->second.available += granted[i];
          it->second.refused = requests[i].want > 0 && granted[i] == 0;
        }
        for (const auto& key : forget)
          if (auto it = leases_.find(key);
              it != leases_.end() && it->second.available == 0 && now - it->second.used > kIdle)
            leases_.erase(it);
      } catch (const db::DbError& e) {
        reached = false;
        // Given-back units are lost to this round (the shared row keeps them spent until it refills or its
        // window ends): under-admission, never over. Only an unreachable database turns the local shares
        // on; a busy one (a timeout, a deadlock) leaves requests waiting for the next round.
        if (e.kind() == db::DbError::Kind::Unavailable && !unavailable_.exchange(true))
          log::warn("gateway budgets cannot be leased: local limits apply", {{"error", e.what()}});
      } catch (const std::exception& e) {
        reached = false;
        log::warn("gateway budgets lease round failed", {{"error", e.what()}});
      }
    }
    if (reached && unavailable_.exchange(false)) log::info("gateway budgets leased again");
    rounds_.end(round);
    if (reached && now - last_cleanup > std::chrono::seconds(60)) {
      last_cleanup = now;
      try {
        co_await db_.write([&](db::Session& s) { forget_expired_budgets(s, now_unix - 60); });
      } catch (const std::exception& e) {
        log::warn("expired gateway budgets not removed", {{"error", e.what()}});
      }
    }
  }
}

}  // namespace keel::gateway
