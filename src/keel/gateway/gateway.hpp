#pragma once
// The gateway: one entry point that routes every request by path prefix to the module that owns it (a module
// in this process is called directly; one elsewhere is proxied to a passing instance from the registry),
// checks tokens at the edge, and limits request rates per user and per client address.
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "keel/gateway/budgets.hpp"
#include "keel/http/client.hpp"
#include "keel/http/request.hpp"
#include "keel/module/accounts.hpp"

namespace boost::asio {
class io_context;
}

namespace keel {
struct Config;
struct ModuleContext;
struct ModuleSpec;
namespace http {
class Router;
}
namespace module {
struct Principal;
class Authenticator;
class RegistryView;
}  // namespace module
namespace db {
class Database;
class Session;
}  // namespace db
}  // namespace keel

namespace keel::gateway {

struct GatewaySettings {
  bool edge_auth = true;
  double user_rate = 200, user_burst = 400;  // requests per second; 0 turns the limit off
  double ip_rate = 500, ip_burst = 1000;
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds upstream_timeout{30000};
  std::chrono::milliseconds probe_interval{250};  // how often an ejected instance is probed
  // On PostgreSQL, rate limits and quotas hold across every gateway on the database (budgets.hpp); false
  // keeps them per process. On SQLite (one process) they are always counted in memory, exactly.
  bool cluster_limits = true;
  std::chrono::milliseconds lease_period{50};  // how often leases are topped up and given back
  // How long a request waits for a lease before local limits apply.
  std::chrono::milliseconds lease_wait{250};
  // A user's plan and balance are read again in the background every half second; a request finding its
  // view older than a second reads it itself. When that read fails (the database is unreachable), a view up
  // to this old is used instead; 0 answers 503 at once. A user with no view at all gets 503 either way.
  std::chrono::milliseconds account_stale{60000};
  static GatewaySettings from(const Config& config);
};

// Token buckets keyed by user or address.
class RateLimiter {
 public:
  // Refilled buckets are forgotten every `sweep_every`.
  RateLimiter(double rate, double burst, std::chrono::milliseconds sweep_every = std::chrono::seconds(10))
      : rate_(rate), burst_(burst), sweep_every_(sweep_every) {}
  // 0 when allowed, else seconds until a token is available. `share` scales the rate and the burst: a
  // gateway that cannot reach the fleet's shared budgets keeps its share of them (1 / gateways).
  int take(const std::string& key, double share = 1);
  // Keys with a bucket (a refilled one may linger until the next sweep).
  size_t tracked();

 private:
  struct Bucket {
    double tokens;
    std::chrono::steady_clock::time_point at;
  };
  double rate_, burst_;
  std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;
  std::chrono::steady_clock::duration sweep_every_;
  std::chrono::steady_clock::time_point swept_{};
};

struct Target {
  std::string module;
  bool keel = false;                    // one of keel's own modules
  std::shared_ptr<http::Router> local;  // set when the module runs in this process
  // Who may call the module's routes: its router here, else what keel's module declares (null for a third
  // party's module: every path of it needs a token at the edge).
  std::shared_ptr<const http::Router> access;
  // The public routes its instances registered ("POST /v1/hooks/incoming"): a third party's, or those of a
  // keel module in another process (a newer keel may have more than this one declares). Null when none.
  std::shared_ptr<const http::Router> registered_public;
  bool is_public(http::Method method, std::string_view path) const;
  std::vector<http::Endpoint> instances;
  std::vector<std::string> health_paths;  // instances[i]'s, for the gateway's own probe when it is ejected
};

struct RouteTable {
  std::vector<std::pair<std::string, size_t>> prefixes;  // longest first
  std::vector<Target> targets;
  int64_t index = -1;
  size_t gateways = 1;         // passing gateway instances in the registry (this one included)
  std::string modules_health;  // {"auth":"ok",...} for /health
  const Target* find(std::string_view path) const;
};

// Counts authenticated requests per user and module and writes them to billing once a second and at
// shutdown: usage (metric "requests") and, for plans with a request price, the ledger debit. One transaction
// per flush, with keys unique to the flush, so each request is counted and charged once.
class Meter {
 public:
  using Counts = std::vector<std::pair<std::pair<std::string, std::string>, int64_t>>;
  explicit Meter(const module::Accounts& accounts) : accounts_(accounts) {}
  void add(const std::string& user_id, const std::string& module);
  // Counted and not yet committed (including a flush being written), for the 402 check.
  int64_t pending(const std::string& user_id);
  // What one flush writes: counts under keys unique to the batch, so writing it twice charges once.
  struct Batch {
    Counts counts;
    std::string prefix;
  };
  // A flush in three steps; the counts stay pending throughout. take() the next batch: the one a failed
  // write left, as it was (its commit may have gone through unseen, and its keys keep a second write from
  // counting or charging again), else the counts since, under new keys. write() it in one transaction
  // (throws on failure). settle() it: written counts stop being pending, an unwritten batch waits for the
  // next take().
  Batch take();
  boost::asio::awaitable<void> write(db::Database& db, const Batch& batch);
  void write_sync(db::Database& db, const Batch& batch);
  void settle(const Batch& batch, bool written);
  // The three steps at shutdown, for a batch left by a failed write and then the counts since; `committed`
  // runs after each successful write, before its counts are settled.
  void flush_sync(db::Database& db, const std::function<void()>& committed);
  const module::Accounts& accounts() const { return accounts_; }

 private:
  void write(db::Session& s, const Counts& counts, const std::string& key_prefix) const;
  const module::Accounts& accounts_;  // billing's
  std::mutex mu_;
  // (user, module) pairs, looked up without building a key's strings on every request.
  struct PairLess {
    using is_transparent = void;
    template <class A, class B>
    bool operator()(const A& a, const B& b) const {
      const std::string_view a1 = a.first, b1 = b.first;
      return a1 != b1 ? a1 < b1 : std::string_view(a.second) < std::string_view(b.second);
    }
  };
  std::map<std::pair<std::string, std::string>, int64_t, PairLess> counts_;
  std::unordered_map<std::string, int64_t> per_user_;
  std::unordered_map<std::string, int64_t> in_flight_;  // per user, taken by a flush not yet committed
  std::optional<Batch> unwritten_;                      // left by a failed write, for the next take()
};

// A user's plan and balance as the gateway checks quotas against them, read at most a second ago.
struct AccountView {
  std::string plan;
  int64_t balance = 0;
  std::chrono::steady_clock::time_point fetched;
  uint64_t epoch =
      0;  // the accounts epoch it was taken under (the 402 check sees whether balances moved since)
};

class Gateway {
 public:
  Gateway(ModuleContext& ctx, GatewaySettings settings);
  // Rebuilds the route table whenever the registry index moves (and once a second regardless, so TTL
  // expiry of instances is seen).
  boost::asio::awaitable<void> follow();
  void rebuild_sync();
  // Not a coroutine: the checks run at once and the request goes on as the module's own awaitable (a local
  // router's handler or the proxy), so the hot path allocates no frame of its own. Errors are thrown.
  boost::asio::awaitable<http::Response> handle(http::Request& req);
  std::shared_ptr<const RouteTable> table() const;
  Meter& meter() { return meter_; }
  // The user's plan and balance: from the cache when fresh (no suspension on the hot path), else read.
  std::optional<AccountView> cached_account(const std::string& user_id);
  boost::asio::awaitable<AccountView> load_account(const std::string& user_id);
  // The user's last view however old, if it is within account_stale (for when load_account cannot read).
  std::optional<AccountView> stale_account(const std::string& user_id);
  // 402 when a priced request would overdraw the balance; else counts the request (to `module`) for metering.
  void charge(const std::string& user_id, const AccountView& view, const std::string& module);
  SharedBudgets* budgets() { return budgets_.get(); }
  // Until the io_context stops: every half second reads the cached account views again, and every second
  // flushes the meter first (see refresh_accounts).
  boost::asio::awaitable<void> meter_loop();
  void flush_meter_sync() {
    meter_.flush_sync(db_, [this] { forget_accounts(); });
  }
  void forget_accounts();

 private:
  using Table = std::shared_ptr<const RouteTable>;
  using Caller = std::shared_ptr<const module::Principal>;
  void install_table(db::Session& s);
  // The per-user rate limit, then the plan's quota, then the balance check and metering, for a caller checked
  // at the edge; `account` is the user's (none for a service token). Resumes from `stage` (the checks already
  // passed) and throws a refusal. False when a shared budget's lease ran out here: the caller awaits the next
  // lease round and calls again; with `last_try`, an empty lease falls back to the local limits.
  // A public route (`who` null) passes the per-address limit alone.
  bool admit(const module::Principal* who, const AccountView* account, const Target& target,
             const http::Request& req, int& stage, bool last_try);
  // One unit of a shared budget (or of the local limiter without one): Pass, Wait (lease empty), or throws
  // 429 naming `what`.
  enum class Verdict { Pass, Wait };
  Verdict take_rate(RateLimiter& local, std::string_view kind, const std::string& id, double rate,
                    double burst, const char* what, bool last_try);
  Verdict take_quota(const std::string& user_id, const AccountView& view, bool last_try);
  boost::asio::awaitable<http::Response> admit_after_lease(http::Request& req, Table table,
                                                           const Target* target, Caller who,
                                                           std::optional<AccountView> account, int stage);
  // Reads the views of the users seen lately in one query and installs them, then settles `batch` (a flush
  // just made, or none): in one critical section, so a quota check sees a charge either as pending or in
  // the balance, never in neither. Views not used for a while are dropped.
  boost::asio::awaitable<void> refresh_accounts(const Meter::Batch& batch, bool written);
  // The cache-miss path of handle(): reads the caller's account, then admits and forwards.
  boost::asio::awaitable<http::Response> handle_loading(http::Request& req, Table table, const Target* target,
                                                        Caller who);
  // `table` keeps `target` alive; `who` is the caller checked at the edge (null on public routes or with edge
  // auth off).
  boost::asio::awaitable<http::Response> forward(http::Request& req, const Table& table, const Target* target,
                                                 const Caller& who);
  boost::asio::awaitable<http::Response> proxy(http::Request& req, Table table, const Target* target,
                                               Caller who);
  // Outlier ejection: an instance this gateway failed to reach (refused, unreachable, reset mid-request) is
  // skipped at once, on every I/O thread, until a probe of its health path answers. The registry's own checks
  // and TTLs take it out of every gateway's table soon after; this covers the time until then.
  void eject(const Target& target, size_t i);
  bool is_ejected(const std::string& key) const;
  boost::asio::awaitable<void> probe_ejected(std::string key, http::Endpoint ep, std::string health_path,
                                             bool keel);
  db::Database& db_;
  boost::asio::io_context& io_;
  module::Authenticator& verifier_;
  module::RegistryView& registry_;
  const std::vector<ModuleSpec>& modules_;  // keel's
  std::vector<std::pair<std::string, std::shared_ptr<http::Router>>>& local_;
  const std::vector<std::pair<std::string, std::shared_ptr<const http::Router>>>& declared_;
  GatewaySettings settings_;
  http::AddressPolicy policy_;  // where proxied requests and probes may go (address_policy.hpp)
  RateLimiter user_limit_, ip_limit_;
  std::unique_ptr<SharedBudgets> budgets_;  // PostgreSQL with cluster_limits: the fleet's shared budgets
  mutable std::mutex table_mu_;
  std::shared_ptr<const RouteTable> table_;
  std::atomic<uint64_t> table_version_{0};
  Meter meter_;
  std::mutex quota_mu_;
  struct CachedAccount {
    AccountView view;
    std::chrono::steady_clock::time_point used;  // last read by a request (from this map)
  };
  std::unordered_map<std::string, CachedAccount> accounts_;
  // Flushed charges whose balances are not installed yet (still pending in the meter); meter_loop's alone.
  Meter::Counts unsettled_;
  // Each I/O thread also keeps its last views (cached_account): valid while this epoch, which
  // forget_accounts() and refresh_accounts() move, has not changed; the instance number tells this gateway's
  // entries apart.
  std::atomic<uint64_t> accounts_epoch_{0};
  const uint64_t instance_;
  std::unordered_map<std::string, std::pair<int64_t, int64_t>> minute_counts_;  // user -> (minute, requests)
  int64_t counts_minute_ = -1;  // the minute minute_counts_ was last swept for
  mutable std::mutex eject_mu_;
  std::unordered_set<std::string> ejected_;  // endpoint keys
  std::atomic<size_t> ejected_count_{0};     // lets the hot path skip the lock while nothing is ejected
};

}  // namespace keel::gateway
