#include "keel/gateway/routes.hpp"

#include <memory>

#include "keel/app/modules.hpp"
#include "keel/gateway/openapi.hpp"
#include "keel/http/router.hpp"

namespace keel::gateway {

void install(ModuleContext& ctx) {
  auto doc = std::make_shared<const std::string>(openapi_document(KEEL_VERSION));
  ctx.router.add(http::Method::Get, "/openapi.json",
                 [doc](http::Request&) -> boost::asio::awaitable<http::Response> {
                   co_return http::Response::json_text(200, *doc);
                 });
}

}  // namespace keel::gateway
