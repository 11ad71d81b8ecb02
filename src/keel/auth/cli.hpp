#pragma once
#include <string>
#include <vector>

#include "keel/core/config.hpp"
#include "keel/module/hooks.hpp"
#include "keel/module/module.hpp"
#include "keel/module/outbox.hpp"

namespace keel::auth {

// keel user create --email E --password-stdin [--admin]: prints the user as JSON. `hooks` run as
// registration runs them (module/hooks.hpp), and their events go through `outbox`.
int user_create_command(const Config& config, const module::Outbox& outbox, const module::Hooks& hooks,
                        const std::string& email, bool admin);
// keel token create --service NAME [--ttl SECONDS]: prints the token alone on standard output. No token is
// bound to one of `modules` (keel's own).
int token_create_command(const Config& config, const std::vector<ModuleSpec>& modules,
                         const std::string& service, long long ttl_seconds);
// keel token revoke --id SID: the token stops working within a second everywhere.
int token_revoke_command(const Config& config, const std::string& id);
// keel keys rotate: a new signing key; the old one stays published until its tokens expire.
int keys_rotate_command(const Config& config);

}  // namespace keel::auth
