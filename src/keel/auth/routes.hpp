#pragma once

namespace keel {
struct ModuleContext;
namespace http {
class Router;
}
}  // namespace keel

namespace keel::auth {

// The auth module: its routes (CONTRACT.md, auth) and background key refresh.
void install(ModuleContext& ctx);
// Adds the module's routes, with who may call each, to a router that only describes them (handlers never
// called): the gateway's edge check and the OpenAPI document read them for modules in other processes.
void declare(http::Router& router);

}  // namespace keel::auth
