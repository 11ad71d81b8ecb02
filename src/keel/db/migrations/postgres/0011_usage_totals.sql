-- Overflow-safe usage: a running total per account, module and metric of what services post, raised in the
-- transaction of each post; a post that would take it past 2^53 - 1 (the largest integer JSON carries
-- exactly) is refused with 422, so no sum of a user's usage can overflow. Seeded from what is stored,
-- capped at that limit (a total stored before this check may already be past it).
CREATE TABLE usage_totals (
  account_id  uuid NOT NULL REFERENCES billing_accounts(id) ON DELETE CASCADE,
  module      text NOT NULL,
  metric      text NOT NULL,
  quantity    bigint NOT NULL,
  created_at  timestamptz NOT NULL,
  updated_at  timestamptz NOT NULL,
  PRIMARY KEY (account_id, module, metric)
);
INSERT INTO usage_totals (account_id, module, metric, quantity, created_at, updated_at)
SELECT account_id, module, metric, LEAST(SUM(quantity), 9007199254740991)::bigint, now(), now()
FROM (SELECT account_id, module, metric, quantity FROM usage_records
      UNION ALL SELECT account_id, module, metric, quantity FROM usage_rollups) u
GROUP BY account_id, module, metric;
