#pragma once
// The memory module's request bodies: each field read and checked on a Validator, which names every field
// that failed in one 422. nullopt: the field is absent, or invalid (and failed on the Validator).
#include <boost/json/object.hpp>
#include <optional>
#include <string>
#include <vector>

#include "keel/http/json_body.hpp"
#include "keel/memory/store.hpp"

namespace keel::memory {

// [a-z0-9._-]{1,64}
bool valid_namespace(const std::string& ns);
std::optional<std::string> read_namespace(http::Validator& v, const boost::json::object& body);
// At most 64 KiB; `required`: absent or null fails.
std::optional<std::string> read_content(http::Validator& v, const boost::json::object& body, bool required);
// An object, at most 64 KiB as JSON; its serialization.
std::optional<std::string> read_metadata(http::Validator& v, const boost::json::object& body);
// At most 32, each 1 to 64 characters without control characters; repeats dropped.
std::optional<std::vector<std::string>> read_tags(http::Validator& v, const boost::json::object& body);
// 1 to 4096 finite float32s, not all zero. An engaged nullopt inside: an explicit null (remove it).
std::optional<std::optional<std::vector<float>>> read_embedding(http::Validator& v,
                                                                const boost::json::object& body);
// The expiry time ttl_seconds gives. An engaged nullopt inside: an explicit null (no expiry).
std::optional<std::optional<std::string>> read_ttl(http::Validator& v, const boost::json::object& body);
// A search's or a list's filters: namespace, tags (all must match), metadata (top-level keys equal).
Filters read_filters(http::Validator& v, const boost::json::object& body);

}  // namespace keel::memory
