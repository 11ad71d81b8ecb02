#pragma once

namespace keel {
struct ModuleContext;
}

namespace keel::memory {

// The memory module: each user's memories with full-text, vector and hybrid search (CONTRACT.md, memory).
void install(ModuleContext& ctx);

}  // namespace keel::memory
