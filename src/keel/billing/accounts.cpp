#include "keel/billing/accounts.hpp"

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
