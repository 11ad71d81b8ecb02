// Compiled, not run, by two ctest cases (CMakeLists.txt): with KEEL_DECLARES_ACCESS a route declared with who
// may call it compiles; without it the same route with no declaration must not compile (the case is expected
// to fail). The first case proves the file is otherwise sound, so the second fails for the reason it names.
#include "keel/http/router.hpp"

void add_a_route(keel::http::Router& router) {
  auto handler = [](keel::http::Request&) -> boost::asio::awaitable<keel::http::Response> {
    co_return keel::http::Response::no_content();
  };
#ifdef KEEL_DECLARES_ACCESS
  router.add(keel::http::Method::Get, "/v1/things", keel::http::Access::user(), handler);
  router.add_prefix(keel::http::Method::Get, "/v1/things/all", keel::http::Access::user(), handler);
#else
  router.add(keel::http::Method::Get, "/v1/things", handler);
#endif
}
