#pragma once
#include <string>

namespace keel {
struct ModuleContext;
namespace http {
class Router;
}
}  // namespace keel

namespace keel::gateway {

// The gateway's own routes (/openapi.json). The routes of modules in this process are mounted into the
// gateway by serve(); proxying to other processes comes with the registry.
void install(ModuleContext& ctx);
// The gateway's own routes, described only (module/module.hpp, ModuleSpec::declare).
void declare(http::Router& router);
}  // namespace keel::gateway
