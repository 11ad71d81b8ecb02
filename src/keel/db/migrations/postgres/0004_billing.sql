-- billing: an append-only credit ledger and idempotent usage records.
CREATE TABLE ledger_entries (
  id               uuid PRIMARY KEY,
  account_id       uuid NOT NULL REFERENCES billing_accounts(id) ON DELETE CASCADE,
  amount           bigint NOT NULL,
  kind             text NOT NULL,
  description      text,
  idempotency_key  text NOT NULL,
  balance_after    bigint NOT NULL,
  created_at       timestamptz NOT NULL,
  updated_at       timestamptz NOT NULL,
  UNIQUE (account_id, idempotency_key)
);
CREATE INDEX ledger_entries_account ON ledger_entries(account_id, created_at);

CREATE TABLE usage_records (
  id               uuid PRIMARY KEY,
  account_id       uuid NOT NULL REFERENCES billing_accounts(id) ON DELETE CASCADE,
  user_id          uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  module           text NOT NULL,
  metric           text NOT NULL,
  quantity         bigint NOT NULL,
  idempotency_key  text NOT NULL UNIQUE,
  created_at       timestamptz NOT NULL,
  updated_at       timestamptz NOT NULL
);
CREATE INDEX usage_records_account_time ON usage_records(account_id, created_at);
