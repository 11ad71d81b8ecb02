#include "keel/billing/rollup.hpp"

#include <chrono>

#include "keel/billing/ledger.hpp"
#include "keel/core/time.hpp"

namespace keel::billing {

namespace {

std::string ago(const std::string& now, std::chrono::minutes m) {
  const auto t = parse_rfc3339(now);
  return format_rfc3339((t ? *t : std::chrono::system_clock::now()) - m);
}

// Moves the rows `from` selects into `granularity` roll-ups (period: `period` of their time column).
int64_t move(db::Session& s, const std::string& now, const std::string& select_where, const std::string& from,
             const std::string& time_column, const std::string& granularity, const std::string& cut) {
  const bool pg = s.dialect() == db::Dialect::Postgres;
  // The start of the minute or hour a time falls in.
  const std::string period =
      pg ? "date_trunc('" + granularity + "', " + time_column + ")"
         : (granularity == "minute" ? "substr(" + time_column + ", 1, 17) || '00.000Z'"
                                    : "substr(" + time_column + ", 1, 14) || '00:00.000Z'");
  // Sums capped (accounts.hpp): a roll-up never fails on what is stored, so it never stops for good.
  const std::string sum = capped_sum(s.dialect(), "quantity");
  const std::string upsert =
      " ON CONFLICT (account_id, module, metric, granularity, period_start) DO UPDATE SET quantity = " +
      std::string(pg ? "LEAST(usage_rollups.quantity::numeric + excluded.quantity, "
                     : "MIN(usage_rollups.quantity + excluded.quantity, ") +
      std::to_string(kMaxTotal) + ")" + (pg ? "::bigint" : "") + ", updated_at = excluded.updated_at";
  if (pg) {
    // One statement: the rows deleted are the rows summed, whatever commits meanwhile.
    return s
        .query("WITH moved AS (DELETE FROM " + from + " WHERE " + select_where +
                   " RETURNING account_id, user_id, module, metric, quantity, " + time_column +
                   ") INSERT INTO usage_rollups (account_id, user_id, module, metric, granularity, "
                   "period_start, "
                   "quantity, created_at, updated_at) SELECT account_id, user_id, module, metric, '" +
                   granularity + "', " + period + ", " + sum +
                   ", $2, $2 FROM moved GROUP BY account_id, "
                   "user_id, module, metric, " +
                   period + upsert,
               {cut, now})
        .affected;
  }
  // SQLite: one writer, so the two statements see the same rows.
  s.query(
      "INSERT INTO usage_rollups (account_id, user_id, module, metric, granularity, period_start, quantity, "
      "created_at, updated_at) SELECT account_id, user_id, module, metric, '" +
          granularity + "', " + period + ", " + sum + ", $2, $2 FROM " + from + " WHERE " + select_where +
          " GROUP BY account_id, user_id, module, metric, " + period + upsert,
      {cut, now});
  return s.query("DELETE FROM " + from + " WHERE " + select_where, {cut}).affected;
}

}  // namespace

int64_t roll_up_usage(db::Session& s, const UsageRetention& r, const std::string& now) {
  int64_t n = 0;
  // In each, $1 is the cut.
  n += move(s, now, "created_at < $1 AND idempotency_key LIKE 'gateway:%'", "usage_records", "created_at",
            "minute", ago(now, std::chrono::minutes(r.raw_minutes)));
  n += move(s, now, "created_at < $1", "usage_records", "created_at", "minute",
            ago(now, std::chrono::hours(25)));
  n += move(s, now, "granularity = 'minute' AND period_start < $1", "usage_rollups", "period_start", "hour",
            ago(now, std::chrono::hours(24 * r.minute_days)));
  if (r.retention_days > 0)
    n += s.query("DELETE FROM usage_rollups WHERE granularity = 'hour' AND period_start < $1",
                 {ago(now, std::chrono::hours(24 * r.retention_days))})
             .affected;
  return n;
}

}  // namespace keel::billing
