#include "keel/memory/routes.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include "keel/core/config.hpp"
#include "keel/core/ids.hpp"
#include "keel/core/log.hpp"
#include "keel/core/time.hpp"
#include "keel/http/json_body.hpp"
#include "keel/http/pagination.hpp"
#include "keel/http/router.hpp"
#include "keel/memory/background.hpp"
#include "keel/memory/bodies.hpp"
#include "keel/memory/search.hpp"
#include "keel/memory/settings.hpp"
#include "keel/memory/state.hpp"
#include "keel/memory/store.hpp"
#include "keel/module/caller.hpp"
#include "keel/module/idempotency.hpp"
#include "keel/module/module.hpp"

namespace keel::memory {

namespace json = boost::json;
namespace net = boost::asio;
using http::Access;
using http::Method;
using http::Request;
using http::Response;
using Awaitable = net::awaitable<Response>;

namespace {

Response memory_response(int status, const db::Row& row) {
  Response r = Response::json(status, memory_json(row));
  r.headers.emplace_back("ETag", fmt::format("\"{}\"", row.int64(kMemory["version"])));
  return r;
}

VectorSettings vector_settings(const Config& c) {
  VectorSettings v;
  v.hnsw_threshold = static_cast<size_t>(settings::hnsw_threshold.integer(c));
  v.m = static_cast<size_t>(settings::hnsw_m.integer(c));
  v.ef_construction = static_cast<size_t>(settings::hnsw_ef_construction.integer(c));
  v.ef_search = static_cast<size_t>(settings::hnsw_ef_search.integer(c));
  return v;
}

}  // namespace

namespace {
// The module's routes, each with who may call it. `m` is null when they are only declared (declare()):
// their handlers are then never called.
// Whose memories a read is of: the caller's own, or the user an admin names (CONTRACT.md, "admin console").
std::string read_target(const module::Principal& who, const std::optional<std::string>& user_id) {
  if (!user_id || *user_id == who.user_id) return who.user_id;
  if (!who.is_admin()) throw Error::forbidden("reading another user's memories needs the admin role");
  if (!is_uuid(*user_id)) throw Error::validation({{"user_id", "must be a user id"}});
  return *user_id;
}

// An admin's read of another user's memories is on the record: keel.memory.admin_read, about that user,
// committed before the answer goes out.
// `detail` says what was read ("read": list, search, memory or history). Callers name their arguments first:
// temporaries inside a co_await trip GCC 12 (auth/passwords.hpp).
net::awaitable<void> record_admin_read(const Memories& m, const module::Principal& who,
                                       const std::string& owner, json::object detail,
                                       std::string traceparent) {
  detail["user_id"] = owner;
  detail["by"] = who.user_id;
  co_await m.db->write([&](db::Session& s) {
    m.outbox->append(s, {"keel.memory.admin_read", "/keel/memory", owner, std::move(detail), traceparent});
  });
}

void add_routes(http::Router& r, std::shared_ptr<Memories> m) {
  r.add(Method::Post, "/v1/memories", Access::user(), [m](Request& req) -> Awaitable {
    const std::string& user_id = module::caller(req).user_id;
    const auto body = http::parse_json_object(req);
    http::Validator v(body);
    NewMemory nm;
    nm.fields.content = read_content(v, body, true).value_or("");
    nm.ns = read_namespace(v, body).value_or("default");
    nm.fields.metadata = read_metadata(v, body).value_or("{}");
    nm.fields.tags = read_tags(v, body).value_or(std::vector<std::string>{});
    if (auto e = read_embedding(v, body)) nm.fields.embedding = std::move(*e);
    if (auto t = read_ttl(v, body)) nm.fields.expires_at = std::move(*t);
    v.check();
    nm.id = fast_uuid_v7();
    nm.user_id = user_id;
    nm.now = now_rfc3339();
    nm.traceparent = req.trace.traceparent();
    // Named first: no temporaries inside the co_await (README, "Developing").
    const auto idempotency = module::Idempotency::of(req, "memory:" + user_id);
    const std::function<Response(db::Session&)> create = [&](db::Session& s) {
      return memory_response(201, insert_memory(s, *m->outbox, nm));
    };
    co_return co_await module::create_once(*m->db, idempotency, create);
  });

  r.add(Method::Get, "/v1/memories", Access::user(), [m](Request& req) -> Awaitable {
    const module::Principal& who = module::caller(req);
    const std::string user_id = read_target(who, req.query_param("user_id"));
    const http::Page page = http::parse_page(req);
    if (page.after && !is_uuid(*page.after))
      throw Error::bad_request("the cursor is not one this server issued");
    Filters f;
    f.ns = req.query_param("namespace");
    if (f.ns && !valid_namespace(*f.ns))
      throw Error::validation({{"namespace", "must match [a-z0-9._-]{1,64}"}});
    if (auto tag = req.query_param("tag")) f.tags.push_back(*tag);
    const std::string now = now_rfc3339();
    auto rows = co_await m->db->read([&](db::Session& s) {
      std::string sql = std::string("SELECT ") + kColumns + " FROM memories m WHERE m.user_id = $1";
      std::vector<db::Value> params{user_id};
      add_not_expired(now, sql, params);
      add_filters(s.dialect(), f, sql, params);
      if (page.after) {
        params.emplace_back(*page.after);
        sql += " AND m.id < $" + std::to_string(params.size());
      }
      params.emplace_back(int64_t{page.limit});
      return s.query(sql + " ORDER BY m.id DESC LIMIT $" + std::to_string(params.size()), params);
    });
    if (user_id != who.user_id) {
      json::object detail{{"count", static_cast<int64_t>(rows.rows.size())}, {"read", "list"}};
      std::string tp(req.trace.traceparent());
      co_await record_admin_read(*m, who, user_id, std::move(detail), std::move(tp));
    }
    co_return Response::json(200, http::page_of(rows.rows, page, memory_json,
                                                [](const db::Row& row) { return row.text(kMemory["id"]); }));
  });

  r.add(Method::Post, "/v1/memories/search", Access::user(), [m](Request& req) -> Awaitable {
    const module::Principal& who = module::caller(req);
    const auto body = http::parse_json_object(req);
    http::Validator v(body);
    const std::string user_id = read_target(who, v.optional_string("user_id", 1, 64));
    const auto query = v.optional_string("query", 1, 4096);
    std::optional<std::vector<float>> embedding;
    if (auto e = read_embedding(v, body)) embedding = std::move(*e);
    if (embedding) normalize(*embedding);  // cosine: the stored vectors are unit length too
    const Filters f = read_filters(v, body);
    const auto limit = static_cast<size_t>(v.optional_int("limit", 1, 100).value_or(10));
    std::vector<std::string> terms;
    if (query) {
      terms = query_terms(*query);
      if (terms.empty()) v.fail("query", "must contain at least one word");
    }
    if (!query && !embedding && v.ok()) v.fail("query", "a search needs a query, an embedding or both");
    v.check();
    const std::string now = now_rfc3339();
    // Fusion ranks deeper lists than it returns, so a memory found by both ways can climb.
    const size_t depth = (query && embedding) ? std::max<size_t>(limit * 3, 30) : limit;
    auto found = co_await m->db->read([&](db::Session& s) {
      Scored text, vec;
      if (query)
        text = text_search(s, m->terms, m->common_word_rows, user_id, terms, f, now,
                           static_cast<int64_t>(depth));
      if (embedding) vec = vector_search(s, m->index, user_id, *embedding, f, now, depth);
      if (query && embedding) return fuse(text, vec, limit);
      return query ? text : vec;
    });
    if (user_id != who.user_id) {
      json::object detail{{"count", static_cast<int64_t>(found.size())}, {"read", "search"}};
      std::string tp(req.trace.traceparent());
      co_await record_admin_read(*m, who, user_id, std::move(detail), std::move(tp));
    }
    json::array items;
    for (const auto& [row, score] : found)
      items.push_back(json::object{{"memory", memory_json(row)}, {"score", score}});
    co_return Response::json(200, json::object{{"items", std::move(items)}});
  });

  r.add(Method::Get, "/v1/memories/{id}", Access::user(), [m](Request& req) -> Awaitable {
    const module::Principal& who = module::caller(req);
    const std::string& id = req.param("id");
    if (!is_uuid(id)) throw Error::not_found("no such memory");
    const std::string now = now_rfc3339();
    // An admin reads any user's memory; the memory's owner follows its columns.
    static const std::string owned =
        "SELECT " + kColumns + " FROM memories m WHERE m.id = $1 AND m.user_id = $2";
    static const std::string any = "SELECT " + kWithOwner.list("m") + " FROM memories m WHERE m.id = $1";
    std::string sql = who.is_admin() ? any : owned;
    std::vector<db::Value> params{id};
    if (!who.is_admin()) params.emplace_back(who.user_id);
    add_not_expired(now, sql, params);
    const db::Result rows = co_await m->db->query_read(sql, params);
    if (rows.empty()) throw Error::not_found("no such memory");
    if (who.is_admin()) {
      const std::string& owner = rows.rows[0].text(kWithOwner["user_id"]);
      if (owner != who.user_id) {
        json::object detail{{"id", id}, {"read", "memory"}};
        std::string tp(req.trace.traceparent());
        co_await record_admin_read(*m, who, owner, std::move(detail), std::move(tp));
      }
    }
    co_return memory_response(200, rows.rows[0]);
  });

  r.add(Method::Patch, "/v1/memories/{id}", Access::user(), [m](Request& req) -> Awaitable {
    const std::string& user_id = module::caller(req).user_id;
    const std::string& id = req.param("id");
    if (!is_uuid(id)) throw Error::not_found("no such memory");
    const auto body = http::parse_json_object(req);
    http::Validator v(body);
    Change c;
    if (body.contains("namespace"))
      v.fail("namespace", "cannot be changed; create the memory in the other namespace");
    c.content = read_content(v, body, false);
    if (body.contains("content") && body.at("content").is_null()) v.fail("content", "cannot be null");
    c.metadata = read_metadata(v, body);
    c.tags = read_tags(v, body);
    if (auto e = read_embedding(v, body)) {
      c.set_embedding = true;
      c.embedding = std::move(*e);
    }
    if (auto t = read_ttl(v, body)) {
      c.set_expiry = true;
      c.expires_at = std::move(*t);
    }
    v.check();
    const std::string if_match(req.header("If-Match"));
    const std::string now = now_rfc3339();
    const std::string tp(req.trace.traceparent());
    auto row = co_await m->db->write([&](db::Session& s) {
      return update_memory(s, *m->outbox, user_id, id, c, if_match, now, tp, m->versions_kept);
    });
    co_return memory_response(200, row);
  });

  r.add(Method::Delete, "/v1/memories/{id}", Access::user(), [m](Request& req) -> Awaitable {
    const std::string& user_id = module::caller(req).user_id;
    const std::string& id = req.param("id");
    if (!is_uuid(id)) throw Error::not_found("no such memory");
    const std::string now = now_rfc3339();
    const std::string tp(req.trace.traceparent());
    auto gone = co_await m->db->write(
        [&](db::Session& s) { return delete_memory(s, *m->outbox, user_id, id, now, tp); });
    if (!gone) throw Error::not_found("no such memory");
    if (gone->second) m->index.remove(user_id, gone->first, id);
    co_return Response::no_content();
  });

  r.add(Method::Get, "/v1/memories/{id}/history", Access::user(), [m](Request& req) -> Awaitable {
    const module::Principal& who = module::caller(req);
    const std::string& id = req.param("id");
    if (!is_uuid(id)) throw Error::not_found("no such memory");
    const http::Page page = http::parse_page(req);
    std::optional<int64_t> before;
    if (page.after) {
      int64_t n = 0;
      auto [end, ec] = std::from_chars(page.after->data(), page.after->data() + page.after->size(), n);
      if (ec != std::errc() || end != page.after->data() + page.after->size() || n < 1)
        throw Error::bad_request("the cursor is not one this server issued");
      before = n;
    }
    const std::string now = now_rfc3339();
    std::string owner;
    auto rows = co_await m->db->read([&](db::Session& s) -> std::optional<db::Result> {
      // An admin reads any user's history.
      std::string sql = "SELECT m.user_id FROM memories m WHERE m.id = $1";
      std::vector<db::Value> params{id};
      if (!who.is_admin()) {
        params.emplace_back(who.user_id);
        sql += " AND m.user_id = $2";
      }
      add_not_expired(now, sql, params);
      const auto found = s.query(sql, params);
      if (found.empty()) return std::nullopt;
      owner = found.rows[0].text(0);
      std::vector<db::Value> hp{id, int64_t{page.limit}, before.value_or(INT64_MAX)};
      return s.query(
          "SELECT v.memory_id, v.namespace, v.content, v.metadata, v.tags, v.embedding_dims, v.version, "
          "m.created_at, "
          "v.updated_at, v.expires_at FROM memory_versions v JOIN memories m ON m.id = v.memory_id WHERE "
          "v.memory_id = $1 AND v.version < $3 ORDER BY v.version DESC LIMIT $2",
          hp);
    });
    if (!rows) throw Error::not_found("no such memory");
    if (owner != who.user_id) {
      json::object detail{{"id", id}, {"read", "history"}};
      std::string tp(req.trace.traceparent());
      co_await record_admin_read(*m, who, owner, std::move(detail), std::move(tp));
    }
    co_return Response::json(200, http::page_of(rows->rows, page, memory_json, [](const db::Row& row) {
                               return std::to_string(row.int64(kMemory["version"]));
                             }));
  });
}
}  // namespace

void declare(http::Router& router) { add_routes(router, nullptr); }

void install(ModuleContext& ctx) {
  auto m = std::make_shared<Memories>(vector_settings(ctx.config));
  m->db = &ctx.db;
  m->outbox = &ctx.outbox;
  m->common_word_rows = settings::common_word_rows.integer(ctx.config);
  m->sweep_interval = std::chrono::milliseconds(settings::sweep_interval_ms.integer(ctx.config));
  m->versions_kept = settings::versions_kept.integer(ctx.config);
  m->versions_max_age_days = settings::versions_max_age_days.integer(ctx.config);
  net::co_spawn(ctx.io, sweep(m), net::detached);
  net::co_spawn(ctx.io, load_spaces(m), net::detached);
  std::weak_ptr<Memories> weak = m;
  ctx.extra_metrics = [weak](std::string& out) {
    auto mm = weak.lock();
    if (!mm) return;
    const auto st = mm->index.stats();
    out += "# HELP keel_memory_vectors Vectors in this process's index.\n# TYPE keel_memory_vectors gauge\n";
    out += "keel_memory_vectors " + std::to_string(st.vectors) + "\n";
    out +=
        "# HELP keel_memory_vectors_pending Vectors of large spaces not yet in their HNSW graph (searched "
        "exactly meanwhile).\n# TYPE keel_memory_vectors_pending gauge\n";
    out += "keel_memory_vectors_pending " + std::to_string(st.pending) + "\n";
    out +=
        "# HELP keel_memory_vector_spaces Vector spaces (user and namespace) in this process's index.\n"
        "# TYPE keel_memory_vector_spaces gauge\n";
    out += "keel_memory_vector_spaces " + std::to_string(st.spaces) + "\n";
  };
  add_routes(ctx.router, m);
}

}  // namespace keel::memory
