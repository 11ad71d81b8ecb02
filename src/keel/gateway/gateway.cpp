#include "keel/gateway/gateway.hpp"

#include <algorithm>
#include <optional>

#include "keel/core/config.hpp"
#include "keel/core/error.hpp"
#include "keel/core/ids.hpp"
#include "keel/core/thread_slots.hpp"
#include "keel/core/time.hpp"
#include "keel/db/database.hpp"
#include "keel/gateway/settings.hpp"
#include "keel/http/router.hpp"
#include "keel/module/caller.hpp"
#include "keel/module/module.hpp"
#include "keel/module/registry_view.hpp"

namespace keel::gateway {

namespace net = boost::asio;
using http::iequals;
using http::Method;
using http::Request;
using http::Response;

GatewaySettings GatewaySettings::from(const Config& c) {
  namespace k = settings;
  GatewaySettings s;
  s.edge_auth = k::edge_auth.boolean(c);
  s.user_rate = k::user_rate.number(c);
  s.user_burst = k::user_burst.number(c);
  s.ip_rate = k::ip_rate.number(c);
  s.ip_burst = k::ip_burst.number(c);
  s.connect_timeout = std::chrono::milliseconds(k::connect_timeout_ms.integer(c));
  s.upstream_timeout = std::chrono::milliseconds(k::upstream_timeout_ms.integer(c));
  s.cluster_limits = k::cluster_limits.boolean(c);
  s.account_stale = std::chrono::milliseconds(k::account_stale_ms.integer(c));
  s.lease_period = std::chrono::milliseconds(k::lease_period_ms.integer(c));
  s.lease_wait = std::chrono::milliseconds(k::lease_wait_ms.integer(c));
  return s;
}

int RateLimiter::take(const std::string& key, double share) {
  if (rate_ <= 0) return 0;
  const double rate = rate_ * share, burst = std::max(1.0, burst_ * share);
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lk(mu_);
  // A bucket that has refilled is the same as none: every 10 s those go, so the map holds the keys that
  // spent tokens in the last burst/rate seconds, not every user and address seen since start. Past the cap
  // (a flood of distinct keys within one sweep) it starts again.
  if (now - swept_ >= sweep_every_) {
    std::erase_if(buckets_, [&](const auto& e) {
      return e.second.tokens + std::chrono::duration<double>(now - e.second.at).count() * rate >= burst;
    });
    swept_ = now;
  }
  if (buckets_.size() > 100000) buckets_.clear();
  auto [it, fresh] = buckets_.try_emplace(key, Bucket{burst, now});
  Bucket& b = it->second;
  if (!fresh) {
    b.tokens = std::min(burst, b.tokens + std::chrono::duration<double>(now - b.at).count() * rate);
    b.at = now;
  }
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return 0;
  }
  return std::max(1, static_cast<int>(std::ceil((1 - b.tokens) / rate)));
}

size_t RateLimiter::tracked() {
  std::lock_guard lk(mu_);
  return buckets_.size();
}

namespace {
std::atomic<uint64_t> g_next_gateway{1};

}  // namespace

Gateway::Gateway(ModuleContext& ctx, GatewaySettings settings)
    : db_(ctx.db),
      io_(ctx.io),
      verifier_(ctx.authenticator),
      registry_(ctx.registry),
      modules_(ctx.modules),
      local_(ctx.local_routers),
      declared_(ctx.declared),
      settings_(settings),
      policy_(http::AddressPolicy::from(ctx.config)),
      user_limit_(settings.user_rate, settings.user_burst),
      ip_limit_(settings.ip_rate, settings.ip_burst),
      table_(std::make_shared<RouteTable>()),
      meter_(ctx.accounts),
      instance_(g_next_gateway.fetch_add(1)) {
  // SQLite has one process, whose limits in memory are exact; PostgreSQL may have a fleet.
  if (settings_.cluster_limits && db_.dialect() == db::Dialect::Postgres)
    budgets_ = std::make_unique<SharedBudgets>(db_, settings_.lease_period);
}

net::awaitable<Response> Gateway::handle(Request& req) {
  Table t = table();
  const Target* target = t->find(req.path);
  if (!target) throw Error::not_found("no module serves this path");
  req.upstream = target->module;  // its answer counts in the module's recent traffic, refusals too

  Caller who;
  std::optional<AccountView> account;
  if (settings_.edge_auth && !target->is_public(req.method, req.path)) {
    who = verifier_.authenticate_shared(req);
    if (!who->user_id.empty()) {
      account = cached_account(who->user_id);
      if (!account) return handle_loading(req, std::move(t), target, std::move(who));
    }
  }
  int stage = 0;
  if (!admit(who.get(), account ? &*account : nullptr, *target, req, stage, false))
    return admit_after_lease(req, std::move(t), target, std::move(who), std::move(account), stage);
  return forward(req, t, target, who);
}

namespace {
Error too_many(const std::string& detail, int64_t retry_after) {
  Error e(429, "Too Many Requests", detail);
  e.headers.emplace_back("Retry-After", std::to_string(std::max<int64_t>(1, retry_after)));
  return e;
}
}  // namespace

Gateway::Verdict Gateway::take_rate(RateLimiter& local, std::string_view kind, const std::string& id,
                                    double rate, double burst, const char* what, bool last_try) {
  if (rate <= 0) return Verdict::Pass;
  const int64_t retry = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(1 / rate)));
  if (budgets_) {
    const double now =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    // The row means nothing once the bucket would have refilled from empty.
    const Budget budget{rate, burst, now + burst / rate + 1};
    // The shared table holds every kind of key: "u:<user>", "ip:<address>" (built only on this path; the
    // local limiters are one per kind and take the id as it is).
    switch (budgets_->take(std::string(kind) + id, budget)) {
      case SharedBudgets::Outcome::Granted:
        return Verdict::Pass;
      case SharedBudgets::Outcome::Refused:
        throw too_many(std::string("request rate limit reached for this ") + what, retry);
      case SharedBudgets::Outcome::Empty:
        if (!last_try) return Verdict::Wait;
        // No lease within lease_wait while the database answers (slowly): refuse rather than admit past
        // the fleet's budget.
        throw Error::unavailable("the fleet's request limits could not be checked in time", 1);
      case SharedBudgets::Outcome::Unavailable:
        break;
    }
  }
  // Per process: the whole limit alone, or this gateway's share of the fleet's while its budgets are
  // out of reach.
  const double share = budgets_ ? 1.0 / static_cast<double>(table()->gateways) : 1.0;
  if (const int wait = local.take(id, share))
    throw too_many(std::string("request rate limit reached for this ") + what, wait);
  return Verdict::Pass;
}

Gateway::Verdict Gateway::take_quota(const std::string& user_id, const AccountView& view, bool last_try) {
  const module::Plan* plan = meter_.accounts().plan(view.plan);
  if (!plan || plan->requests_per_minute <= 0) return Verdict::Pass;
  const int64_t secs = coarse_unix_seconds();
  const int64_t minute = secs / 60;
  const std::string detail = "the " + view.plan + " plan's request quota for this minute is used up";
  if (budgets_) {
    const Budget budget{0, static_cast<double>(plan->requests_per_minute),
                        static_cast<double>((minute + 1) * 60)};
    switch (budgets_->take("q:" + user_id + ":" + std::to_string(minute), budget)) {
      case SharedBudgets::Outcome::Granted:
        return Verdict::Pass;
      case SharedBudgets::Outcome::Refused:
        throw too_many(detail, 60 - secs % 60);
      case SharedBudgets::Outcome::Empty:
        if (!last_try) return Verdict::Wait;
        // No lease within lease_wait while the database answers (slowly): refuse rather than admit past
        // the fleet's budget.
        throw Error::unavailable("the fleet's request limits could not be checked in time", 1);
      case SharedBudgets::Outcome::Unavailable:
        break;
    }
  }
  // In memory: exact for the one process on SQLite; a fleet's gateway that cannot reach the shared budgets
  // admits its share of the quota.
  const int64_t limit =
      budgets_ ? std::max<int64_t>(1, plan->requests_per_minute / static_cast<int64_t>(table()->gateways))
               : plan->requests_per_minute;
  std::lock_guard lk(quota_mu_);
  // Counts of minutes past count nothing: when a new minute begins they go (the map holds this minute's
  // users, not every user seen since start); past the cap the map starts again, as at a minute's turn.
  if (minute != counts_minute_) {
    std::erase_if(minute_counts_, [minute](const auto& e) { return e.second.first != minute; });
    counts_minute_ = minute;
  }
  if (minute_counts_.size() > 100000) minute_counts_.clear();
  auto& [counted_minute, used] = minute_counts_[user_id];
  if (counted_minute != minute) {
    counted_minute = minute;
    used = 0;
  }
  if (used >= limit) throw too_many(detail, 60 - secs % 60);
  ++used;
  return Verdict::Pass;
}

bool Gateway::admit(const module::Principal* who, const AccountView* account, const Target& target,
                    const Request& req, int& stage, bool last_try) {
  if (!who) {
    if (stage == 0 && take_rate(ip_limit_, "ip:", req.remote_ip, settings_.ip_rate, settings_.ip_burst,
                                "address", last_try) == Verdict::Wait)
      return false;
    stage = 1;
    return true;
  }
  // The rate limit first: a request it refuses is neither counted against the plan nor charged.
  if (stage == 0) {
    if (take_rate(user_limit_, "u:", who->subject, settings_.user_rate, settings_.user_burst, "user",
                  last_try) == Verdict::Wait)
      return false;
    stage = 1;
  }
  if (!account) return true;
  if (stage == 1) {
    if (take_quota(who->user_id, *account, last_try) == Verdict::Wait) return false;
    stage = 2;
  }
  charge(who->user_id, *account, target.module);
  return true;
}

net::awaitable<Response> Gateway::admit_after_lease(Request& req, Table table, const Target* target,
                                                    Caller who, std::optional<AccountView> account,
                                                    int stage) {
  // Each lease round that ends tops up what this request waits for (a request may need two keys leased, its
  // rate bucket then its quota). Past lease_wait without an answer, the local limits decide, as when the
  // database is unreachable.
  const auto deadline = std::chrono::steady_clock::now() + settings_.lease_wait;
  for (;;) {
    co_await budgets_->next_round(deadline);
    const bool last_try = std::chrono::steady_clock::now() >= deadline;
    if (admit(who.get(), account ? &*account : nullptr, *target, req, stage, last_try)) break;
  }
  co_return co_await forward(req, table, target, who);
}

net::awaitable<Response> Gateway::handle_loading(Request& req, Table table, const Target* target,
                                                 Caller who) {
  std::optional<AccountView> loaded;
  try {
    loaded = co_await load_account(who->user_id);
  } catch (const db::DbError& e) {
    if (e.kind() != db::DbError::Kind::Unavailable && e.kind() != db::DbError::Kind::Busy) throw;
  }
  if (!loaded) {
    loaded = stale_account(who->user_id);
    if (!loaded) throw Error::unavailable("the gateway cannot read this account's plan and balance", 1);
  }
  const AccountView account = *loaded;
  int stage = 0;
  if (!admit(who.get(), &account, *target, req, stage, false)) {
    co_return co_await admit_after_lease(req, std::move(table), target, std::move(who), account, stage);
  }
  co_return co_await forward(req, table, target, who);
}

net::awaitable<Response> Gateway::forward(Request& req, const Table& table, const Target* target,
                                          const Caller& who) {
  if (!target->local) return proxy(req, table, target, who);
  // A module in this process: its router runs the request (the router outlives the table).
  const std::string* label = nullptr;
  return target->local->dispatch(req, label);
}

}  // namespace keel::gateway
