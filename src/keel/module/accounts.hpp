#pragma once
// Accounts as other modules see them (billing implements it: billing/ledger.hpp): each user's plan and
// balance, the plans' terms, and the requests the gateway meters, recorded as usage and charged at the plan's
// price. Calls run inside the caller's transaction (`s`), on the database every process shares.
#include <cstdint>
#include <string>
#include <vector>

namespace keel::db {
class Session;
}

namespace keel::module {

struct Plan {
  int64_t requests_per_minute = 0;  // 0: unlimited
  int64_t request_price = 0;        // credits per request; 0: free
};

struct Standing {
  std::string user_id;
  std::string plan;
  int64_t balance = 0;
};

struct RequestCount {
  std::string user_id;
  std::string module;
  int64_t requests = 0;
};

class Accounts {
 public:
  virtual ~Accounts() = default;
  // The standing of those of `user_ids` that have an account.
  virtual std::vector<Standing> standings(db::Session& s, const std::vector<std::string>& user_ids) const = 0;
  // A plan's terms; null for a plan not configured.
  virtual const Plan* plan(const std::string& name) const = 0;
  // Records the counts as usage (metric "requests") and debits each user's plan price for them. Keys derive
  // from `key_prefix`, unique to one batch: the same batch written twice counts and charges once.
  virtual void charge_requests(db::Session& s, const std::vector<RequestCount>& counts,
                               const std::string& key_prefix) const = 0;
};

}  // namespace keel::module
