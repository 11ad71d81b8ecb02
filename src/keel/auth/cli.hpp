#pragma once
#include <string>

#include "keel/core/config.hpp"

namespace keel::auth {

// keel user create --email E --password-stdin [--admin]: prints the user as JSON.
int user_create_command(const Config& config, const std::string& email, bool admin);
// keel token create --service NAME [--ttl SECONDS]: prints the token alone on standard output.
int token_create_command(const Config& config, const std::string& service, long long ttl_seconds);
// keel token revoke --id SID: the token stops working within a second everywhere.
int token_revoke_command(const Config& config, const std::string& id);
// keel keys rotate: a new signing key; the old one stays published until its tokens expire.
int keys_rotate_command(const Config& config);

}  // namespace keel::auth
