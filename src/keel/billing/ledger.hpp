#pragma once
// Billing's accounts, ledger and usage, and the module layer's Accounts interface over them (Ledger): what
// other modules reach of billing (auth's "user created" hook opens the account; the gateway reads standings
// and meters requests), bound by app/wiring.cpp.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "keel/billing/plans.hpp"
#include "keel/db/database.hpp"
#include "keel/module/accounts.hpp"
#include "keel/module/hooks.hpp"
#include "keel/module/outbox.hpp"

namespace keel::billing {

// Creates the user's account on the default plan, with its keel.billing.account.created event; returns the
// account id.
std::string create_account(db::Session& s, const module::Outbox& outbox, const std::string& user_id,
                           const std::string& traceparent);

// Balances and usage totals stay within ±(2^53 - 1): the integers JSON (and JavaScript) carry exactly, far
// from int64's end, so no sum of them overflows.
constexpr int64_t kMaxTotal = (int64_t{1} << 53) - 1;

// SQL for the sum of `column` over a group, capped at kMaxTotal: it never fails, whatever is stored (usage
// stored before totals were checked may sum past int64 on SQLite). Exact below the cap (SQLite's TOTAL adds
// integers exactly up to 2^53).
std::string capped_sum(db::Dialect dialect, const std::string& column);

// What post_entry does with an entry that would take the balance past ±kMaxTotal: refuse it (422, for
// amounts a caller chose) or shorten it to reach the limit exactly (the meter's charges, which must not
// fail).
enum class AtLimit { Refuse, Clamp };

// Posts a ledger entry (credit > 0, debit < 0) and moves the balance, under a row lock on PostgreSQL so
// balance_after is exact; writes keel.billing.ledger.posted. Returns false, changing nothing, when the
// account already has an entry with this idempotency key.
bool post_entry(db::Session& s, const module::Outbox& outbox, const std::string& account_id, int64_t amount,
                const std::string& kind, const std::optional<std::string>& description,
                const std::string& idempotency_key, const std::string& traceparent,
                AtLimit at_limit = AtLimit::Refuse);

// Adds `quantity` (> 0) to the account's running total of module/metric, or refuses (422, nothing changed)
// a quantity that would take it past kMaxTotal. Services' posts are counted so; the gateway's own request
// counts (record_usage_batch) are not, and every sum read is capped besides (capped_sum).
void add_to_usage_total(db::Session& s, const std::string& account_id, const std::string& module,
                        const std::string& metric, int64_t quantity);

struct UsageIncrement {
  std::string user_id;
  std::string module;
  std::string metric;
  int64_t quantity = 0;
};

// Records a batch of usage; each row's idempotency key is `key_prefix` + its position, so a batch written
// twice (a retried flush) counts once. Users without an account are skipped.
void record_usage_batch(db::Session& s, const std::vector<UsageIncrement>& batch,
                        const std::string& key_prefix);

class Ledger final : public module::Accounts {
 public:
  Ledger(Plans plans, const module::Outbox& outbox) : plans_(std::move(plans)), outbox_(outbox) {}
  std::vector<module::Standing> standings(db::Session& s,
                                          const std::vector<std::string>& user_ids) const override;
  const module::Plan* plan(const std::string& name) const override { return plans_.find(name); }
  // Usage first, then each user's debit under "<key_prefix>:charge:<user>", clamped at the balance's limit
  // (a metered request has been served: its charge must not fail).
  void charge_requests(db::Session& s, const std::vector<module::RequestCount>& counts,
                       const std::string& key_prefix) const override;
  // The "user created" hook (module/hooks.hpp): the user's account, in the registration's transaction.
  void open_account(db::Session& s, const module::UserCreated& user) const;

 private:
  Plans plans_;
  const module::Outbox& outbox_;
};

}  // namespace keel::billing
