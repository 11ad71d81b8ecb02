#include "keel/billing/routes.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <regex>

#include "keel/billing/ledger.hpp"
#include "keel/billing/rollup.hpp"
#include "keel/billing/settings.hpp"
#include "keel/core/config.hpp"
#include "keel/core/ids.hpp"
#include "keel/core/log.hpp"
#include "keel/core/time.hpp"
#include "keel/db/columns.hpp"
#include "keel/http/json_body.hpp"
#include "keel/http/pagination.hpp"
#include "keel/http/router.hpp"
#include "keel/module/caller.hpp"
#include "keel/module/module.hpp"

namespace keel::billing {

namespace json = boost::json;
namespace net = boost::asio;
using http::Access;
using http::Method;
using http::Request;
using http::Response;
using Awaitable = net::awaitable<Response>;

namespace {

struct Billing {
  db::Database* db;
  const module::Outbox* outbox;
};

// The row types this module answers with (db/columns.hpp), and their SELECT lists.
constexpr db::Columns kAccount{"id",      "user_id",  "plan",       "status",
                               "balance", "currency", "created_at", "updated_at"};
constexpr db::Columns kEntry{"id",        "amount", "kind", "description", "idempotency_key", "balance_after",
                             "created_at"};
constexpr db::Columns kUsage{"id",       "user_id",         "module",    "metric",
                             "quantity", "idempotency_key", "created_at"};
const std::string kAccountColumns = kAccount.list();
const std::string kEntryColumns = kEntry.list();
const std::string kUsageColumns = kUsage.list();

json::object account_json(const db::Row& r) {
  return {{"id", r.text(kAccount["id"])},
          {"user_id", r.text(kAccount["user_id"])},
          {"plan", r.text(kAccount["plan"])},
          {"status", r.text(kAccount["status"])},
          {"balance", r.int64(kAccount["balance"])},
          {"currency", r.text(kAccount["currency"])},
          {"created_at", r.time(kAccount["created_at"])},
          {"updated_at", r.time(kAccount["updated_at"])}};
}

json::object entry_json(const db::Row& r) {
  constexpr size_t description = kEntry["description"];
  return {{"id", r.text(kEntry["id"])},
          {"amount", r.int64(kEntry["amount"])},
          {"kind", r.text(kEntry["kind"])},
          {"description", r.is_null(description) ? json::value(nullptr) : json::value(r.text(description))},
          {"idempotency_key", r.text(kEntry["idempotency_key"])},
          {"balance_after", r.int64(kEntry["balance_after"])},
          {"created_at", r.time(kEntry["created_at"])}};
}

json::object usage_json(const db::Row& r) {
  return {{"id", r.text(kUsage["id"])},
          {"user_id", r.text(kUsage["user_id"])},
          {"module", r.text(kUsage["module"])},
          {"metric", r.text(kUsage["metric"])},
          {"quantity", r.int64(kUsage["quantity"])},
          {"idempotency_key", r.text(kUsage["idempotency_key"])},
          {"created_at", r.time(kUsage["created_at"])}};
}

std::optional<db::Row> own_account(db::Session& s, const std::string& user_id) {
  auto r = s.query("SELECT " + kAccountColumns + " FROM billing_accounts WHERE user_id = $1", {user_id});
  if (r.empty()) return std::nullopt;
  return r.rows[0];
}

// A page of an account's ledger, newest first.
db::Result ledger_page(db::Session& s, const std::string& account_id, const http::Page& page) {
  std::vector<db::Value> params{account_id, int64_t{page.limit}};
  std::string sql = "SELECT " + kEntryColumns + " FROM ledger_entries WHERE account_id = $1";
  if (page.after) {
    params.emplace_back(*page.after);
    sql += " AND id < $3";
  }
  return s.query(sql + " ORDER BY id DESC LIMIT $2", params);
}

json::object ledger_json(const db::Result& rows, const http::Page& page) {
  return http::page_of(rows.rows, page, entry_json,
                       [](const db::Row& row) { return row.text(kEntry["id"]); });
}

std::optional<db::Row> account_by_id(db::Session& s, const std::string& id) {
  auto r = s.query("SELECT " + kAccountColumns + " FROM billing_accounts WHERE id = $1", {id});
  if (r.empty()) return std::nullopt;
  return r.rows[0];
}

const std::regex kName("[a-z][a-z0-9._-]{0,62}");

}  // namespace

namespace {
// The contract's Idempotency-Key header stands for the body's idempotency_key: either one, or both equal.
void key_from_header(const Request& req, json::object& body) {
  const std::string_view header = req.header("Idempotency-Key");
  if (header.empty()) return;
  auto it = body.find("idempotency_key");
  if (it == body.end() || it->value().is_null())
    body["idempotency_key"] = std::string(header);
  else if (!it->value().is_string() || it->value().as_string() != header)
    throw Error::validation({{"idempotency_key", "differs from the Idempotency-Key header"}});
}

// A post whose key was seen before answers with the original, marked as a replay.
Response replayed_unless(bool created, Response r) {
  if (!created) r.headers.emplace_back("Idempotent-Replayed", "true");
  return r;
}

// Rolls usage up once a minute (rollup.hpp).
net::awaitable<void> roll_up(db::Database& db, UsageRetention retention) {
  net::steady_timer timer(co_await net::this_coro::executor);
  for (;;) {
    timer.expires_after(std::chrono::minutes(1));
    co_await timer.async_wait(net::use_awaitable);
    try {
      const std::string now = now_rfc3339();
      co_await db.write([&](db::Session& s) { return roll_up_usage(s, retention, now); });
    } catch (const std::exception& e) {
      log::warn("usage roll-up failed", {{"error", e.what()}});
    }
  }
}

}  // namespace

namespace {
// The module's routes, each with who may call it. `b` is null when they are only declared (declare()):
// their handlers are then never called.
void add_routes(http::Router& r, std::shared_ptr<Billing> b) {
  r.add(Method::Get, "/v1/billing/account", Access::user(), [b](Request& req) -> Awaitable {
    const module::Principal& who = module::caller(req);
    auto row = co_await b->db->read([&](db::Session& s) { return own_account(s, who.user_id); });
    if (!row) throw Error::not_found("this user has no billing account");
    co_return Response::json(200, account_json(*row));
  });

  r.add(Method::Get, "/v1/billing/ledger", Access::user(), [b](Request& req) -> Awaitable {
    const module::Principal& who = module::caller(req);
    const http::Page page = http::parse_page(req);
    if (page.after && !is_uuid(*page.after))
      throw Error::bad_request("the cursor is not one this server issued");
    auto rows = co_await b->db->read([&](db::Session& s) {
      auto account = own_account(s, who.user_id);
      if (!account) return db::Result{};
      return ledger_page(s, account->text(kAccount["id"]), page);
    });
    co_return Response::json(200, ledger_json(rows, page));
  });

  r.add(Method::Get, "/v1/billing/usage", Access::user(), [b](Request& req) -> Awaitable {
    const module::Principal& who = module::caller(req);
    // Open ends when absent (1970 rather than year 0: PostgreSQL's timestamptz starts at 4713 BC but not
    // 0000).
    const std::string from = req.query_time("from").value_or("1970-01-01T00:00:00.000Z");
    const std::string to = req.query_time("to").value_or("9999-12-31T23:59:59.999Z");
    auto rows = co_await b->db->read([&](db::Session& s) {
      auto account = own_account(s, who.user_id);
      if (!account) return db::Result{};
      // Raw rows and roll-ups alike (rollup.hpp): a rolled-up period counts by when it began.
      return s.query(
          "SELECT module, metric, " + capped_sum(s.dialect(), "quantity") +
              " FROM (SELECT module, metric, quantity FROM usage_records "
              "WHERE "
              "account_id = $1 AND created_at >= $2 AND created_at < $3 UNION ALL SELECT module, metric, "
              "quantity "
              "FROM usage_rollups WHERE account_id = $1 AND period_start >= $2 AND period_start < $3) u "
              "GROUP BY "
              "module, metric ORDER BY module, metric",
          {account->text(kAccount["id"]), from, to});
    });
    json::array items;
    for (const auto& row : rows.rows)
      items.push_back(
          json::object{{"module", row.text(0)}, {"metric", row.text(1)}, {"quantity", row.int64(2)}});
    co_return Response::json(200, json::object{{"items", std::move(items)}});
  });

  r.add(Method::Post, "/v1/billing/usage", Access::service(), [b](Request& req) -> Awaitable {
    auto body = http::parse_json_object(req);
    key_from_header(req, body);
    http::Validator v(body);
    const std::string user_id = v.required_string("user_id", 1, 64);
    const std::string module = v.required_string("module", 1, 63);
    const std::string metric = v.required_string("metric", 1, 63);
    const std::string key = v.required_string("idempotency_key", 1, 200);
    const int64_t quantity = v.required_int("quantity", 1, int64_t{1} << 50);
    if (!user_id.empty() && !is_uuid(user_id)) v.fail("user_id", "must be a user id");
    if (!module.empty() && !std::regex_match(module, kName))
      v.fail("module", "must match [a-z][a-z0-9._-]{0,62}");
    if (!metric.empty() && !std::regex_match(metric, kName))
      v.fail("metric", "must match [a-z][a-z0-9._-]{0,62}");
    v.check();
    auto find = [&](db::Session& s) {
      return s.query("SELECT " + kUsageColumns +
                         " FROM usage_records "
                         "WHERE idempotency_key = $1",
                     {key});
    };
    // The same key again is the same record, counted once: 200 with the original.
    db::Result existing = co_await b->db->read(find);
    if (!existing.empty())
      co_return replayed_unless(false, Response::json(200, usage_json(existing.rows[0])));
    bool created = false;
    try {
      existing = co_await b->db->write([&](db::Session& s) {
        auto again = find(s);
        if (!again.empty()) return again;
        auto account = own_account(s, user_id);
        if (!account) throw Error::validation({{"user_id", "no such user"}});
        add_to_usage_total(s, account->text(kAccount["id"]), module, metric, quantity);
        const std::string now = now_rfc3339();
        s.query(
            "INSERT INTO usage_records (id, account_id, user_id, module, metric, quantity, idempotency_key, "
            "created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
            {uuid_v7(), account->text(kAccount["id"]), user_id, module, metric, quantity, key, now});
        created = true;
        return find(s);
      });
    } catch (const db::DbError& e) {
      if (e.kind() != db::DbError::Kind::UniqueViolation) throw;
      created = false;  // a concurrent post with the same key won
    }
    if (!created) existing = co_await b->db->read(find);
    co_return replayed_unless(created, Response::json(created ? 201 : 200, usage_json(existing.rows.at(0))));
  });

  // An admin's view of every account (the console's billing page).
  r.add(Method::Get, "/v1/billing/accounts", Access::admin(), [b](Request& req) -> Awaitable {
    const http::Page page = http::parse_page(req);
    if (page.after && !is_uuid(*page.after))
      throw Error::bad_request("the cursor is not one this server issued");
    const auto user_id = req.query_param("user_id");
    if (user_id && !is_uuid(*user_id)) throw Error::validation({{"user_id", "must be a user id"}});
    auto rows = co_await b->db->read([&](db::Session& s) {
      std::vector<db::Value> params{int64_t{page.limit}};
      std::string sql = "SELECT " + kAccountColumns + " FROM billing_accounts WHERE TRUE";
      if (user_id) {
        params.emplace_back(*user_id);
        sql += " AND user_id = $" + std::to_string(params.size());
      }
      if (page.after) {
        params.emplace_back(*page.after);
        sql += " AND id > $" + std::to_string(params.size());
      }
      return s.query(sql + " ORDER BY id LIMIT $1", params);
    });
    co_return Response::json(200, http::page_of(rows.rows, page, account_json,
                                                [](const db::Row& row) { return row.text(kAccount["id"]); }));
  });

  r.add(Method::Get, "/v1/billing/accounts/{id}", Access::admin(), [b](Request& req) -> Awaitable {
    const std::string& id = req.param("id");
    if (!is_uuid(id)) throw Error::not_found("no such billing account");
    auto row = co_await b->db->read([&](db::Session& s) { return account_by_id(s, id); });
    if (!row) throw Error::not_found("no such billing account");
    co_return Response::json(200, account_json(*row));
  });

  r.add(Method::Get, "/v1/billing/accounts/{id}/ledger", Access::admin(), [b](Request& req) -> Awaitable {
    const std::string& id = req.param("id");
    if (!is_uuid(id)) throw Error::not_found("no such billing account");
    const http::Page page = http::parse_page(req);
    if (page.after && !is_uuid(*page.after))
      throw Error::bad_request("the cursor is not one this server issued");
    auto rows = co_await b->db->read([&](db::Session& s) -> std::optional<db::Result> {
      if (!account_by_id(s, id)) return std::nullopt;
      return ledger_page(s, id, page);
    });
    if (!rows) throw Error::not_found("no such billing account");
    co_return Response::json(200, ledger_json(*rows, page));
  });

  r.add(Method::Post, "/v1/billing/accounts/{id}/credits", Access::admin(), [b](Request& req) -> Awaitable {
    const std::string account_id = req.param("id");
    if (!is_uuid(account_id)) throw Error::not_found("no such billing account");
    auto body = http::parse_json_object(req);
    key_from_header(req, body);
    http::Validator v(body);
    const int64_t amount = v.required_int("amount", 1, int64_t{1} << 50);
    const auto description = v.optional_string("description", 0, 500);
    const std::string key = v.required_string("idempotency_key", 1, 200);
    v.check();
    const std::string tp(req.trace.traceparent());
    auto find = [&](db::Session& s) {
      return s.query(
          "SELECT " + kEntryColumns + " FROM ledger_entries WHERE account_id = $1 AND idempotency_key = $2",
          {account_id, key});
    };
    bool created = false;
    db::Result entry;
    try {
      entry = co_await b->db->write([&](db::Session& s) {
        created = post_entry(s, *b->outbox, account_id, amount, "credit", description, key, tp);
        return find(s);
      });
    } catch (const db::DbError& e) {
      if (e.kind() != db::DbError::Kind::UniqueViolation) throw;
      created = false;
    }
    if (!created) entry = co_await b->db->read(find);
    co_return replayed_unless(created, Response::json(created ? 201 : 200, entry_json(entry.rows.at(0))));
  });
}
}  // namespace

void declare(http::Router& router) { add_routes(router, nullptr); }

void install(ModuleContext& ctx) {
  auto b = std::make_shared<Billing>(Billing{&ctx.db, &ctx.outbox});
  UsageRetention retention;
  retention.raw_minutes = settings::usage_raw_minutes.integer(ctx.config);
  retention.minute_days = settings::usage_minute_days.integer(ctx.config);
  retention.retention_days = settings::usage_retention_days.integer(ctx.config);
  net::co_spawn(ctx.io, roll_up(ctx.db, retention), net::detached);
  add_routes(ctx.router, b);
}

}  // namespace keel::billing
