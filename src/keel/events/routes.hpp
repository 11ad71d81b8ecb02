#pragma once

namespace keel {
struct ModuleContext;
}

namespace keel::events {

// The events module: reading the log (with long-poll), posting third-party events, retention.
void install(ModuleContext& ctx);

}  // namespace keel::events
