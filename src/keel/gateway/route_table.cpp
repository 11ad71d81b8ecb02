#include <algorithm>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <set>

#include "keel/core/error.hpp"
#include "keel/core/ids.hpp"
#include "keel/core/log.hpp"
#include "keel/core/thread_slots.hpp"
#include "keel/core/time.hpp"
#include "keel/db/database.hpp"
#include "keel/gateway/gateway.hpp"
#include "keel/gateway/thread_state.hpp"
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

const Target* RouteTable::find(std::string_view path) const {
  for (const auto& [prefix, t] : prefixes)
    if (module::path_under(path, prefix)) return &targets[t];
  return nullptr;
}

bool Target::is_public(http::Method method, std::string_view path) const {
  if (access && access->is_public(method, path)) return true;
  // Registered by instances elsewhere: this method exactly (another one is the upstream's to judge, with a
  // token). A module in this process answers for itself (`access` is its router).
  return !local && registered_public && registered_public->is_public(method, path, false);
}

namespace {
std::shared_ptr<RouteTable> build_table(
    const module::RegistrySnapshot& registry, const std::vector<ModuleSpec>& modules,
    const std::vector<std::pair<std::string, std::shared_ptr<http::Router>>>& local,
    const Declarations& declared) {
  auto t = std::make_shared<RouteTable>();
  t->index = registry.index;
  std::map<std::string, size_t> by_module;
  auto target_of = [&](const std::string& module) -> size_t {
    auto [it, fresh] = by_module.try_emplace(module, t->targets.size());
    if (fresh) {
      Target target;
      target.module = module;
      target.keel = module::named(modules, module) != nullptr;
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
  for (const auto& m : modules) {
    if (m.name == "gateway") continue;
    for (const auto& r : m.routes)
      if (seen.insert(r).second) t->prefixes.emplace_back(r, target_of(std::string(m.name)));
  }
  // The gateway's own routes are its router's exact routes; as a target it would route to itself.
  for (const auto& [prefix, owner] : registry.owners)
    if (owner != "gateway" && seen.insert(prefix).second) t->prefixes.emplace_back(prefix, target_of(owner));
  std::map<size_t, std::set<std::string>> registered_public;  // target -> "METHOD /pattern"
  for (const auto& i : registry.live) {
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
  auto t = build_table(registry_.snapshot(s), modules_, local_, declared_);
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
    co_await registry_.wait_past(seen, deadline);
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

}  // namespace keel::gateway
