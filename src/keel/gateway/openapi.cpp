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

}  // namespace keel::gateway
