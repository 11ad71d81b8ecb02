#pragma once
// Billing accounts: the repository other modules call when they must change together with billing (auth
// creates a user's account in the registration transaction).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "keel/db/database.hpp"

namespace keel::billing {

// Creates the user's account on the default plan, with its keel.billing.account.created event; returns the
// account id.
std::string create_account(db::Session& s, const std::string& user_id, const std::string& traceparent);

}  // namespace keel::billing

namespace keel::billing {

// Posts a ledger entry (credit > 0, debit < 0) and moves the balance, under a row lock on PostgreSQL so
// balance_after is exact; writes keel.billing.ledger.posted. Returns false, changing nothing, when the
// account already has an entry with this idempotency key.
bool post_entry(db::Session& s, const std::string& account_id, int64_t amount, const std::string& kind,
                const std::optional<std::string>& description, const std::string& idempotency_key,
                const std::string& traceparent);

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

}  // namespace keel::billing
