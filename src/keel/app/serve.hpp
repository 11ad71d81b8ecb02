#pragma once
#include "keel/core/config.hpp"

namespace keel {

// `keel serve`: opens and migrates the database, starts the selected modules, serves until SIGINT/SIGTERM,
// drains, and returns the process exit code.
int serve(const Config& config);
// `keel migrate`: applies pending migrations and prints what it did.
int migrate_command(const Config& config);

}  // namespace keel
