#pragma once
// The OpenAPI 3.1 document the gateway serves at /openapi.json, merged from each module's fragment
// (src/keel/<module>/openapi.json: {"paths": {...}, "schemas": {...}}).
#include <string>
#include <utility>
#include <vector>

namespace keel::gateway {

const std::vector<std::pair<const char*, const char*>>& openapi_fragments();
// The whole document, serialized.
std::string openapi_document(const std::string& version);

}  // namespace keel::gateway
