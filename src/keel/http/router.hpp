#pragma once
// Routes by method and path pattern ("/v1/memories/{id}"); prefix routes ("/v1/ext/*") serve a whole subtree.
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "keel/http/access.hpp"
#include "keel/http/request.hpp"

namespace keel::http {

using Handler = std::function<boost::asio::awaitable<Response>(Request&)>;
// Checks a request's caller against a route's access before its handler runs: throws a 401 or 403
// keel::Error, or stores the verified caller in the request (Request::caller) and returns.
using Guard = std::function<void(Request&, Access)>;

struct RouteOptions {
  // Accept any request body as-is (proxying); by default a body must be application/json.
  bool raw_body = false;
};

struct Route {
  Method method;
  std::string pattern;  // also the metrics label
  std::vector<std::string> segments;
  bool prefix = false;
  Access access = Access::anyone();
  RouteOptions options;
  Handler handler;
};

// A set of methods, one bit each: matching builds these per request, so they must not allocate.
class MethodSet {
 public:
  void add(Method m) { bits_ |= bit(m); }
  bool contains(Method m) const { return (bits_ & bit(m)) != 0; }
  bool empty() const { return bits_ == 0; }

 private:
  static uint16_t bit(Method m) { return static_cast<uint16_t>(1u << static_cast<unsigned>(m)); }
  uint16_t bits_ = 0;
};

struct Match {
  const Route* route = nullptr;  // null: no route for this method
  MethodSet allowed;             // methods that would match the path (for 405's Allow)
  std::vector<std::pair<std::string_view, std::string>> params;
};

class Router {
 public:
  // Every route says who may call it: there is no overload without an Access.
  void add(Method method, std::string pattern, Access access, Handler handler, RouteOptions options = {});
  // Matches `prefix` and everything below it (pattern "/v1/ext/*").
  void add_prefix(Method method, std::string prefix, Access access, Handler handler,
                  RouteOptions options = {});
  // How callers of routes that are not public are checked. A router without one refuses them (401): a route
  // is never served unchecked.
  void set_guard(Guard guard) { guard_ = std::move(guard); }
  Match match(Method method, std::string_view path) const;
  // True when a request needs no token: its route is public, or (with `other_methods`) no route serves its
  // method but a public route serves its path (the 405 is the module's to give, not a 401).
  bool is_public(Method method, std::string_view path, bool other_methods = true) const;
  // Matches, checks the caller (the guard) and starts the handler: 404 or 405 (with Allow) when nothing
  // matches, 401 or 403 from the guard, 415 for a body that is not JSON on a JSON route. Not a coroutine:
  // those errors are thrown by the call itself, `route_label` is set before it returns, and the handler's
  // awaitable is returned as it is (no frame of the router's own).
  boost::asio::awaitable<Response> dispatch(Request& req, const std::string*& route_label) const;
  const std::vector<std::unique_ptr<Route>>& routes() const { return routes_; }

 private:
  Match find(Method method, std::string_view path, bool with_params) const;
  std::vector<std::unique_ptr<Route>> routes_;
  Guard guard_;
};

// "GET, HEAD, POST" for an Allow header, in a fixed order; GET brings HEAD.
std::string allow_header(MethodSet methods);

}  // namespace keel::http
