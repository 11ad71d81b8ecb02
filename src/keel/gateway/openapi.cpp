#include "keel/gateway/openapi.hpp"

#include <boost/json.hpp>
#include <stdexcept>

namespace keel::gateway {

namespace json = boost::json;

namespace {
std::string lower_method(http::Method m) {
  std::string method(http::method_name(m));
  for (auto& c : method) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return method;
}

// Sets every operation's `security` from the route declared for it. A public route whose handler
// authenticates its caller itself (GET /v1/stream: a Bearer token or a stream ticket) keeps the `security`
// its fragment names.
void secure(json::object& paths, const std::vector<std::shared_ptr<const http::Router>>& declarations) {
  for (const auto& router : declarations)
    for (const auto& route : router->routes()) {
      if (route->prefix) continue;
      auto* ops = paths.if_contains(route->pattern);
      if (!ops) continue;
      auto* op = ops->as_object().if_contains(lower_method(route->method));
      if (!op) continue;
      if (route->access.is_public() && op->as_object().contains("security")) continue;
      op->as_object()["security"] =
          route->access.is_public() ? json::array{} : json::array{json::object{{"bearer", json::array{}}}};
    }
  std::string undeclared;
  for (const auto& [path, ops] : paths)
    for (const auto& [method, op] : ops.as_object())
      if (op.is_object() && !op.as_object().contains("security"))
        undeclared += " " + std::string(method) + " " + std::string(path);
  if (!undeclared.empty())
    throw std::logic_error("OpenAPI operations no route declares who may call:" + undeclared);
}
}  // namespace

std::string openapi_document(const std::string& version,
                             const std::vector<std::shared_ptr<const http::Router>>& declarations) {
  json::object paths, schemas, parameters;
  for (const auto& [module, text] : openapi_fragments()) {
    json::value fragment = json::parse(text);  // checked by the unit tests: a broken fragment fails there
    for (const auto& kv : fragment.at("paths").as_object()) paths[kv.key()] = kv.value();
    if (auto* s = fragment.as_object().if_contains("schemas"))
      for (const auto& kv : s->as_object()) schemas[kv.key()] = kv.value();
    if (auto* p = fragment.as_object().if_contains("parameters"))
      for (const auto& kv : p->as_object()) parameters[kv.key()] = kv.value();
  }
  secure(paths, declarations);
  json::object problem_response{
      {"description", "An RFC 9457 problem"},
      {"content", {{"application/problem+json", {{"schema", {{"$ref", "#/components/schemas/Problem"}}}}}}}};
  parameters["limit"] =
      json::object{{"name", "limit"},
                   {"in", "query"},
                   {"schema", {{"type", "integer"}, {"minimum", 1}, {"maximum", 500}, {"default", 50}}}};
  parameters["cursor"] = json::object{{"name", "cursor"}, {"in", "query"}, {"schema", {{"type", "string"}}}};
  json::object doc{
      {"openapi", "3.1.0"},
      {"info",
       {{"title", "keel"},
        {"version", version},
        {"description",
         "A self-hosted backend platform: gateway, auth, memory, registry, billing and events."}}},
      {"paths", std::move(paths)},
      {"components",
       {{"schemas", std::move(schemas)},
        {"responses", {{"Problem", std::move(problem_response)}}},
        {"parameters", std::move(parameters)},
        {"securitySchemes",
         {{"bearer", {{"type", "http"}, {"scheme", "bearer"}, {"bearerFormat", "JWT"}}},
          {"streamTicket",
           {{"type", "apiKey"},
            {"in", "query"},
            {"name", "ticket"},
            {"description",
             "A single-use, 30 s ticket from POST /v1/stream/tickets (for EventSource)"}}}}}}}};
  return json::serialize(doc);
}

std::vector<std::string> undocumented_routes(const http::Router& router) {
  static const json::object paths = [] {
    json::object all;
    for (const auto& [module, text] : openapi_fragments()) {
      const json::value fragment = json::parse(text);
      for (const auto& kv : fragment.at("paths").as_object()) all[kv.key()] = kv.value();
    }
    return all;
  }();
  std::vector<std::string> out;
  for (const auto& route : router.routes()) {
    if (route->prefix || route->method == http::Method::Head || route->method == http::Method::Options)
      continue;
    const std::string method = lower_method(route->method);
    const auto* ops = paths.if_contains(route->pattern);
    if (!ops || !ops->is_object() || !ops->as_object().contains(method))
      out.push_back(std::string(http::method_name(route->method)) + " " + route->pattern);
  }
  return out;
}

}  // namespace keel::gateway
