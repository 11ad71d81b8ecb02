#pragma once

namespace keel {
struct ModuleContext;
}

namespace keel::auth {

// The auth module: its routes (CONTRACT.md, auth) and background key refresh.
void install(ModuleContext& ctx);

}  // namespace keel::auth
