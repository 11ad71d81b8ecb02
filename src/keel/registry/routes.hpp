#pragma once
#include <string>
#include <vector>

namespace keel {
struct ModuleContext;
namespace http {
class Router;
}
}  // namespace keel

namespace keel::registry {

// The registry module: its routes (CONTRACT.md, registry), TTL expiry and active health checks.
void install(ModuleContext& ctx);
// Adds the module's routes, with who may call each, to a router that only describes them (handlers never
// called): the gateway's edge check and the OpenAPI document read them for modules in other processes.
void declare(http::Router& router);

// A route prefix a module may claim is one normalized path (CONTRACT.md, "Safety rules"): it starts with '/',
// has no empty, `.` or `..` segment, no percent-encoding or backslash, no trailing slash, no spaces, '?' or
// '#'.
bool normalized_prefix(const std::string& p);
// A public route an instance declares: "METHOD /pattern", a method keel routes and a normalized path whose
// segments are literal or a whole "{name}", at or below one of `prefixes` (the instance's routes).
bool valid_public_route(const std::string& route, const std::vector<std::string>& prefixes);

}  // namespace keel::registry
