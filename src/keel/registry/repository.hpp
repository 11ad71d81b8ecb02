#pragma once
// The registry's tables: modules, module_instances, registry_index. Every change bumps the index (in the
// same transaction), which blocking queries and the gateway follow.
#include <boost/json/object.hpp>
#include <optional>
#include <string>
#include <vector>

#include "keel/db/database.hpp"
#include "keel/module/outbox.hpp"

namespace keel::registry {

struct InstanceInput {
  std::string module;
  std::string instance_id;
  std::string url;
  std::string version;
  std::vector<std::string> routes;
  // Routes that need no token at the gateway, "METHOD /pattern" ("GET /v1/hooks/status/{id}").
  std::vector<std::string> public_routes;
  std::string health_path;
  std::vector<std::string> tags;
  boost::json::object metadata;
  int64_t ttl_seconds = 30;
};

struct Instance {
  std::string module;
  std::string instance_id;
  std::string url;
  std::string version;
  std::vector<std::string> routes;
  std::vector<std::string> public_routes;
  std::string health_path;
  std::vector<std::string> tags;
  std::string metadata;  // JSON text
  std::string status;    // passing | critical
  std::string registered_at, last_seen_at, expires_at;
  std::optional<std::string> critical_since;
  int64_t ttl_seconds = 30;
  boost::json::object to_json() const;
};

// Creates or updates; returns the instance and whether it is new. Writes the registered event when new.
std::pair<Instance, bool> upsert_instance(db::Session& s, const module::Outbox& outbox,
                                          const InstanceInput& in, const std::string& traceparent);
// Renews the TTL (and turns a critical instance passing); nullopt when unknown.
std::optional<Instance> heartbeat(db::Session& s, const std::string& module, const std::string& instance_id);
// True when it existed.
bool delete_instance(db::Session& s, const module::Outbox& outbox, const std::string& module,
                     const std::string& instance_id, const std::string& reason,
                     const std::string& traceparent);
std::vector<Instance> list_instances(db::Session& s, const std::optional<std::string>& module);
// Prefix -> owning module, over all registered instances.
std::vector<std::pair<std::string, std::string>> route_owners(db::Session& s);
int64_t current_index(db::Session& s);
// Serializes registry writers on PostgreSQL (a row lock on the index, taken first by every write), so check-
// then-insert and prefix ownership hold under concurrency; SQLite has one writer anyway.
void lock_registry(db::Session& s);
int64_t bump_index(db::Session& s);
// Marks lapsed instances critical and removes those critical longer than `grace_seconds`.
void expire(db::Session& s, const module::Outbox& outbox, int64_t grace_seconds);
// Records a health-check result: renews on success, critical on failure.
void record_check(db::Session& s, const std::string& module, const std::string& instance_id, bool ok);

}  // namespace keel::registry
