#include "keel/registry/routes.hpp"

#include <algorithm>
#include <boost/algorithm/string/predicate.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <regex>
#include <set>

#include "keel/core/config.hpp"
#include "keel/core/log.hpp"
#include "keel/http/client.hpp"
#include "keel/http/duration.hpp"
#include "keel/http/json_body.hpp"
#include "keel/http/long_polls.hpp"
#include "keel/http/router.hpp"
#include "keel/module/caller.hpp"
#include "keel/module/module.hpp"
#include "keel/module/registry_view.hpp"
#include "keel/registry/repository.hpp"
#include "keel/registry/settings.hpp"

namespace keel::registry {

namespace json = boost::json;
namespace net = boost::asio;
using http::Access;
using http::Method;
using http::Request;
using http::Response;
using Awaitable = net::awaitable<Response>;
using module::path_under;

namespace {
bool valid_path(const std::string& p) {
  return !p.empty() && p.front() == '/' && p.find_first_of(" ?#\t\r\n") == std::string::npos;
}
}  // namespace

// A route prefix is one normalized path (CONTRACT.md, "Safety rules"): no empty, `.` or `..` segment, no
// percent-encoding, no trailing slash; the gateway matches it against normalized request paths.
bool normalized_prefix(const std::string& p) {
  if (!valid_path(p) || p.find('%') != std::string::npos || p.find('\\') != std::string::npos) return false;
  if (p == "/") return true;
  if (p.back() == '/') return false;
  size_t start = 1;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string::npos) end = p.size();
    const std::string_view seg(p.data() + start, end - start);
    if (seg.empty() || seg == "." || seg == "..") return false;
    start = end + 1;
  }
  return true;
}

// "METHOD /pattern": a method keel routes, and a normalized path whose segments are literal or a whole
// "{name}" parameter, at or below one of `prefixes`.
bool valid_public_route(const std::string& route, const std::vector<std::string>& prefixes) {
  const auto space = route.find(' ');
  if (space == std::string::npos) return false;
  const std::string method = route.substr(0, space), pattern = route.substr(space + 1);
  static const std::set<std::string> kMethods{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
  if (!kMethods.contains(method) || !normalized_prefix(pattern) || pattern == "/") return false;
  for (size_t start = 1; start < pattern.size();) {
    size_t end = pattern.find('/', start);
    if (end == std::string::npos) end = pattern.size();
    const std::string_view seg(pattern.data() + start, end - start);
    const auto braces = seg.find_first_of("{}");
    if (braces != std::string_view::npos &&
        !(seg.size() > 2 && seg.front() == '{' && seg.back() == '}' &&
          seg.substr(1, seg.size() - 2).find_first_of("{}") == std::string_view::npos))
      return false;
    start = end + 1;
  }
  return std::any_of(prefixes.begin(), prefixes.end(),
                     [&](const std::string& prefix) { return path_under(pattern, prefix); });
}

namespace {

struct Settings {
  int64_t check_interval_ms = 1000;
  int64_t grace_seconds = 30;
  int64_t default_ttl_seconds = 30;
};

struct Registry {
  db::Database* db;
  module::RegistryView* index;
  const module::Outbox* outbox;
  const std::vector<ModuleSpec>* modules;  // keel's own, whose names and prefixes nobody else registers
  Settings settings;
  std::optional<http::AddressPolicy> policy;    // where instance URLs may point (http/address_policy.hpp)
  std::unique_ptr<http::LongPolls> long_polls;  // blocking queries each token may hold
  std::set<std::string> checking;               // instances with a health check in flight (I/O thread 0 only)
};

const std::regex kModuleName("[a-z][a-z0-9-]{0,62}");
const std::regex kInstanceId("[A-Za-z0-9._-]{1,128}");

void check_names(const std::string& module, const std::string& instance_id) {
  std::vector<FieldError> errors;
  if (!std::regex_match(module, kModuleName)) errors.push_back({"name", "must match [a-z][a-z0-9-]{0,62}"});
  if (!instance_id.empty() && !std::regex_match(instance_id, kInstanceId))
    errors.push_back({"instance_id", "must match [A-Za-z0-9._-]{1,128}"});
  if (!errors.empty()) throw Error::validation(std::move(errors));
}

// Writes need the admin role or a service token bound to this module.
void require_writer(const Registry& reg, const module::Principal& who, const std::string& module) {
  // keel's processes register their own modules in the database; over HTTP those names are nobody's, so
  // nobody can stand in for auth or memory and receive users' tokens and passwords through the gateway.
  if (keel::module::named(*reg.modules, module))
    throw Error::forbidden("'" + module +
                           "' is one of keel's own modules; only keel's processes register it");
  if (who.is_admin()) return;
  if (who.is_service() && who.service == module) return;
  throw Error::forbidden("this service token may write only the '" + who.service + "' module");
}

std::vector<std::string> string_list(http::Validator& v, const json::object& body, const char* field,
                                     size_t max) {
  std::vector<std::string> out;
  auto it = body.find(field);
  if (it == body.end() || it->value().is_null()) return out;
  if (http::contains_nul(it->value())) {
    v.fail(field, "must not contain NUL characters");
    return out;
  }
  if (!it->value().is_array() || it->value().as_array().size() > max) {
    v.fail(field, "must be an array of at most " + std::to_string(max) + " strings");
    return out;
  }
  for (const auto& x : it->value().as_array()) {
    if (!x.is_string() || x.as_string().empty() || x.as_string().size() > 256) {
      v.fail(field, "must hold non-empty strings of at most 256 characters");
      return {};
    }
    out.emplace_back(x.as_string());
  }
  return out;
}

InstanceInput parse_instance(const Request& req, const Settings& settings) {
  InstanceInput in;
  in.module = req.param("name");
  in.instance_id = req.param("instance_id");
  check_names(in.module, in.instance_id);
  auto body = http::parse_json_object(req);
  http::Validator v(body);
  in.url = v.required_string("url", 1, 2048);
  if (!in.url.empty() && !http::Endpoint::parse(in.url)) v.fail("url", "must be an absolute http(s) URL");
  in.version = v.optional_string("version", 0, 128).value_or("");
  in.routes = string_list(v, body, "routes", 32);
  for (const auto& r : in.routes)
    if (!normalized_prefix(r))
      v.fail("routes",
             "a route prefix is one normalized path: it starts with '/' and has no empty, '.' or '..' "
             "segment, no percent-encoding, no trailing slash, no spaces, '?' or '#'");
  in.public_routes = string_list(v, body, "public_routes", 64);
  for (const auto& r : in.public_routes)
    if (!valid_public_route(r, in.routes))
      v.fail(
          "public_routes",
          "each is \"METHOD /path\" (GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS; segments literal or a "
          "whole {name}) at or below one of this instance's routes");
  in.health_path = v.optional_string("health_path", 1, 512).value_or("");
  if (!in.health_path.empty() && !valid_path(in.health_path)) v.fail("health_path", "must start with '/'");
  in.tags = string_list(v, body, "tags", 64);
  if (auto m = v.optional_object("metadata")) in.metadata = *m;
  in.ttl_seconds = v.optional_int("ttl_seconds", 1, 86400).value_or(settings.default_ttl_seconds);
  v.check();
  return in;
}

// An instance URL naming an address (or localhost) the policy refuses is 422 at once. A name is judged again
// on every connection, on the addresses it resolves to then (the gateway's and the health checks' client).
void check_address(const Registry& reg, const InstanceInput& in) {
  const auto ep = http::Endpoint::parse(in.url);
  if (!ep) return;
  const bool keel_module = module::named(*reg.modules, in.module) != nullptr;
  std::vector<net::ip::address> addresses;
  boost::system::error_code ec;
  std::string host = ep->host;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const auto literal = net::ip::make_address(host, ec);
  if (!ec) {
    addresses.push_back(literal);
  } else if (boost::algorithm::iequals(host, "localhost") ||
             boost::algorithm::iends_with(host, ".localhost")) {
    addresses = {net::ip::address_v4::loopback(), net::ip::address_v6::loopback()};
  }
  for (const auto& a : addresses)
    if (auto why = reg.policy->refuse(a, ep->port, keel_module))
      throw Error::validation({{"url", "keel does not send requests there: " + *why}});
}

// A prefix belongs to one module: keel's own, or the first to register it. Claiming one at or below another
// module's prefix is a conflict.
void check_route_conflicts(const Registry& reg, db::Session& s, const InstanceInput& in) {
  lock_registry(s);
  auto owners = route_owners(s);
  for (const auto& m : *reg.modules)
    for (const auto& r : m.routes) owners.emplace_back(r, std::string(m.name));
  // keel's own paths: at or below one (or above one, which would catch it) is never anyone's.
  for (const auto& route : in.routes)
    for (const auto& reserved : module::reserved_paths())
      if (route == reserved ||
          (reserved != "/" && (path_under(route, reserved) || path_under(reserved, route))))
        throw Error::conflict("route prefix " + route + " is reserved for keel (" + reserved + ")");
  // At or below another module's prefix would steal its paths; above one ("/v1", "/") would catch
  // everything it does not match, tokens included.
  for (const auto& route : in.routes)
    for (const auto& [prefix, owner] : owners)
      if (owner != in.module && (path_under(route, prefix) || path_under(prefix, route)))
        throw Error::conflict("route prefix " + route + " overlaps " + prefix + ", which belongs to module " +
                              owner);
}

Response with_index(Response r, int64_t index) {
  r.headers.emplace_back("X-Keel-Index", std::to_string(index));
  return r;
}

net::awaitable<void> check_instance(std::shared_ptr<Registry> reg, Instance inst) {
  bool ok = false;
  if (auto ep = http::Endpoint::parse(inst.url)) {
    std::string fields;
    http::append_field(fields, "User-Agent", "keel-registry");
    http::ClientRequest req;
    req.target = inst.health_path;
    req.fields = fields;
    http::ClientOptions opt;
    opt.connect_timeout = std::chrono::milliseconds(1000);
    opt.timeout = std::chrono::milliseconds(2000);
    opt.body_limit = 1 << 20;
    opt.policy = &*reg->policy;
    // As the gateway will judge it: a third party's check never opens (nor leaves in the pool) a connection
    // to an address the gateway would refuse it.
    opt.keel_target = module::named(*reg->modules, inst.module) != nullptr;
    try {
      const http::ClientResponse res = co_await http::fetch(*ep, req, opt);
      ok = res.status >= 200 && res.status < 300;
    } catch (const http::ClientError&) {
      ok = false;
    }
  }
  try {
    const int64_t index = co_await reg->db->write([&](db::Session& s) {
      record_check(s, inst.module, inst.instance_id, ok);
      return current_index(s);
    });
    reg->index->observe(index);
  } catch (const std::exception& e) {
    log::warn("registry health check not recorded", {{"error", e.what()}});
  }
  reg->checking.erase(inst.module + "/" + inst.instance_id);
}

net::awaitable<void> maintain(std::shared_ptr<Registry> reg) {
  const auto ex = co_await net::this_coro::executor;
  net::steady_timer timer(ex);
  for (;;) {
    timer.expires_after(std::chrono::milliseconds(reg->settings.check_interval_ms));
    co_await timer.async_wait(net::use_awaitable);
    try {
      const int64_t grace = reg->settings.grace_seconds;
      auto [instances, index] = co_await reg->db->write([&](db::Session& s) {
        expire(s, *reg->outbox, grace);
        return std::make_pair(list_instances(s, std::nullopt), current_index(s));
      });
      reg->index->observe(index);
      for (auto& inst : instances) {
        if (inst.health_path.empty()) continue;
        if (!reg->checking.insert(inst.module + "/" + inst.instance_id).second) continue;
        net::co_spawn(ex, check_instance(reg, std::move(inst)), net::detached);
      }
    } catch (const std::exception& e) {
      log::warn("registry maintenance failed", {{"error", e.what()}});
    }
  }
}

}  // namespace

namespace {
// The module's routes, each with who may call it. `reg` is null when they are only declared (declare()):
// their handlers are then never called.
void add_routes(http::Router& r, std::shared_ptr<Registry> reg) {
  // Writes: the admin role or a service token (bound to its module: require_writer).
  r.add(Method::Put, "/v1/registry/modules/{name}/instances/{instance_id}",
        Access::admin() | Access::service(), [reg](Request& req) -> Awaitable {
          const module::Principal& who = module::caller(req);
          check_names(req.param("name"), req.param("instance_id"));
          require_writer(*reg, who, req.param("name"));
          const InstanceInput in = parse_instance(req, reg->settings);
          check_address(*reg, in);
          const std::string tp(req.trace.traceparent());
          auto [inst, index] = co_await reg->db->write([&](db::Session& s) {
            check_route_conflicts(*reg, s, in);
            auto out = upsert_instance(s, *reg->outbox, in, tp).first;
            return std::make_pair(std::move(out), current_index(s));
          });
          reg->index->observe(index);  // after the commit: a waiter woken now reads the change
          co_return Response::json(200, inst.to_json());
        });
  r.add(Method::Post, "/v1/registry/modules/{name}/instances/{instance_id}/heartbeat",
        Access::admin() | Access::service(), [reg](Request& req) -> Awaitable {
          const module::Principal& who = module::caller(req);
          const std::string module = req.param("name"), id = req.param("instance_id");
          check_names(module, id);
          require_writer(*reg, who, module);
          auto [inst, index] = co_await reg->db->write([&](db::Session& s) {
            auto out = heartbeat(s, module, id);
            return std::make_pair(std::move(out), current_index(s));
          });
          reg->index->observe(index);
          if (!inst) throw Error::not_found("no such instance; register it again");
          co_return Response::json(200, inst->to_json());
        });
  r.add(Method::Delete, "/v1/registry/modules/{name}/instances/{instance_id}",
        Access::admin() | Access::service(), [reg](Request& req) -> Awaitable {
          const module::Principal& who = module::caller(req);
          const std::string module = req.param("name"), id = req.param("instance_id");
          check_names(module, id);
          require_writer(*reg, who, module);
          const std::string tp(req.trace.traceparent());
          const int64_t index = co_await reg->db->write([&](db::Session& s) {
            delete_instance(s, *reg->outbox, module, id, "deregistered", tp);
            return current_index(s);
          });
          reg->index->observe(index);
          co_return Response::no_content();
        });
  // Reads: any valid token.
  r.add(Method::Get, "/v1/registry/modules", Access::user() | Access::service(),
        [reg](Request&) -> Awaitable {
          // One read, so instances, routes and the index describe the same moment.
          auto [instances, owners, index] = co_await reg->db->read([](db::Session& s) {
            return std::make_tuple(list_instances(s, std::nullopt), route_owners(s), current_index(s));
          });
          std::map<std::string, json::object> modules;
          for (const auto& [prefix, owner] : owners) {
            auto& m = modules[owner];
            if (!m.contains("routes")) m["routes"] = json::array{};
            m["routes"].as_array().emplace_back(prefix);
          }
          for (const auto& i : instances) {
            auto& m = modules[i.module];
            if (!m.contains("routes")) m["routes"] = json::array{};
            m["instances"] = (m.contains("instances") ? m["instances"].as_int64() : 0) + 1;
            m["passing"] =
                (m.contains("passing") ? m["passing"].as_int64() : 0) + (i.status == "passing" ? 1 : 0);
          }
          json::array items;
          for (auto& [name, m] : modules) {
            m["name"] = name;
            if (!m.contains("instances")) m["instances"] = 0;
            if (!m.contains("passing")) m["passing"] = 0;
            items.push_back(std::move(m));
          }
          co_return with_index(Response::json(200, json::object{{"items", std::move(items)}}), index);
        });
  r.add(
      Method::Get, "/v1/registry/modules/{name}/instances", Access::user() | Access::service(),
      [reg](Request& req) -> Awaitable {
        const module::Principal& who = module::caller(req);
        const std::string module = req.param("name");
        check_names(module, "");
        const auto status = req.query_param("status");
        const auto tag = req.query_param("tag");
        const auto version = req.query_param("version");
        if (status && *status != "passing" && *status != "critical")
          throw Error::validation({{"status", "must be passing or critical"}});
        if (const auto after = req.query_int("index", 0, INT64_MAX)) {
          std::chrono::milliseconds wait(std::chrono::seconds(30));
          if (const auto w = req.query_param("wait")) {
            auto d = http::parse_duration(*w, std::chrono::seconds(60));
            if (!d)
              throw Error::validation({{"wait", "must be a duration such as 500ms, 2s or 30s, at most 60s"}});
            wait = *d;
          }
          const auto ticket = reg->long_polls->enter(who.subject);
          co_await reg->index->wait_past(*after, std::chrono::steady_clock::now() + wait);
        }
        auto [instances, index] = co_await reg->db->read(
            [&](db::Session& s) { return std::make_pair(list_instances(s, module), current_index(s)); });
        json::array items;
        for (const auto& i : instances) {
          if (status && i.status != *status) continue;
          if (version && i.version != *version) continue;
          if (tag && std::find(i.tags.begin(), i.tags.end(), *tag) == i.tags.end()) continue;
          items.push_back(i.to_json());
        }
        co_return with_index(Response::json(200, json::object{{"items", std::move(items)}}), index);
      });
}
}  // namespace

void declare(http::Router& router) { add_routes(router, nullptr); }

void install(ModuleContext& ctx) {
  auto reg = std::make_shared<Registry>();
  reg->db = &ctx.db;
  reg->index = &ctx.registry;
  reg->outbox = &ctx.outbox;
  reg->modules = &ctx.modules;
  reg->policy.emplace(http::AddressPolicy::from(ctx.config));
  reg->long_polls = std::make_unique<http::LongPolls>(ctx.config.long_polls_per_caller);
  reg->settings.check_interval_ms = settings::check_interval_ms.integer(ctx.config);
  reg->settings.grace_seconds = settings::grace_seconds.integer(ctx.config);
  reg->settings.default_ttl_seconds = settings::default_ttl_seconds.integer(ctx.config);
  net::co_spawn(ctx.io, maintain(reg), net::detached);

  add_routes(ctx.router, reg);
}

}  // namespace keel::registry
