-- gateway: budgets every gateway of a fleet spends from. One process serves a SQLite database, so its
-- gateway counts in memory and exactly; the table keeps both backends' schemas alike.
CREATE TABLE gateway_budgets (
  key          TEXT PRIMARY KEY,
  tokens       REAL NOT NULL,
  refilled_at  REAL NOT NULL,
  last_grant   INTEGER NOT NULL,
  expires_at   REAL NOT NULL,
  created_at   TEXT NOT NULL,
  updated_at   TEXT NOT NULL
);
CREATE INDEX gateway_budgets_expiry ON gateway_budgets(expires_at);
