#include "keel/module/caller.hpp"

#include <stdexcept>

#include "keel/core/error.hpp"

namespace keel::module {

bool Principal::has_role(std::string_view role) const {
  for (const auto& r : roles)
    if (r == role) return true;
  return false;
}

http::Guard guard(const Authenticator& authenticator) {
  return [&authenticator](http::Request& req, http::Access access) {
    std::shared_ptr<const Principal> who = authenticator.authenticate_shared(req);
    if (!access.admits(who->is_service(), who->is_admin()))
      throw Error::forbidden("this route needs " + access.what_is_needed());
    req.caller = std::move(who);
  };
}

const Principal& caller(const http::Request& req) {
  if (!req.caller) throw std::logic_error("caller() on a route that checks no token");
  return *static_cast<const Principal*>(req.caller.get());
}

}  // namespace keel::module
