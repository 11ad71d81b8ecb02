#include "keel/gateway/openapi.hpp"

#include <boost/json.hpp>
#include <stdexcept>

namespace keel::gateway {

namespace json = boost::json;

std::string openapi_document(const std::string& version) {
  json::object paths, schemas, parameters;
  for (const auto& [module, text] : openapi_fragments()) {
    json::value fragment = json::parse(text);  // checked by the unit tests: a broken fragment fails there
    for (const auto& kv : fragment.at("paths").as_object()) paths[kv.key()] = kv.value();
    if (auto* s = fragment.as_object().if_contains("schemas"))
      for (const auto& kv : s->as_object()) schemas[kv.key()] = kv.value();
    if (auto* p = fragment.as_object().if_contains("parameters"))
      for (const auto& kv : p->as_object()) parameters[kv.key()] = kv.value();
  }
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
         {{"bearer", {{"type", "http"}, {"scheme", "bearer"}, {"bearerFormat", "JWT"}}}}}}}};
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
    std::string method(http::method_name(route->method));
    for (auto& c : method) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const auto* ops = paths.if_contains(route->pattern);
    if (!ops || !ops->is_object() || !ops->as_object().contains(method))
      out.push_back(std::string(http::method_name(route->method)) + " " + route->pattern);
  }
  return out;
}

}  // namespace keel::gateway
