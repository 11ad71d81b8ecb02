-- Bounded disk. Usage: the meter's per-second rows are rolled up into per-minute rows, and those into
-- per-hour rows (billing/rollup.cpp), which GET /v1/billing/usage sums with the raw rows. Memory versions
-- past their age go in batches, found by when they stopped being current.
CREATE TABLE usage_rollups (
  account_id    TEXT NOT NULL REFERENCES billing_accounts(id) ON DELETE CASCADE,
  user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  module        TEXT NOT NULL,
  metric        TEXT NOT NULL,
  granularity   TEXT NOT NULL CHECK (granularity IN ('minute', 'hour')),
  period_start  TEXT NOT NULL,
  quantity      INTEGER NOT NULL,
  created_at    TEXT NOT NULL,
  updated_at    TEXT NOT NULL,
  PRIMARY KEY (account_id, module, metric, granularity, period_start)
) WITHOUT ROWID;
CREATE INDEX usage_rollups_age ON usage_rollups(granularity, period_start);
CREATE INDEX usage_records_created ON usage_records(created_at);
CREATE INDEX memory_versions_updated_at ON memory_versions(updated_at);
