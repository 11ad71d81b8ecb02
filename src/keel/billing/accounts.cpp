#include "keel/billing/accounts.hpp"

#include "keel/core/error.hpp"
#include "keel/core/ids.hpp"
#include "keel/core/time.hpp"
#include "keel/events/outbox.hpp"

namespace keel::billing {

std::string create_account(db::Session& s, const std::string& user_id, const std::string& traceparent) {
  const std::string id = uuid_v7();
  const std::string now = now_rfc3339();
  s.query(
      "INSERT INTO billing_accounts (id, user_id, plan, status, balance, currency, created_at, updated_at) "
      "VALUES ($1, $2, 'free', 'active', 0, 'credits', $3, $3)",
      {id, user_id, now});
  events::append(
      s, {"keel.billing.account.created", "/keel/billing", user_id,
          boost::json::object{{"account_id", id}, {"plan", "free"}, {"currency", "credits"}}, traceparent});
  return id;
}

}  // namespace keel::billing

namespace keel::billing {

bool post_entry(db::Session& s, const std::string& account_id, int64_t amount, const std::string& kind,
                const std::optional<std::string>& description, const std::string& idempotency_key,
                const std::string& traceparent) {
  if (!s.query("SELECT 1 FROM ledger_entries WHERE account_id = $1 AND idempotency_key = $2",
               {account_id, idempotency_key})
           .empty())
    return false;
  const char* lock = s.dialect() == db::Dialect::Postgres
                         ? "SELECT balance, user_id FROM billing_accounts WHERE id = $1 FOR UPDATE"
                         : "SELECT balance, user_id FROM billing_accounts WHERE id = $1";
  auto account = s.query(lock, {account_id});
  if (account.empty()) throw Error::not_found("no such billing account");
  const int64_t balance = account.rows[0].int64(0) + amount;
  const std::string now = now_rfc3339();
  const std::string id = uuid_v7();
  s.query("UPDATE billing_accounts SET balance = $2, updated_at = $3 WHERE id = $1",
          {account_id, balance, now});
  s.query(
      "INSERT INTO ledger_entries (id, account_id, amount, kind, description, idempotency_key, "
      "balance_after, "
      "created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
      {id, account_id, amount, kind, description ? db::Value(*description) : db::Value(nullptr),
       idempotency_key, balance, now});
  events::append(s, {"keel.billing.ledger.posted", "/keel/billing", account.rows[0].text(1),
                     boost::json::object{{"account_id", account_id},
                                         {"entry_id", id},
                                         {"amount", amount},
                                         {"balance_after", balance},
                                         {"kind", kind}},
                     traceparent});
  return true;
}

void record_usage_batch(db::Session& s, const std::vector<UsageIncrement>& batch,
                        const std::string& key_prefix) {
  const std::string now = now_rfc3339();
  for (size_t i = 0; i < batch.size(); ++i) {
    const auto& u = batch[i];
    const std::string key = key_prefix + ":" + std::to_string(i);
    if (!s.query("SELECT 1 FROM usage_records WHERE idempotency_key = $1", {key}).empty()) continue;
    auto account = s.query("SELECT id FROM billing_accounts WHERE user_id = $1", {u.user_id});
    if (account.empty()) continue;
    s.query(
        "INSERT INTO usage_records (id, account_id, user_id, module, metric, quantity, idempotency_key, "
        "created_at, "
        "updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        {uuid_v7(), account.rows[0].text(0), u.user_id, u.module, u.metric, u.quantity, key, now});
  }
}

}  // namespace keel::billing
