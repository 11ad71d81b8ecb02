#pragma once
// Usage roll-ups: bounded disk for metering. The gateway writes a usage row per active user and module every
// second; kept as they are, they grew the database with traffic (a soak: most of ~9 MiB a minute). Rows older
// than `raw_minutes` are summed into one row per minute, minutes older than `minute_days` into one per hour,
// and hours older than `retention_days` (0: never) go. GET /v1/billing/usage sums raw rows and roll-ups
// alike, so totals do not change; a period rolled up is counted by when it began (a minute, then an hour).
//
// Only the meter's rows (idempotency keys "gateway:...") roll up after minutes: a row posted with a client's
// key stays as it is for 25 h, so the key is recognised for the 24 h CONTRACT.md promises.
#include <cstdint>
#include <string>

#include "keel/db/database.hpp"

namespace keel::billing {

struct UsageRetention {
  int64_t raw_minutes = 5;
  int64_t minute_days = 2;
  int64_t retention_days = 400;
};

// One pass (a transaction): what is due is rolled up; returns the rows rolled up or deleted. Any number of
// processes may run it at once: rows are moved with DELETE ... RETURNING (PostgreSQL) or by the one writer
// (SQLite), so each is counted once.
int64_t roll_up_usage(db::Session& s, const UsageRetention& r, const std::string& now);

}  // namespace keel::billing
