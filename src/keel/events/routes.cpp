#include "keel/events/routes.hpp"

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <cctype>

#include "keel/core/config.hpp"
#include "keel/core/ids.hpp"
#include "keel/core/log.hpp"
#include "keel/core/time.hpp"
#include "keel/db/columns.hpp"
#include "keel/db/group_write.hpp"
#include "keel/events/log.hpp"
#include "keel/events/settings.hpp"
#include "keel/events/stream.hpp"
#include "keel/http/duration.hpp"
#include "keel/http/json_body.hpp"
#include "keel/http/long_polls.hpp"
#include "keel/http/router.hpp"
#include "keel/module/caller.hpp"
#include "keel/module/idempotency.hpp"
#include "keel/module/module.hpp"
#include "keel/module/outbox.hpp"

namespace keel::events {

namespace json = boost::json;
namespace net = boost::asio;
using http::Access;
using http::Method;
using http::Request;
using http::Response;
using Awaitable = net::awaitable<Response>;

namespace {

struct Events {
  db::Database* db;
  std::atomic<int64_t> latest{0};  // the highest seq this process has seen committed
  int64_t retention_days = 30;
  // PostgreSQL: posts without an Idempotency-Key commit in groups (db/group_write.hpp); a commit for each
  // post made the server flush its log for every event (~2 events a flush at 64 connections).
  const module::Outbox* outbox;
  std::shared_ptr<db::GroupWrite<module::NewEvent, module::Appended>> group;
  std::unique_ptr<http::LongPolls> long_polls;  // reads with ?wait= each token may hold
  std::unique_ptr<http::KeyedSlots> streams;    // open streams each token may hold
  const module::Authenticator* authenticator;
  std::unique_ptr<Hub> hub;  // realtime streams (stream.hpp)
};

constexpr std::chrono::seconds kTicketLife{30};

// A stream ticket stands for its caller: stored as JSON, with the token's own expiry and session, which the
// stream goes on checking.
std::string principal_json(const module::Principal& p) {
  json::array roles;
  for (const auto& r : p.roles) roles.emplace_back(r);
  return json::serialize(json::object{{"subject", p.subject},
                                      {"user_id", p.user_id},
                                      {"service", p.service},
                                      {"session_id", p.session_id},
                                      {"roles", std::move(roles)},
                                      {"expires_at", p.expires_at}});
}

std::shared_ptr<const module::Principal> principal_of(const std::string& text) {
  const json::object o = json::parse(text).as_object();
  auto p = std::make_shared<module::Principal>();
  p->subject = json::value_to<std::string>(o.at("subject"));
  p->user_id = json::value_to<std::string>(o.at("user_id"));
  p->service = json::value_to<std::string>(o.at("service"));
  p->session_id = json::value_to<std::string>(o.at("session_id"));
  for (const auto& r : o.at("roles").as_array()) p->roles.push_back(json::value_to<std::string>(r));
  for (const auto& r : p->roles) p->roles_joined += (p->roles_joined.empty() ? "" : ",") + r;
  p->expires_at = o.at("expires_at").as_int64();
  return p;
}

// Last-Event-ID (or ?last_event_id=): the seq of the last message the client has; 400 when not one.
std::optional<int64_t> last_event_id(const Request& req) {
  std::string id(req.header("last-event-id"));
  if (id.empty()) id = req.query_param("last_event_id").value_or("");
  if (id.empty()) return std::nullopt;
  if (id.size() > 18 || id.find_first_not_of("0123456789") != std::string::npos)
    throw Error::bad_request("Last-Event-ID is not the id of a message this stream sent");
  return std::stoll(id);
}

struct Query {
  int64_t after = 0;
  int64_t limit = 50;
  std::optional<std::string> type, subject, source, since, until;
  bool admin = false;  // the reader holds the admin role
};

db::Result run_query(db::Session& s, const Query& q) {
  std::string sql = "SELECT " + kEventColumns + " FROM observability_events WHERE seq > $1";
  std::vector<db::Value> params{q.after};
  auto add = [&](const char* column, const char* op, const std::optional<std::string>& v) {
    if (!v) return;
    params.emplace_back(*v);
    sql += std::string(" AND ") + column + " " + op + " $" + std::to_string(params.size());
  };
  add("type", "=", q.type);
  add("subject", "=", q.subject);
  add("source", "=", q.source);
  add("time", ">=", q.since);
  add("time", "<", q.until);
  // A reader who is not an admin sees login failures without their subject (event_json): filtering by
  // subject must not tell it which user an attempt was for either.
  if (q.subject && !q.admin) sql += " AND type <> 'keel.auth.login.failed'";
  params.emplace_back(q.limit);
  sql += " ORDER BY seq LIMIT $" + std::to_string(params.size());
  return s.query(sql, params);
}

Query parse_query(const Request& req) {
  Query q;
  q.after = req.query_int("after", 0, INT64_MAX).value_or(0);
  q.limit = req.query_int("limit", 1, 500).value_or(50);
  q.type = req.query_param("type");
  q.subject = req.query_param("subject");
  q.source = req.query_param("source");
  q.since = req.query_time("since");
  q.until = req.query_time("until");
  return q;
}

net::awaitable<void> follow_latest(std::shared_ptr<Events> ev) {
  const auto ex = co_await net::this_coro::executor;
  net::steady_timer timer(ex);
  for (int tick = 0;; ++tick) {
    timer.expires_after(std::chrono::milliseconds(20));
    co_await timer.async_wait(net::use_awaitable);
    try {
      const int64_t latest = co_await ev->db->read([](db::Session& s) {
        auto r = s.query("SELECT COALESCE(MAX(seq), 0) FROM observability_events");
        return r.rows.at(0).int64(0);
      });
      ev->latest.store(latest, std::memory_order_release);
      if (tick % 3000 == 0 && ev->retention_days > 0) {  // about once a minute
        const std::string horizon =
            format_rfc3339(std::chrono::system_clock::now() - std::chrono::hours(24 * ev->retention_days));
        co_await ev->db->write(
            [&](db::Session& s) { s.query("DELETE FROM observability_events WHERE time < $1", {horizon}); });
      }
      if (tick % 500 == 0) {  // about every 10 s: stream tickets nobody redeemed
        const std::string now = now_rfc3339();
        co_await ev->db->write(
            [&](db::Session& s) { s.query("DELETE FROM stream_tickets WHERE expires_at <= $1", {now}); });
      }
    } catch (const std::exception& e) {
      log::warn("events follower failed", {{"error", e.what()}});
    }
  }
}

}  // namespace

namespace {
// The module's routes, each with who may call it. `ev` is null when they are only declared (declare()):
// their handlers are then never called.
void add_routes(http::Router& r, std::shared_ptr<Events> ev) {
  r.add(Method::Get, "/v1/events", Access::admin() | Access::service(), [ev](Request& req) -> Awaitable {
    const module::Principal& who = module::caller(req);
    Query q = parse_query(req);
    q.admin = who.is_admin();
    std::optional<std::chrono::milliseconds> wait;
    if (auto w = req.query_param("wait")) {
      wait = http::parse_duration(*w, std::chrono::seconds(60));
      if (!wait)
        throw Error::validation({{"wait", "must be a duration such as 500ms, 2s or 30s, at most 60s"}});
    }
    const auto ticket = wait ? ev->long_polls->enter(who.subject) : nullptr;
    const auto deadline = std::chrono::steady_clock::now() + wait.value_or(std::chrono::milliseconds(0));
    const auto ex = co_await net::this_coro::executor;
    net::steady_timer timer(ex);
    db::Result rows;
    // On PostgreSQL events are numbered just after they commit: a read first lets the sequencer catch up,
    // so it sees every event committed before it was asked (read-your-writes for the event log).
    if (module::Numbering* seq = ev->outbox->numbering())
      co_await seq->catch_up(std::chrono::steady_clock::now() + std::chrono::seconds(2));
    for (;;) {
      rows = co_await ev->db->read([&](db::Session& s) { return run_query(s, q); });
      if (!rows.empty() || !wait || std::chrono::steady_clock::now() >= deadline) break;
      // Nothing yet: sleep until a newer event is committed (or the wait ends), then look again.
      const int64_t seen = ev->latest.load(std::memory_order_acquire);
      while (ev->latest.load(std::memory_order_acquire) <= std::max(seen, q.after) &&
             std::chrono::steady_clock::now() < deadline) {
        timer.expires_after(std::chrono::milliseconds(10));
        co_await timer.async_wait(net::use_awaitable);
      }
    }
    json::array items;
    int64_t next_after = q.after;
    for (const auto& r : rows.rows) {
      items.push_back(event_json(r, who.is_admin(), owns(r, who.user_id)));
      next_after = r.int64(kEvent["seq"]);
    }
    co_return Response::json(200, json::object{{"items", std::move(items)}, {"next_after", next_after}});
  });

  r.add(Method::Post, "/v1/events", Access::service() | Access::admin(), [ev](Request& req) -> Awaitable {
    const module::Principal& who = module::caller(req);
    auto body = http::parse_json_object(req);
    http::Validator v(body);
    module::NewEvent e;
    e.type = v.required_string("type", 1, 256);
    e.source = v.required_string("source", 1, 512);
    e.subject = v.optional_string("subject", 1, 256).value_or("");
    // In any case: a reader filtering or trusting by type must not be handed "KEEL.auth..." as keel's own.
    if (e.type.size() >= 5 && std::equal(e.type.begin(), e.type.begin() + 5, "keel.", [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) == b;
        }))
      v.fail("type", "the keel. prefix is reserved for keel's own events");
    if (e.type.find_first_of(" \t\r\n") != std::string::npos) v.fail("type", "must not contain whitespace");
    if (auto it = body.find("data"); it != body.end()) {
      if (http::contains_nul(it->value()))
        v.fail("data", "must not contain NUL characters");
      else if (json::serialize(it->value()).size() > 65536)
        v.fail("data", "must be at most 64 KiB of JSON");
      else
        e.data = it->value();
    }
    for (const auto& kv : body)
      if (kv.key() != "type" && kv.key() != "source" && kv.key() != "subject" && kv.key() != "data" &&
          kv.key() != "specversion" && kv.key() != "datacontenttype" && kv.key() != "id" &&
          kv.key() != "time")
        v.fail(std::string(kv.key()), "is not a CloudEvents attribute keel stores");
    v.check();
    e.traceparent = req.trace.traceparent();
    // With an Idempotency-Key the event and the key's record commit together, and a replay answers as the
    // first post did. On PostgreSQL the number comes after commit (the sequencer's next round, milliseconds),
    // so the stored answer may lack it: it is filled in on the way out, first time or replayed.
    // Named first: no temporaries inside the co_await (README, "Developing").
    const auto idempotency = module::Idempotency::of(req, "events:" + who.subject);
    const auto event_of = [&](const module::Appended& a) {
      return json::object{{"id", a.id},
                          {"seq", a.seq != 0 ? json::value(a.seq) : json::value(nullptr)},
                          {"specversion", "1.0"},
                          {"type", e.type},
                          {"source", e.source},
                          {"subject", e.subject.empty() ? json::value(nullptr) : json::value(e.subject)},
                          {"time", a.time},
                          {"datacontenttype", "application/json"},
                          {"data", e.data},
                          {"traceparent", e.traceparent}};
    };
    Response answer;
    json::object out;
    if (ev->group && !idempotency) {
      const module::Appended a = co_await ev->group->write(e);
      answer.status = 201;
      out = event_of(a);
    } else {
      const std::function<Response(db::Session&)> create = [&](db::Session& s) {
        return Response::json(201, event_of(ev->outbox->append(s, e)));
      };
      answer = co_await module::create_once(*ev->db, idempotency, create);
      out = json::parse(answer.body).as_object();  // first time or replayed
    }
    if (module::Numbering* q = ev->outbox->numbering(); out["seq"].is_null() && q) {
      const std::string id(out["id"].as_string());
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      const int64_t seq = co_await q->number_of(id, deadline);
      if (seq != 0) out["seq"] = seq;
    }
    if (out["seq"].is_int64()) {
      const int64_t seq = out["seq"].as_int64();
      int64_t cur = ev->latest.load();
      while (seq > cur && !ev->latest.compare_exchange_weak(cur, seq)) {
      }
    }
    answer.body = json::serialize(out);
    co_return answer;
  });
}
}  // namespace

namespace {
// GET /v1/stream: public at the router, which cannot read a stream ticket; the handler authenticates.
void add_stream_routes(http::Router& r, std::shared_ptr<Events> ev) {
  r.add(
      Method::Post, "/v1/stream/tickets", Access::user() | Access::admin() | Access::service(),
      [ev](Request& req) -> Awaitable {
        const std::string ticket = random_hex(32);
        const std::string id = sha256_hex(ticket);
        const std::string principal = principal_json(module::caller(req));
        const auto now = std::chrono::system_clock::now();
        co_await ev->db->write([&](db::Session& s) {
          s.query(
              "INSERT INTO stream_tickets (id, principal, expires_at, created_at, updated_at) "
              "VALUES ($1, $2, $3, $4, $4)",
              {id, principal, format_rfc3339(now + kTicketLife), format_rfc3339(now)});
        });
        co_return Response::json(201, json::object{{"ticket", ticket}, {"expires_in", kTicketLife.count()}});
      });

  r.add(Method::Get, "/v1/stream", Access::anyone(), [ev](Request& req) -> Awaitable {
    const std::optional<int64_t> last = last_event_id(req);  // checked before a ticket is spent on it
    const std::string topic_list = req.query_param("topics").value_or("");
    std::shared_ptr<const module::Principal> who;
    if (auto ticket = req.query_param("ticket")) {
      Topics::parse(topic_list, nullptr);  // the syntax too: a typo costs the client no ticket
      // Single use: redeeming deletes it, so a ticket seen in a log or a history is worth nothing.
      const std::string id = sha256_hex(*ticket);
      const std::string now = now_rfc3339();
      const db::Result r = co_await ev->db->write([&](db::Session& s) {
        return s.query("DELETE FROM stream_tickets WHERE id = $1 AND expires_at > $2 RETURNING principal",
                       {id, now});
      });
      if (r.empty()) throw Error::unauthorized("the stream ticket is unknown, used or expired");
      who = principal_of(r.rows[0].text(0));
      if (!ev->authenticator->still_valid(*who))
        throw Error::unauthorized("the session behind the stream ticket has ended");
    } else {
      who = ev->authenticator->authenticate_shared(req);
    }
    Topics topics = Topics::parse(topic_list, who.get());
    // Each stream may hold up to 4 MiB for a client that does not read: a token holds a bounded number.
    auto slot = ev->streams->enter(who->subject, "open streams");
    const LogBounds bounds = co_await ev->db->read(log_bounds);
    // A last id older than the log keeps missed events nobody can give; one past its end was never given
    // here (another database, or one restored from a backup). Either gets resync and goes on from now.
    // Without one, the stream starts at the log's end as it is now (the hub, idle, may know an older end).
    const bool resync = last && (*last < bounds.first_kept - 1 || *last > bounds.last_given);
    const int64_t from = last && !resync ? *last : bounds.last_given;
    const auto ex = co_await net::this_coro::executor;  // named first: no temporaries around a co_await
    auto sub = ev->hub->join(std::move(topics), std::move(who), ex, from);
    Response res;
    res.status = 200;
    res.content_type = "text/event-stream";
    res.headers.emplace_back("Cache-Control", "no-store");
    res.headers.emplace_back("X-Accel-Buffering", "no");  // a proxy in front must not hold messages back
    res.stream =
        std::make_shared<StreamBody>(*ev->hub, *ev->db, std::move(sub), from, resync, std::move(slot));
    co_return res;
  });
}
}  // namespace

void declare(http::Router& router) {
  add_routes(router, nullptr);
  add_stream_routes(router, nullptr);
}

void install(ModuleContext& ctx) {
  auto ev = std::make_shared<Events>();
  ev->db = &ctx.db;
  ev->outbox = &ctx.outbox;
  ev->long_polls = std::make_unique<http::LongPolls>(ctx.config.long_polls_per_caller);
  ev->streams =
      std::make_unique<http::KeyedSlots>(static_cast<int>(settings::streams_per_caller.integer(ctx.config)));
  ev->retention_days = settings::retention_days.integer(ctx.config);
  ev->latest = ctx.db.read_sync([](db::Session& s) {
    return s.query("SELECT COALESCE(MAX(seq), 0) FROM observability_events").rows.at(0).int64(0);
  });
  if (ctx.db.dialect() == db::Dialect::Postgres)
    ev->group = std::make_shared<db::GroupWrite<module::NewEvent, module::Appended>>(
        ctx.db, [outbox = &ctx.outbox](db::Session& s, const std::vector<module::NewEvent>& events) {
          return outbox->append_all(s, events);
        });
  net::co_spawn(ctx.io, follow_latest(ev), net::detached);
  ev->authenticator = &ctx.authenticator;
  ev->hub = std::make_unique<Hub>(ctx.db, ctx.authenticator);
  ev->hub->load_sync();
  net::co_spawn(ctx.io, ev->hub->run(std::chrono::milliseconds(10)), net::detached);
  ctx.on_stopping = [ev] { ev->hub->stop(); };

  add_routes(ctx.router, ev);
  add_stream_routes(ctx.router, ev);
}

}  // namespace keel::events
