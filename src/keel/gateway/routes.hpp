#pragma once

namespace keel {
struct ModuleContext;
}

namespace keel::gateway {

// The gateway's own routes (/openapi.json). The routes of modules in this process are mounted into the
// gateway by serve(); proxying to other processes comes with the registry.
void install(ModuleContext& ctx);

}  // namespace keel::gateway
