#include "keel/gateway/gateway.hpp"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <optional>
#include <set>
#include <unordered_set>

#include "keel/app/modules.hpp"
#include "keel/auth/verifier.hpp"
#include "keel/billing/accounts.hpp"
#include "keel/core/config.hpp"
#include "keel/core/error.hpp"
#include "keel/core/ids.hpp"
#include "keel/core/log.hpp"
#include "keel/core/thread_slots.hpp"
#include "keel/core/time.hpp"
#include "keel/db/database.hpp"
#include "keel/gateway/settings.hpp"
#include "keel/http/router.hpp"
#include "keel/registry/index_watch.hpp"
#include "keel/registry/repository.hpp"

namespace keel::gateway {

namespace net = boost::asio;
using http::iequals;
using http::Method;
using http::Request;
using http::Response;

namespace {

bool hop_by_hop(std::string_view name) {
  static constexpr std::string_view kNames[] = {"connection",          "keep-alive", "proxy-authenticate",
                                                "proxy-authorization", "te",         "trailer",
                                                "transfer-encoding",   "upgrade",    "content-length"};
  for (auto n : kNames)
    if (iequals(name, n)) return true;
  return false;
}

// X-Keel-User-Id and X-Keel-Roles, however a client spells them (X_Keel_User_Id reaches CGI-style upstreams
// as the same variable).
bool is_identity_header(std::string_view k) {
  constexpr std::string_view kPrefix = "x-keel-";
  if (k.size() < kPrefix.size()) return false;
  for (size_t i = 0; i < kPrefix.size(); ++i) {
    const char c = k[i] == '_' ? '-' : http::ascii_lower(k[i]);
    if (c != kPrefix[i]) return false;
  }
  return true;
}

bool idempotent(Method m) {
  return m == Method::Get || m == Method::Head || m == Method::Put || m == Method::Delete ||
         m == Method::Options;
}

struct ThreadState {
  const Gateway* owner = nullptr;
  uint64_t version = ~0ULL;
  std::shared_ptr<const RouteTable> table;
  uint64_t round_robin = 0;
};
ThreadState& thread_state() {
  thread_local ThreadState s;
  return s;
}

}  // namespace

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

const Target* RouteTable::find(std::string_view path) const {
  for (const auto& [prefix, t] : prefixes)
    if (path_under(path, prefix)) return &targets[t];
  return nullptr;
}

namespace {
std::atomic<uint64_t> g_next_gateway{1};

// A thread's recent account views (thread_slot picks by the user id's random tail).
using AccountFront = FrontEntry<AccountView>;
}  // namespace

Gateway::Gateway(ModuleContext& ctx, GatewaySettings settings)
    : db_(ctx.db),
      io_(ctx.io),
      verifier_(ctx.verifier),
      index_(ctx.registry_index),
      local_(ctx.local_routers),
      declared_(ctx.declared),
      settings_(settings),
      policy_(http::AddressPolicy::from(ctx.config)),
      user_limit_(settings.user_rate, settings.user_burst),
      ip_limit_(settings.ip_rate, settings.ip_burst),
      table_(std::make_shared<RouteTable>()),
      meter_(billing::Plans::from(ctx.config)),
      instance_(g_next_gateway.fetch_add(1)) {
  // SQLite has one process, whose limits in memory are exact; PostgreSQL may have a fleet.
  if (settings_.cluster_limits && db_.dialect() == db::Dialect::Postgres)
    budgets_ = std::make_unique<SharedBudgets>(db_, settings_.lease_period);
}

bool Target::is_public(http::Method method, std::string_view path) const {
  if (access && access->is_public(method, path)) return true;
  // Registered by instances elsewhere: this method exactly (another one is the upstream's to judge, with a
  // token). A module in this process answers for itself (`access` is its router).
  return !local && registered_public && registered_public->is_public(method, path, false);
}

namespace {
std::shared_ptr<RouteTable> build_table(
    const std::vector<std::pair<std::string, std::string>>& owners,
    const std::vector<registry::Instance>& instances,
    const std::vector<std::pair<std::string, std::shared_ptr<http::Router>>>& local,
    const Declarations& declared, int64_t index) {
  auto t = std::make_shared<RouteTable>();
  t->index = index;
  std::map<std::string, size_t> by_module;
  auto target_of = [&](const std::string& module) -> size_t {
    auto [it, fresh] = by_module.try_emplace(module, t->targets.size());
    if (fresh) {
      Target target;
      target.module = module;
      for (const auto& m : module_table())
        if (m.name == module) target.keel = true;
      for (const auto& [name, router] : local)
        if (name == module) target.local = router;
      if (!target.local)
        for (const auto& [name, routes] : declared)
          if (name == module) target.access = routes;
      if (target.local) target.access = target.local;
      t->targets.push_back(std::move(target));
    }
    return it->second;
  };
  std::set<std::string> seen;
  for (const auto& m : module_table()) {
    if (m.name == "gateway") continue;
    for (const auto& r : m.routes)
      if (seen.insert(r).second) t->prefixes.emplace_back(r, target_of(std::string(m.name)));
  }
  // The gateway's own routes are its router's exact routes; as a target it would route to itself.
  for (const auto& [prefix, module] : owners)
    if (module != "gateway" && seen.insert(prefix).second)
      t->prefixes.emplace_back(prefix, target_of(module));
  const std::string now = now_rfc3339();
  std::map<size_t, std::set<std::string>> registered_public;  // target -> "METHOD /pattern"
  for (const auto& i : instances) {
    if (i.status != "passing" || i.expires_at <= now) continue;
    auto ep = http::Endpoint::parse(i.url);
    if (!ep) continue;
    const size_t at = target_of(i.module);
    registered_public[at].insert(i.public_routes.begin(), i.public_routes.end());
    Target& target = t->targets[at];
    target.instances.push_back(std::move(*ep));
    target.health_paths.push_back(!i.health_path.empty() ? i.health_path
                                  : target.keel          ? "/health/live"
                                                         : "/");
  }
  for (const auto& [at, routes] : registered_public) {
    if (routes.empty()) continue;
    auto router = std::make_shared<http::Router>();
    for (const auto& route : routes) {
      const auto space = route.find(' ');
      if (space == std::string::npos) continue;
      const auto method = http::method_of(std::string_view(route).substr(0, space));
      if (method != http::Method::Other)
        router->add(method, route.substr(space + 1), http::Access::anyone(), http::Handler());
    }
    t->targets[at].registered_public = std::move(router);
  }
  if (auto it = by_module.find("gateway"); it != by_module.end())
    t->gateways = std::max<size_t>(1, t->targets[it->second].instances.size());
  std::stable_sort(t->prefixes.begin(), t->prefixes.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  boost::json::object health;
  for (const auto& target : t->targets)
    health[target.module] = (target.local || !target.instances.empty()) ? "ok" : "unavailable";
  t->modules_health = boost::json::serialize(health);
  return t;
}
}  // namespace

void Gateway::install_table(db::Session& s) {
  auto t = build_table(registry::route_owners(s), registry::list_instances(s, std::nullopt), local_,
                       declared_, registry::current_index(s));
  std::lock_guard lk(table_mu_);
  table_ = std::move(t);
  table_version_.fetch_add(1, std::memory_order_release);
}

void Gateway::rebuild_sync() {
  db_.read_sync([this](db::Session& s) { install_table(s); });
}

net::awaitable<void> Gateway::follow() {
  const auto ex = co_await net::this_coro::executor;
  net::steady_timer spacing(ex);
  for (;;) {
    // Woken as soon as the registry index passes the table's, or after a second regardless (an instance whose
    // TTL lapses moves no index). Rebuilds are at least 20 ms apart, so a burst of changes costs a few.
    // Named first: no temporaries inside the co_await (see README, "Developing").
    const int64_t seen = table()->index;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    co_await index_.wait_past(seen, deadline);
    try {
      co_await db_.read([this](db::Session& s) { install_table(s); });
    } catch (const std::exception& e) {
      log::warn("gateway route table refresh failed", {{"error", e.what()}});
    }
    spacing.expires_after(std::chrono::milliseconds(20));
    co_await spacing.async_wait(net::use_awaitable);
  }
}

std::shared_ptr<const RouteTable> Gateway::table() const {
  ThreadState& st = thread_state();
  const uint64_t v = table_version_.load(std::memory_order_acquire);
  if (st.owner != this || st.version != v) {
    std::lock_guard lk(table_mu_);
    st.table = table_;
    st.version = v;
    st.owner = this;
  }
  return st.table;
}

net::awaitable<Response> Gateway::handle(Request& req) {
  Table t = table();
  const Target* target = t->find(req.path);
  if (!target) throw Error::not_found("no module serves this path");

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
  const billing::Plan* plan = meter_.plans().find(view.plan);
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

bool Gateway::admit(const auth::Principal* who, const AccountView* account, const Target& target,
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

void Meter::add(const std::string& user_id, const std::string& module) {
  std::lock_guard lk(mu_);
  const std::pair<std::string_view, std::string_view> key(user_id, module);
  if (auto it = counts_.find(key); it != counts_.end())
    ++it->second;
  else
    counts_.emplace(std::pair<std::string, std::string>(user_id, module), 1);
  ++per_user_[user_id];
}

int64_t Meter::pending(const std::string& user_id) {
  std::lock_guard lk(mu_);
  int64_t n = 0;
  if (auto it = per_user_.find(user_id); it != per_user_.end()) n += it->second;
  if (auto it = in_flight_.find(user_id); it != in_flight_.end()) n += it->second;
  return n;
}

Meter::Batch Meter::take() {
  std::lock_guard lk(mu_);
  if (unwritten_) {
    Batch batch = std::move(*unwritten_);
    unwritten_.reset();
    return batch;
  }
  Batch batch{Counts(counts_.begin(), counts_.end()), std::string()};
  if (!batch.counts.empty()) batch.prefix = "gateway:" + uuid_v7();
  counts_.clear();
  for (const auto& [user, n] : per_user_) in_flight_[user] += n;
  per_user_.clear();
  return batch;
}

void Meter::settle(const Batch& batch, bool written) {
  std::lock_guard lk(mu_);
  if (!written) {
    if (!batch.counts.empty()) unwritten_ = batch;  // still in flight, so still pending
    return;
  }
  for (const auto& [key, n] : batch.counts)
    if (auto it = in_flight_.find(key.first); it != in_flight_.end() && (it->second -= n) <= 0)
      in_flight_.erase(it);
}

void Meter::write(db::Session& s, const Counts& counts, const std::string& prefix) const {
  std::vector<billing::UsageIncrement> usage;
  std::map<std::string, int64_t> per_user;
  for (const auto& [key, n] : counts) {
    usage.push_back({key.first, key.second, "requests", n});
    per_user[key.first] += n;
  }
  billing::record_usage_batch(s, usage, prefix);
  for (const auto& [user, n] : per_user) {
    auto account = s.query("SELECT id, plan FROM billing_accounts WHERE user_id = $1", {user});
    if (account.empty()) continue;
    const billing::Plan* plan = plans_.find(account.rows[0].text(1));
    if (!plan || plan->request_price <= 0) continue;
    // Charged however large the count or price: the product saturates and the balance stops at its limit.
    int64_t charge = 0;
    if (__builtin_mul_overflow(n, plan->request_price, &charge)) charge = billing::kMaxTotal;
    billing::post_entry(s, account.rows[0].text(0), -std::min(charge, billing::kMaxTotal), "usage",
                        std::to_string(n) + " requests", prefix + ":charge:" + user, "",
                        billing::AtLimit::Clamp);
  }
}

void Meter::flush_sync(db::Database& db, const std::function<void()>& committed) {
  for (int round = 0; round < 2; ++round) {  // a batch a failed write left, then the counts since
    const Batch batch = take();
    if (batch.counts.empty()) return;
    bool written = false;
    try {
      write_sync(db, batch);
      written = true;
      committed();
    } catch (const std::exception& e) {
      log::warn("usage metering flush failed", {{"error", e.what()}});
    }
    settle(batch, written);
    if (!written) return;
  }
}

void Meter::write_sync(db::Database& db, const Batch& batch) {
  db.write_sync([&](db::Session& s) { write(s, batch.counts, batch.prefix); });
}

net::awaitable<void> Meter::write(db::Database& db, const Batch& batch) {
  co_await db.write([&](db::Session& s) { write(s, batch.counts, batch.prefix); });
}

void Gateway::forget_accounts() {
  // Balances just changed (debits): the next quota check reads them again.
  std::lock_guard lk(quota_mu_);
  accounts_.clear();
  accounts_epoch_.fetch_add(1, std::memory_order_release);
}

std::optional<AccountView> Gateway::cached_account(const std::string& user_id) {
  const auto now = coarse_steady_now();
  // Read before the shared map, so a view kept with it is never older than a change of the map it missed.
  const uint64_t epoch = accounts_epoch_.load(std::memory_order_acquire);
  AccountFront& front = thread_slot<AccountFront>(user_id);
  if (front.holds(instance_, epoch, user_id) && now - front.value.fetched < std::chrono::seconds(1))
    return front.value;
  std::optional<AccountView> view;
  {
    std::lock_guard lk(quota_mu_);
    auto it = accounts_.find(user_id);
    if (it == accounts_.end() || now - it->second.view.fetched >= std::chrono::seconds(1))
      return std::nullopt;
    it->second.used = now;
    view = it->second.view;
  }
  front.set(instance_, epoch, user_id, *view);
  return view;
}

namespace {
// One account's view from a row of (user_id, plan, balance).
AccountView account_view(const db::Row& row, std::chrono::steady_clock::time_point now) {
  return AccountView{row.text(1), row.int64(2), now, 0};
}
}  // namespace

net::awaitable<AccountView> Gateway::load_account(const std::string& user_id) {
  for (int attempt = 0;; ++attempt) {
    const uint64_t epoch = accounts_epoch_.load(std::memory_order_acquire);
    auto rows = co_await db_.read([&](db::Session& s) {
      return s.query("SELECT user_id, plan, balance FROM billing_accounts WHERE user_id = $1", {user_id});
    });
    // The balance read here has every committed charge; requests not yet flushed are added by the check.
    const auto now = coarse_steady_now();
    AccountView view = rows.empty() ? AccountView{std::string(), 0, now, 0} : account_view(rows.rows[0], now);
    std::lock_guard lk(quota_mu_);
    const uint64_t current = accounts_epoch_.load(std::memory_order_acquire);
    if (current != epoch) {
      // Balances were installed (and charges settled) during the read, which may predate them: a view the
      // refresh installed is the one to keep; with none, read again.
      if (auto it = accounts_.find(user_id); it != accounts_.end()) {
        it->second.used = now;
        AccountView kept = it->second.view;
        kept.epoch = current;
        co_return kept;
      }
      if (attempt < 3) continue;
    }
    if (accounts_.size() > 100000) accounts_.clear();
    accounts_[user_id] = CachedAccount{view, now};
    view.epoch = current;
    co_return view;
  }
}

std::optional<AccountView> Gateway::stale_account(const std::string& user_id) {
  const auto now = coarse_steady_now();
  std::lock_guard lk(quota_mu_);
  auto it = accounts_.find(user_id);
  if (it == accounts_.end() || now - it->second.view.fetched > settings_.account_stale) return std::nullopt;
  it->second.used = now;
  AccountView view = it->second.view;
  view.epoch = accounts_epoch_.load(std::memory_order_acquire);
  return view;
}

net::awaitable<void> Gateway::refresh_accounts(const Meter::Batch& batch, bool written) {
  // A view unused this long is dropped; its user's next request reads it again.
  constexpr auto kIdle = std::chrono::seconds(10);
  constexpr size_t kChunk = 100;  // users per query
  const auto now = coarse_steady_now();
  // Unwritten counts go back to be flushed again (they stay pending all along). Written ones stay pending
  // until balances that include them are installed: if this read fails, until a later one succeeds.
  if (written)
    unsettled_.insert(unsettled_.end(), batch.counts.begin(), batch.counts.end());
  else
    meter_.settle(batch, false);
  std::vector<std::string> users;
  std::unordered_set<std::string> charged;
  for (const auto& [key, n] : unsettled_) charged.insert(key.first);
  {
    std::lock_guard lk(quota_mu_);
    for (auto it = accounts_.begin(); it != accounts_.end();) {
      if (now - it->second.used > kIdle && !charged.contains(it->first)) {
        it = accounts_.erase(it);
      } else {
        users.push_back(it->first);
        ++it;
      }
    }
    // Charged users whose views are gone (dropped for room, or never kept) are read too.
    for (const std::string& user : charged)
      if (!accounts_.contains(user)) users.push_back(user);
  }
  if (users.empty()) co_return;
  std::vector<std::pair<std::string, AccountView>> fresh;
  try {
    fresh = co_await db_.read([&](db::Session& s) {
      std::vector<std::pair<std::string, AccountView>> out;
      for (size_t from = 0; from < users.size(); from += kChunk) {
        const size_t to = std::min(users.size(), from + kChunk);
        std::string sql = "SELECT user_id, plan, balance FROM billing_accounts WHERE user_id IN (";
        std::vector<db::Value> params;
        for (size_t i = from; i < to; ++i) {
          sql += i == from ? "$" : ", $";
          sql += std::to_string(i - from + 1);
          params.emplace_back(users[i]);
        }
        sql += ")";
        const auto rows = s.query(sql, params);
        for (const auto& row : rows.rows) out.emplace_back(row.text(0), account_view(row, now));
      }
      return out;
    });
  } catch (const std::exception& e) {
    log::warn("reading account balances failed", {{"error", e.what()}});
    co_return;  // the views keep their older balances, and the charges since stay pending
  }
  std::unordered_map<std::string, AccountView> by_user(std::make_move_iterator(fresh.begin()),
                                                       std::make_move_iterator(fresh.end()));
  std::lock_guard lk(quota_mu_);
  for (const std::string& user : users) {
    auto row = by_user.find(user);
    // A user without an account row has none, as load_account() says.
    AccountView view = row != by_user.end() ? std::move(row->second) : AccountView{std::string(), 0, now, 0};
    // A charged user's view goes in with the settling, whatever became of it meanwhile.
    if (auto it = accounts_.find(user); it != accounts_.end())
      it->second.view = std::move(view);
    else if (charged.contains(user))
      accounts_[user] = CachedAccount{std::move(view), now};
  }
  // The threads' front copies go before the counts stop being pending.
  accounts_epoch_.fetch_add(1, std::memory_order_release);
  meter_.settle(Meter::Batch{std::move(unsettled_), std::string()}, true);
  unsettled_.clear();
}

void Gateway::charge(const std::string& user_id, const AccountView& view, const std::string& module) {
  const billing::Plan* plan = meter_.plans().find(view.plan);
  if (!plan || plan->request_price <= 0) {
    meter_.add(user_id, module);
    return;
  }
  // Checked and counted under the lock that refresh_accounts() installs balances and settles charges in, so
  // a charge counts once (pending in the meter, or in the balance) and two requests cannot both take the
  // last credits. A view taken before an install gives way to the map's.
  std::lock_guard lk(quota_mu_);
  int64_t balance = view.balance;
  if (accounts_epoch_.load(std::memory_order_acquire) != view.epoch)
    if (auto it = accounts_.find(user_id); it != accounts_.end()) balance = it->second.view.balance;
  if (balance - (meter_.pending(user_id) + 1) * plan->request_price < 0)
    throw Error(402, "Payment Required",
                "this request costs " + std::to_string(plan->request_price) +
                    " credits and the account's balance does not cover it");
  meter_.add(user_id, module);
}

net::awaitable<void> Gateway::meter_loop() {
  // Views are read again every half second, so one is under a second old when a request checks it (an older
  // one is read on the request's path); the meter is flushed every second, just before a read.
  constexpr auto kPeriod = std::chrono::milliseconds(500);
  const auto ex = co_await net::this_coro::executor;
  net::steady_timer timer(ex);
  auto next = std::chrono::steady_clock::now();
  for (bool flush = false;; flush = !flush) {
    next += kPeriod;
    timer.expires_at(next);
    co_await timer.async_wait(net::use_awaitable);
    const Meter::Batch batch = flush ? meter_.take() : Meter::Batch();
    bool written = false;
    if (!batch.counts.empty()) {
      try {
        co_await meter_.write(db_, batch);
        written = true;
      } catch (const std::exception& e) {
        log::warn("usage metering flush failed", {{"error", e.what()}});
      }
    }
    co_await refresh_accounts(batch, written);
    // After a stall (a slow database), the next round starts now rather than catching up.
    if (next < std::chrono::steady_clock::now()) next = std::chrono::steady_clock::now();
  }
}

net::awaitable<Response> Gateway::proxy(Request& req, [[maybe_unused]] Table table, const Target* target_ptr,
                                        Caller who) {
  const Target& target = *target_ptr;
  if (target.instances.empty()) {
    Error e = Error::unavailable("module " + target.module + " has no passing instance", 1);
    throw e;
  }
  std::string& fields = req.scratch;
  fields.clear();
  std::string_view forwarded_for;
  req.for_each_header([&](std::string_view k, std::string_view v) {
    if (hop_by_hop(k) || iequals(k, "host") || is_identity_header(k) || iequals(k, "x-request-id") ||
        iequals(k, "traceparent") || iequals(k, "x-forwarded-proto") || iequals(k, "forwarded") ||
        iequals(k, "x-real-ip"))
      return;
    // A third-party module gets the caller's identity in X-Keel-* headers, never the bearer token it could
    // replay against keel (not even on its public routes, where a client may send one anyway); keel's own
    // modules check the token themselves.
    if (!target.keel && iequals(k, "authorization")) return;
    if (iequals(k, "x-forwarded-for")) {
      forwarded_for = v;
      return;
    }
    http::append_field_unchecked(fields, k, v);  // as the server's parser gave it
  });
  // Values keel made (the peer's address, a sanitized or new request id, a checked or new traceparent) go
  // unchecked; the client's X-Forwarded-For came through the parser.
  if (forwarded_for.empty()) {
    http::append_field_unchecked(fields, "X-Forwarded-For", req.remote_ip);
  } else {
    std::string chain(forwarded_for);
    chain += ", ";
    chain += req.remote_ip;
    http::append_field_unchecked(fields, "X-Forwarded-For", chain);
  }
  http::append_field_unchecked(fields, "X-Forwarded-Proto", "http");
  http::append_field_unchecked(fields, "X-Request-Id", req.request_id);
  http::append_field_unchecked(fields, "traceparent", req.trace.traceparent());
  if (who) {
    http::append_field(fields, "X-Keel-User-Id", who->subject);
    http::append_field(fields, "X-Keel-Roles", who->roles_joined);
  }
  http::ClientRequest up;
  up.method = req.method_str;
  up.target = req.target;
  up.fields = fields;
  up.body = req.body;
  http::ClientOptions opt;
  opt.connect_timeout = settings_.connect_timeout;
  opt.timeout = settings_.upstream_timeout;
  opt.policy = &policy_;
  opt.keel_target = target.keel;
  // A body of unknown length or over 64 KiB is passed on as it arrives: the gateway holds one piece of it per
  // connection, however large it is or however slowly its client reads, and an event stream flows.
  opt.stream_above = 64 << 10;

  ThreadState& st = thread_state();
  const size_t n = target.instances.size();
  const size_t start = st.round_robin++;
  std::string last_error;
  bool timed_out = false;
  int attempts = 0;
  for (size_t k = 0; k < n && attempts < 2; ++k) {
    const size_t i = (start + k) % n;
    const http::Endpoint& ep = target.instances[i];
    // An ejected instance is skipped while others remain; with none left, it is tried all the same.
    if (k + 1 < n && ejected_count_.load(std::memory_order_relaxed) != 0 && is_ejected(ep.key)) continue;
    ++attempts;
    try {
      http::ClientResponse res = co_await http::fetch(ep, up, opt);
      // The upstream's Content-Type travels with its other fields.
      Response out{res.status, std::string(), std::move(res.body),  {}, std::move(res.fields),
                   {},         false,         std::move(res.stream)};
      if (req.method == Method::Head) {
        out.proxied_head = true;
        out.head_length = res.content_length;
      }
      co_return out;
    } catch (const http::ClientError& e) {
      last_error = e.what();
      timed_out = e.timed_out();
      // Refused, unreachable or reset mid-request: the instance is likely gone. Slow is not gone.
      if (!e.delivered() || !e.timed_out()) eject(target, i);
      // Send it elsewhere only when that cannot do a write twice.
      if (e.delivered() && !idempotent(req.method)) break;
    }
  }
  log::warn("upstream failed",
            {{"module", target.module}, {"request_id", req.request_id}, {"error", last_error}});
  if (timed_out) throw Error(504, "Gateway Timeout", "module " + target.module + " did not answer in time");
  throw Error(502, "Bad Gateway", "module " + target.module + " is unreachable");
}

}  // namespace keel::gateway

namespace keel::gateway {

bool Gateway::is_ejected(const std::string& key) const {
  std::lock_guard lk(eject_mu_);
  return ejected_.contains(key);
}

void Gateway::eject(const Target& target, size_t i) {
  const http::Endpoint& ep = target.instances[i];
  {
    std::lock_guard lk(eject_mu_);
    if (!ejected_.insert(ep.key).second) return;
    ejected_count_.store(ejected_.size(), std::memory_order_relaxed);
  }
  log::warn("instance ejected until its health check passes", {{"module", target.module}, {"url", ep.key}});
  net::co_spawn(io_, probe_ejected(ep.key, ep, target.health_paths.at(i), target.keel), net::detached);
}

net::awaitable<void> Gateway::probe_ejected(std::string key, http::Endpoint ep, std::string health_path,
                                            bool keel) {
  const auto ex = co_await net::this_coro::executor;
  net::steady_timer timer(ex);
  std::string fields;
  http::append_field(fields, "User-Agent", "keel-gateway");
  http::ClientRequest req;
  req.target = health_path;
  req.fields = fields;
  http::ClientOptions opt;
  opt.connect_timeout = std::min(settings_.connect_timeout, std::chrono::milliseconds(1000));
  opt.timeout = std::chrono::milliseconds(2000);
  opt.body_limit = 1 << 20;
  opt.policy = &policy_;
  opt.keel_target = keel;  // judged as its requests are: a probe must not pool what they may not use
  for (;;) {
    timer.expires_after(settings_.probe_interval);
    co_await timer.async_wait(net::use_awaitable);
    // An instance the registry has since removed from the table needs no probe.
    bool routed = false;
    for (const auto& t : table()->targets)
      for (const auto& e : t.instances) routed = routed || e.key == key;
    bool healthy = false;
    if (routed) {
      try {
        const http::ClientResponse res = co_await http::fetch(ep, req, opt);
        healthy = res.status < 500;
      } catch (const http::ClientError&) {
      }
    }
    if (!routed || healthy) break;
  }
  {
    std::lock_guard lk(eject_mu_);
    ejected_.erase(key);
    ejected_count_.store(ejected_.size(), std::memory_order_relaxed);
  }
  log::info("ejected instance back in rotation", {{"url", key}});
}

}  // namespace keel::gateway
