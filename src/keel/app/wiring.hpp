#pragma once
// The module layer's interfaces bound to the modules that implement them, one set per process: the outbox
// every module appends through, billing's ledger behind module::Accounts, and the lifecycle hooks with each
// module that joins one (billing opens an account when auth creates a user). Made in every process whatever
// modules it serves, since every process writes the one database: a `--services auth` process registers
// users with their accounts too. The token verifier and the registry's view need the database and live in
// serve() (app/serve.cpp).
#include "keel/billing/ledger.hpp"
#include "keel/module/hooks.hpp"
#include "keel/module/outbox.hpp"

namespace keel {
struct Config;

struct Wiring {
  explicit Wiring(const Config& config);
  Wiring(const Wiring&) = delete;
  Wiring& operator=(const Wiring&) = delete;

  module::Outbox outbox;
  billing::Ledger ledger;  // module::Accounts
  module::Hooks hooks;
};

}  // namespace keel
