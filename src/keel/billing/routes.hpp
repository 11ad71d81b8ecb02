#pragma once

namespace keel {
struct ModuleContext;
}

namespace keel::billing {

// The billing module: accounts, the credit ledger and usage (CONTRACT.md, billing).
void install(ModuleContext& ctx);

}  // namespace keel::billing
