#pragma once
// The OpenAPI 3.1 document the gateway serves at /openapi.json, merged from each module's fragment
// (src/keel/<module>/openapi.json: {"paths": {...}, "schemas": {...}}).
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "keel/http/router.hpp"

namespace keel::gateway {

const std::vector<std::pair<const char*, const char*>>& openapi_fragments();
// The whole document, serialized. Each operation's `security` comes from the route that serves it, as
// `declarations` (every module's routes: app/modules.hpp, declared_routes) declare it: none for a public
// route, the bearer scheme for any other. An operation no declaration serves throws std::logic_error.
std::string openapi_document(const std::string& version,
                             const std::vector<std::shared_ptr<const http::Router>>& declarations);

// The routes `router` serves that the document does not list, as "GET /v1/x": keel logs them at start, and
// the end-to-end suite fails on that line. Prefix routes ("/v1/ext/*", the gateway's proxy) are left out.
std::vector<std::string> undocumented_routes(const http::Router& router);

}  // namespace keel::gateway
