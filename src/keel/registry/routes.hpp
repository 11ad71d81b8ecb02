#pragma once

namespace keel {
struct ModuleContext;
}

namespace keel::registry {

// The registry module: its routes (CONTRACT.md, registry), TTL expiry and active health checks.
void install(ModuleContext& ctx);

}  // namespace keel::registry
