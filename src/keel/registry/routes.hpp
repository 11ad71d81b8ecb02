#pragma once
#include <string>

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

}  // namespace keel::registry
