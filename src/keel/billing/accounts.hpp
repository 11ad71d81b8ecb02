#pragma once
// Billing accounts: the repository other modules call when they must change together with billing (auth
// creates a user's account in the registration transaction).
#include <string>

#include "keel/db/database.hpp"

namespace keel::billing {

// Creates the user's account on the default plan, with its keel.billing.account.created event; returns the
// account id.
std::string create_account(db::Session& s, const std::string& user_id, const std::string& traceparent);

}  // namespace keel::billing
