-- billing: an append-only credit ledger and idempotent usage records.
CREATE TABLE ledger_entries (
  id               TEXT PRIMARY KEY,
  account_id       TEXT NOT NULL REFERENCES billing_accounts(id) ON DELETE CASCADE,
  amount           INTEGER NOT NULL,
  kind             TEXT NOT NULL,
  description      TEXT,
  idempotency_key  TEXT NOT NULL,
  balance_after    INTEGER NOT NULL,
  created_at       TEXT NOT NULL,
  updated_at       TEXT NOT NULL,
  UNIQUE (account_id, idempotency_key)
);
CREATE INDEX ledger_entries_account ON ledger_entries(account_id, created_at);

CREATE TABLE usage_records (
  id               TEXT PRIMARY KEY,
  account_id       TEXT NOT NULL REFERENCES billing_accounts(id) ON DELETE CASCADE,
  user_id          TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  module           TEXT NOT NULL,
  metric           TEXT NOT NULL,
  quantity         INTEGER NOT NULL,
  idempotency_key  TEXT NOT NULL UNIQUE,
  created_at       TEXT NOT NULL,
  updated_at       TEXT NOT NULL
);
CREATE INDEX usage_records_account_time ON usage_records(account_id, created_at);
