
#include <algorithm>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <optional>
#include <unordered_set>

#include "keel/core/error.hpp"
#include "keel/core/ids.hpp"
#include "keel/core/log.hpp"
#include "keel/core/thread_slots.hpp"
#include "keel/core/time.hpp"
#include "keel/db/database.hpp"
#include "keel/gateway/gateway.hpp"
#include "keel/module/caller.hpp"
#include "keel/module/registry_view.hpp"

namespace keel::gateway {

namespace net = boost::asio;
using http::iequals;
using http::Method;
using http::Request;
using http::Response;

namespace {
// A thread's recent account views (thread_slot picks by the user id's random tail).
using AccountFront = FrontEntry<AccountView>;
}  // namespace

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

net::awaitable<AccountView> Gateway::load_account(const std::string& user_id) {
  for (int attempt = 0;; ++attempt) {
    const uint64_t epoch = accounts_epoch_.load(std::memory_order_acquire);
    const auto standing = co_await db_.read(
        [&](db::Session& s) { return meter_.accounts().standings(s, std::vector<std::string>{user_id}); });
    // The balance read here has every committed charge; requests not yet flushed are added by the check.
    const auto now = coarse_steady_now();
    AccountView view = standing.empty() ? AccountView{std::string(), 0, now, 0}
                                        : AccountView{standing[0].plan, standing[0].balance, now, 0};
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
  std::vector<module::Standing> fresh;
  try {
    fresh = co_await db_.read([&](db::Session& s) { return meter_.accounts().standings(s, users); });
  } catch (const std::exception& e) {
    log::warn("reading account balances failed", {{"error", e.what()}});
    co_return;  // the views keep their older balances, and the charges since stay pending
  }
  std::unordered_map<std::string, AccountView> by_user;
  for (auto& st : fresh)
    by_user.emplace(std::move(st.user_id), AccountView{std::move(st.plan), st.balance, now, 0});
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
  const module::Plan* plan = meter_.accounts().plan(view.plan);
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

}  // namespace keel::gateway
