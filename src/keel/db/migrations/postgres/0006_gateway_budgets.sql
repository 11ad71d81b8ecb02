-- gateway: budgets every gateway of a fleet spends from (per-user and per-address token buckets, per-minute
-- plan quotas). Gateways lease slices of a budget in the background and spend them from memory, so the sum of
-- all leases never exceeds the budget. UNLOGGED: a crash of the database server forgets the budgets (they
-- start full again), which costs at most one window's accuracy and saves a WAL write per lease.
CREATE UNLOGGED TABLE gateway_budgets (
  key          text PRIMARY KEY,
  tokens       double precision NOT NULL,  -- what is left to lease
  refilled_at  double precision NOT NULL,  -- unix seconds the tokens were brought up to date
  last_grant   bigint NOT NULL,            -- what the last lease took (returned to the gateway that asked)
  expires_at   double precision NOT NULL,  -- past it the row says nothing (a full bucket, a past window)
  created_at   timestamptz NOT NULL,
  updated_at   timestamptz NOT NULL
);
CREATE INDEX gateway_budgets_expiry ON gateway_budgets(expires_at);
