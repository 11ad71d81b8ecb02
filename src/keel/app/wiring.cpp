#include "keel/app/wiring.hpp"

#include "keel/core/config.hpp"

namespace keel {

Wiring::Wiring(const Config& config) : ledger(billing::Plans::from(config), outbox) {
  hooks.user_created.push_back(
      [this](db::Session& s, const module::UserCreated& user) { ledger.open_account(s, user); });
}

}  // namespace keel
