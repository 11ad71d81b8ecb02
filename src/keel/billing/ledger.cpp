#include "keel/billing/ledger.hpp"

#include <algorithm>
#include <map>

#include "keel/core/error.hpp"
#include "keel/core/ids.hpp"
#include "keel/core/time.hpp"
#include "keel/db/columns.hpp"
#include "keel/module/hooks.hpp"

namespace keel::billing {

std::string create_account(db::Session& s, const module::Outbox& outbox, const std::string& user_id,
                           const std::string& traceparent) {
  const std::string id = uuid_v7();
  const std::string now = now_rfc3339();
  s.query(
      "INSERT INTO billing_accounts (id, user_id, plan, status, balance, currency, created_at, updated_at) "
      "VALUES ($1, $2, 'free', 'active', 0, 'credits', $3, $3)",
      {id, user_id, now});
  outbox.append(
      s, {"keel.billing.account.created", "/keel/billing", user_id,
          boost::json::object{{"account_id", id}, {"plan", "free"}, {"currency", "credits"}}, traceparent});
  return id;
}

bool post_entry(db::Session& s, const module::Outbox& outbox, const std::string& account_id, int64_t amount,
                const std::string& kind, const std::optional<std::string>& description,
                const std::string& idempotency_key, const std::string& traceparent, AtLimit at_limit) {
  if (!s.query("SELECT 1 FROM ledger_entries WHERE account_id = $1 AND idempotency_key = $2",
               {account_id, idempotency_key})
           .empty())
    return false;
  const char* lock = s.dialect() == db::Dialect::Postgres
                         ? "SELECT balance, user_id FROM billing_accounts WHERE id = $1 FOR UPDATE"
                         : "SELECT balance, user_id FROM billing_accounts WHERE id = $1";
  auto account = s.query(lock, {account_id});
  if (account.empty()) throw Error::not_found("no such billing account");
  // Past the limit in the direction it moves (a balance stored before this check may lie beyond it either
  // way, up to int64's end: checked arithmetic).
  const int64_t before = account.rows[0].int64(0);
  int64_t balance = 0;
  const bool past = __builtin_add_overflow(before, amount, &balance) || amount > kMaxTotal ||
                    amount < -kMaxTotal || (amount > 0 && balance > kMaxTotal) ||
                    (amount < 0 && balance < -kMaxTotal);
  if (past) {
    if (at_limit == AtLimit::Refuse)
      throw Error::validation({{"amount", "would take the balance past " + std::to_string(kMaxTotal) +
                                              " (or below its negative)"}});
    // Within ±kMaxTotal first; then a balance past the limit (stored before this check) moves no further,
    // and one short of it moves exactly to it (before > kMaxTotal - amount >= 0 here: no overflow).
    amount = std::clamp<int64_t>(amount, -kMaxTotal, kMaxTotal);
    if (amount > 0)
      amount = before >= kMaxTotal ? 0 : kMaxTotal - before;
    else
      amount = before <= -kMaxTotal ? 0 : -kMaxTotal - before;
    balance = before + amount;
  }
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
  outbox.append(s, {"keel.billing.ledger.posted", "/keel/billing", account.rows[0].text(1),
                    boost::json::object{{"account_id", account_id},
                                        {"entry_id", id},
                                        {"amount", amount},
                                        {"balance_after", balance},
                                        {"kind", kind}},
                    traceparent});
  return true;
}

std::string capped_sum(db::Dialect dialect, const std::string& column) {
  const std::string cap = std::to_string(kMaxTotal);
  return dialect == db::Dialect::Postgres ? "LEAST(SUM(" + column + "), " + cap + ")::bigint"
                                          : "CAST(MIN(TOTAL(" + column + "), " + cap + ".0) AS INTEGER)";
}

void add_to_usage_total(db::Session& s, const std::string& account_id, const std::string& module,
                        const std::string& metric, int64_t quantity) {
  auto r = s.query(
      "INSERT INTO usage_totals (account_id, module, metric, quantity, created_at, updated_at) "
      "VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (account_id, module, metric) DO UPDATE SET "
      "quantity = usage_totals.quantity + excluded.quantity, updated_at = excluded.updated_at "
      "WHERE usage_totals.quantity <= $6 - excluded.quantity RETURNING quantity",
      {account_id, module, metric, quantity, now_rfc3339(), kMaxTotal});
  if (r.empty())
    throw Error::validation({{"quantity", "would take this user's total of " + module + "/" + metric +
                                              " past " + std::to_string(kMaxTotal)}});
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

std::vector<module::Standing> Ledger::standings(db::Session& s,
                                                const std::vector<std::string>& user_ids) const {
  constexpr size_t kChunk = 100;  // users per query
  constexpr db::Columns kStanding{"user_id", "plan", "balance"};
  std::vector<module::Standing> out;
  for (size_t from = 0; from < user_ids.size(); from += kChunk) {
    const size_t to = std::min(user_ids.size(), from + kChunk);
    std::string sql = "SELECT " + kStanding.list() + " FROM billing_accounts WHERE user_id IN (";
    std::vector<db::Value> params;
    for (size_t i = from; i < to; ++i) {
      sql += i == from ? "$" : ", $";
      sql += std::to_string(i - from + 1);
      params.emplace_back(user_ids[i]);
    }
    sql += ")";
    for (const auto& row : s.query(sql, params).rows)
      out.push_back(module::Standing{row.text(kStanding["user_id"]), row.text(kStanding["plan"]),
                                     row.int64(kStanding["balance"])});
  }
  return out;
}

void Ledger::charge_requests(db::Session& s, const std::vector<module::RequestCount>& counts,
                             const std::string& key_prefix) const {
  std::vector<UsageIncrement> usage;
  std::map<std::string, int64_t> per_user;
  for (const auto& c : counts) {
    usage.push_back({c.user_id, c.module, "requests", c.requests});
    per_user[c.user_id] += c.requests;
  }
  record_usage_batch(s, usage, key_prefix);
  for (const auto& [user, n] : per_user) {
    auto account = s.query("SELECT id, plan FROM billing_accounts WHERE user_id = $1", {user});
    if (account.empty()) continue;
    const Plan* terms = plans_.find(account.rows[0].text(1));
    if (!terms || terms->request_price <= 0) continue;
    // Charged however large the count or price: the product saturates and the balance stops at its limit.
    int64_t charge = 0;
    if (__builtin_mul_overflow(n, terms->request_price, &charge)) charge = kMaxTotal;
    post_entry(s, outbox_, account.rows[0].text(0), -std::min(charge, kMaxTotal), "usage",
               std::to_string(n) + " requests", key_prefix + ":charge:" + user, "", AtLimit::Clamp);
  }
}

void Ledger::open_account(db::Session& s, const module::UserCreated& user) const {
  create_account(s, outbox_, user.user_id, user.traceparent);
}

}  // namespace keel::billing
