#pragma once
// Routes by method and path pattern ("/v1/memories/{id}"); prefix routes ("/v1/ext/*") serve a whole subtree.
#include <boost/asio/awaitable.hpp>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "keel/http/request.hpp"

namespace keel::http {

using Handler = std::function<boost::asio::awaitable<Response>(Request&)>;

struct RouteOptions {
  // Accept any request body as-is (proxying); by default a body must be application/json.
  bool raw_body = false;
};

struct Route {
  Method method;
  std::string pattern;  // also the metrics label
  std::vector<std::string> segments;
  bool prefix = false;
  RouteOptions options;
  Handler handler;
};

struct Match {
  const Route* route = nullptr;  // null: no route for this method
  std::vector<Method> allowed;   // methods that would match the path (for 405's Allow)
  std::vector<std::pair<std::string_view, std::string>> params;
};

class Router {
 public:
  void add(Method method, std::string pattern, Handler handler, RouteOptions options = {});
  // Matches `prefix` and everything below it (pattern "/v1/ext/*").
  void add_prefix(Method method, std::string prefix, Handler handler, RouteOptions options = {});
  Match match(Method method, std::string_view path) const;
  // Matches and runs the handler: 404 or 405 (with Allow) when nothing matches, 415 for a body that is not
  // JSON on a JSON route. Errors are thrown as keel::Error; `route_label` is set to the matched pattern.
  boost::asio::awaitable<Response> dispatch(Request& req, const std::string*& route_label) const;
  const std::vector<std::unique_ptr<Route>>& routes() const { return routes_; }

 private:
  std::vector<std::unique_ptr<Route>> routes_;
};

// "GET, POST" for an Allow header.
std::string allow_header(const std::vector<Method>& methods);

}  // namespace keel::http
