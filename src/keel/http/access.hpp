#pragma once
// Who may call a route. Every route is declared with one (Router::add has no overload without it), the
// router checks it before the handler runs, and the gateway's list of routes that need no token at the edge
// and the OpenAPI document's `security` are read from the same declarations.
#include <cstdint>
#include <string>
#include <string_view>

namespace keel::http {

class Access {
 public:
  // Anyone: no token is read (signing in, public keys, health).
  static constexpr Access anyone() { return Access(kAnyone); }
  // A user's access token; an admin is a user too.
  static constexpr Access user() { return Access(kUser); }
  // A user's access token with the admin role.
  static constexpr Access admin() { return Access(kAdmin); }
  // A service token (`keel token create --service`).
  static constexpr Access service() { return Access(kService); }
  // Either: `Access::admin() | Access::service()`.
  constexpr Access operator|(Access o) const { return Access(static_cast<uint8_t>(bits_ | o.bits_)); }
  constexpr bool operator==(const Access&) const = default;

  constexpr bool is_public() const { return (bits_ & kAnyone) != 0; }
  constexpr bool allows_users() const { return (bits_ & kUser) != 0; }
  constexpr bool allows_admins() const { return (bits_ & (kUser | kAdmin)) != 0; }
  constexpr bool allows_services() const { return (bits_ & kService) != 0; }
  // Whether a verified caller of this kind may call the route.
  constexpr bool admits(bool is_service, bool is_admin) const {
    if (is_public()) return true;
    if (is_service) return allows_services();
    return is_admin ? allows_admins() : allows_users();
  }
  // For a 403's detail: "this route needs <what_is_needed()>".
  std::string what_is_needed() const {
    std::string out;
    auto add = [&](std::string_view s) { out += (out.empty() ? "" : " or ") + std::string(s); };
    if (allows_users())
      add("a user's token");
    else if (allows_admins())
      add("the admin role");
    if (allows_services()) add("a service token");
    return out.empty() ? "no token" : out;
  }

 private:
  static constexpr uint8_t kAnyone = 1, kUser = 2, kAdmin = 4, kService = 8;
  constexpr explicit Access(uint8_t bits) : bits_(bits) {}
  uint8_t bits_;
};

}  // namespace keel::http
