#include "keel/auth/routes.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>
#include <thread>

#include "keel/auth/admin.hpp"
#include "keel/auth/keys.hpp"
#include "keel/auth/service.hpp"
#include "keel/core/config.hpp"
#include "keel/core/ids.hpp"
#include "keel/core/log.hpp"
#include "keel/core/time.hpp"
#include "keel/http/json_body.hpp"
#include "keel/http/pagination.hpp"
#include "keel/http/router.hpp"
#include "keel/module/caller.hpp"
#include "keel/module/module.hpp"

namespace keel::auth {

namespace json = boost::json;
using http::Access;
using http::Method;
using http::Request;
using http::Response;
using Awaitable = boost::asio::awaitable<Response>;

namespace {

struct Auth {
  AuthSettings settings;
  std::unique_ptr<PasswordHasher> hasher;
  std::unique_ptr<TokenIssuer> issuer;
  std::unique_ptr<AuthService> service;
  std::unique_ptr<UserAdmin> admin;
};

ClientInfo client_of(const Request& req) {
  return {req.remote_ip, std::string(req.header("user-agent")), std::string(req.trace.traceparent())};
}

NewUser new_user_from(const json::object& body) {
  http::Validator v(body);
  NewUser u;
  u.email = v.required_string("email", 1, 254);
  u.password = v.required_string("password", 0, 1 << 20);
  u.display_name = v.optional_string("display_name", 0, 200);
  v.check();
  return u;
}

}  // namespace

namespace {
// Once a minute: sessions that ended more than `kept_days` ago go, with their refresh tokens (cascade).
boost::asio::awaitable<void> forget_ended_sessions(db::Database& db, int64_t kept_days) {
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
  for (;;) {
    timer.expires_after(std::chrono::minutes(1));
    co_await timer.async_wait(boost::asio::use_awaitable);
    try {
      const std::string horizon =
          format_rfc3339(std::chrono::system_clock::now() - std::chrono::hours(24 * kept_days));
      for (;;) {
        const int64_t n = co_await db.write([&](db::Session& s) {
          return s
              .query(
                  "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE expires_at < $1 UNION "
                  "SELECT id FROM sessions WHERE revoked_at < $1 LIMIT 1000)",
                  {horizon})
              .affected;
        });
        if (n < 1000) break;
      }
    } catch (const std::exception& e) {
      log::warn("forgetting ended sessions failed", {{"error", e.what()}});
    }
  }
}
}  // namespace

namespace {
// The module's routes, each with who may call it. `a` is null when they are only declared (declare()):
// their handlers are then never called.
void add_routes(http::Router& r, std::shared_ptr<Auth> a, const std::string& base) {
  r.add(Method::Post, "/v1/auth/register", Access::anyone(), [a](Request& req) -> Awaitable {
    const NewUser u = new_user_from(http::parse_json_object(req));
    const ClientInfo client = client_of(req);
    const json::object body = co_await a->service->register_user(u, client);
    co_return Response::json(201, body);
  });
  r.add(Method::Post, "/v1/auth/login", Access::anyone(), [a](Request& req) -> Awaitable {
    auto body = http::parse_json_object(req);
    http::Validator v(body);
    // Any email gets the same 401 as a wrong password, however long.
    auto email = v.required_string("email", 1, 4096);
    auto password = v.required_string("password", 0, 1 << 20);
    v.check();
    const ClientInfo client = client_of(req);
    const json::object result = co_await a->service->login(email, password, client);
    co_return Response::json(200, result);
  });
  r.add(Method::Post, "/v1/auth/refresh", Access::anyone(), [a](Request& req) -> Awaitable {
    auto body = http::parse_json_object(req);
    http::Validator v(body);
    auto token = v.required_string("refresh_token", 1, 512);
    v.check();
    const ClientInfo client = client_of(req);
    const json::object result = co_await a->service->refresh(token, client);
    co_return Response::json(200, result);
  });
  r.add(Method::Post, "/v1/auth/logout", Access::user(), [a](Request& req) -> Awaitable {
    const Principal& who = module::caller(req);
    const ClientInfo client = client_of(req);
    co_await a->service->logout(who, client);
    co_return Response::no_content();
  });
  r.add(Method::Post, "/v1/auth/logout-all", Access::user(), [a](Request& req) -> Awaitable {
    const Principal& who = module::caller(req);
    const ClientInfo client = client_of(req);
    co_await a->service->logout_all(who, client);
    co_return Response::no_content();
  });
  r.add(Method::Get, "/v1/auth/me", Access::user(), [a](Request& req) -> Awaitable {
    const Principal& who = module::caller(req);
    const json::object user = co_await a->service->me(who);
    co_return Response::json(200, user);
  });
  r.add(Method::Patch, "/v1/auth/me", Access::user(), [a](Request& req) -> Awaitable {
    const Principal& who = module::caller(req);
    auto body = http::parse_json_object(req);
    http::Validator v(body);
    std::optional<std::optional<std::string>> display_name;
    if (body.contains("display_name")) display_name = v.optional_string("display_name", 0, 200);
    auto metadata = v.optional_object("metadata");
    if (metadata && json::serialize(*metadata).size() > 16384)
      v.fail("metadata", "must be at most 16 KiB of JSON");
    for (const auto& kv : body)
      if (kv.key() != "display_name" && kv.key() != "metadata")
        v.fail(std::string(kv.key()), "is not a field you can change");
    v.check();
    const json::object user = co_await a->service->update_me(who, display_name, metadata);
    co_return Response::json(200, user);
  });
  r.add(Method::Post, "/v1/auth/password", Access::user(), [a](Request& req) -> Awaitable {
    const Principal& who = module::caller(req);
    auto body = http::parse_json_object(req);
    http::Validator v(body);
    auto current = v.required_string("current_password", 0, 1 << 20);
    auto next = v.required_string("new_password", 0, 1 << 20);
    v.check();
    const ClientInfo client = client_of(req);
    co_await a->service->change_password(who, current, next, client);
    co_return Response::no_content();
  });
  r.add(Method::Get, "/v1/auth/sessions", Access::user(), [a](Request& req) -> Awaitable {
    const Principal& who = module::caller(req);
    auto page = http::parse_page(req);
    auto [items, last] =
        co_await a->service->list_sessions(who.user_id, who.session_id, page.limit, page.after);
    co_return Response::json(200, http::page_body(std::move(items), page, last));
  });
  r.add(Method::Delete, "/v1/auth/sessions/{id}", Access::user(), [a](Request& req) -> Awaitable {
    const Principal& who = module::caller(req);
    const ClientInfo client = client_of(req);
    co_await a->service->revoke_session(who.user_id, req.param("id"), "revoked_by_user", client);
    co_return Response::no_content();
  });
  r.add(Method::Get, "/v1/auth/users", Access::admin(), [a](Request& req) -> Awaitable {
    auto page = http::parse_page(req);
    auto [items, last] = co_await a->admin->list(page.limit, page.after, req.query_param("query"));
    co_return Response::json(200, http::page_body(std::move(items), page, last));
  });
  r.add(Method::Get, "/v1/auth/users/{id}", Access::admin(), [a](Request& req) -> Awaitable {
    co_return Response::json(200, co_await a->admin->get(req.param("id")));
  });
  r.add(Method::Patch, "/v1/auth/users/{id}", Access::admin(), [a](Request& req) -> Awaitable {
    const Principal& who = module::caller(req);
    const json::object body = http::parse_json_object(req);
    std::optional<bool> disabled;
    std::optional<std::vector<std::string>> roles;
    std::vector<FieldError> errors;
    for (const auto& [key, value] : body) {
      if (key == "disabled" && value.is_bool()) {
        disabled = value.as_bool();
      } else if (key == "roles" && value.is_array() && value.as_array().size() <= 8) {
        roles.emplace();
        for (const auto& r : value.as_array())
          if (r.is_string())
            roles->emplace_back(r.as_string());
          else
            errors.push_back({"roles", "must be a list of role names"});
      } else {
        errors.push_back({std::string(key), key == "disabled" ? "must be true or false"
                                            : key == "roles"  ? "must be a list of role names"
                                                              : "is not a field an admin sets"});
      }
    }
    if (!disabled && !roles && errors.empty()) errors.push_back({"disabled", "give disabled, roles or both"});
    if (!errors.empty()) throw Error::validation(std::move(errors));
    co_return Response::json(
        200, co_await a->admin->update(who, req.param("id"), disabled, std::move(roles), client_of(req)));
  });
  r.add(Method::Delete, "/v1/auth/users/{id}/sessions", Access::admin(), [a](Request& req) -> Awaitable {
    co_await a->admin->end_sessions(module::caller(req), req.param("id"), client_of(req));
    co_return Response::no_content();
  });
  r.add(Method::Get, "/v1/auth/users/{id}/sessions", Access::admin(), [a](Request& req) -> Awaitable {
    auto page = http::parse_page(req);
    const std::string& id = req.param("id");
    co_await a->admin->get(id);  // 404 for no such user, rather than an empty page
    auto [items, last] = co_await a->service->list_sessions(id, "", page.limit, page.after);
    co_return Response::json(200, http::page_body(std::move(items), page, last));
  });
  r.add(Method::Delete, "/v1/auth/users/{id}/sessions/{session_id}", Access::admin(),
        [a](Request& req) -> Awaitable {
          const std::string& id = req.param("id");
          if (!is_uuid(id)) throw Error::not_found("no such session");
          co_await a->service->revoke_session(id, req.param("session_id"), "revoked_by_admin", client_of(req),
                                              module::caller(req).user_id);
          co_return Response::no_content();
        });
  r.add(Method::Get, "/v1/auth/setup", Access::anyone(), [a](Request&) -> Awaitable {
    const bool has_admin = co_await a->admin->has_admin();
    co_return Response::json(200, json::object{{"has_admin", has_admin}});
  });
  r.add(Method::Get, "/.well-known/jwks.json", Access::anyone(), [a](Request&) -> Awaitable {
    const json::object keys = co_await a->service->jwks();
    Response res = Response::json(200, keys);
    res.headers.emplace_back("Cache-Control", "public, max-age=60");
    co_return res;
  });
  // From public_url, never from the request's Host: a forged Host must not point clients elsewhere.
  r.add(Method::Get, "/.well-known/openid-configuration", Access::anyone(), [a, base](Request&) -> Awaitable {
    co_return Response::json(
        200, json::object{{"issuer", a->settings.issuer},
                          {"jwks_uri", base + "/.well-known/jwks.json"},
                          {"token_endpoint", base + "/v1/auth/login"},
                          {"userinfo_endpoint", base + "/v1/auth/me"},
                          {"revocation_endpoint", base + "/v1/auth/logout"},
                          {"grant_types_supported", json::array{"password", "refresh_token"}},
                          {"response_types_supported", json::array{"token"}},
                          {"subject_types_supported", json::array{"public"}},
                          {"id_token_signing_alg_values_supported", json::array{alg_name(a->settings.alg)}},
                          {"token_endpoint_auth_methods_supported", json::array{"none"}},
                          {"claims_supported",
                           json::array{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "sid", "roles"}}});
  });
}
}  // namespace

void declare(http::Router& router) { add_routes(router, nullptr, std::string()); }

void install(ModuleContext& ctx) {
  auto a = std::make_shared<Auth>();
  a->settings = AuthSettings::from(ctx.config);
  const size_t threads = a->settings.hash_threads > 0 ? a->settings.hash_threads
                                                      : std::max(1u, std::thread::hardware_concurrency());
  a->hasher = std::make_unique<PasswordHasher>(a->settings.argon2_memory_kib, a->settings.argon2_iterations,
                                               threads, a->settings.hash_queue);
  a->issuer = std::make_unique<TokenIssuer>(ctx.db, a->settings, fleet_master_key(ctx.db, a->settings));
  a->issuer->load_sync();
  ctx.authenticator.reload();  // sees the key just created
  a->service = std::make_unique<AuthService>(ctx.db, a->settings, *a->issuer, ctx.authenticator, *a->hasher,
                                             ctx.outbox, ctx.hooks);
  a->admin = std::make_unique<UserAdmin>(ctx.db, ctx.outbox, ctx.authenticator);
  a->service->rekey_emails_sync();
  boost::asio::co_spawn(ctx.io, a->issuer->run(), boost::asio::detached);
  boost::asio::co_spawn(ctx.io, forget_ended_sessions(ctx.db, a->settings.ended_sessions_kept_days),
                        boost::asio::detached);

  add_routes(ctx.router, a, ctx.config.public_base());
}

}  // namespace keel::auth
