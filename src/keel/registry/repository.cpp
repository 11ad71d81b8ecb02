#include "keel/registry/repository.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <set>

#include "keel/core/ids.hpp"
#include "keel/core/time.hpp"
#include "keel/db/columns.hpp"

namespace keel::registry {

namespace json = boost::json;
using std::chrono::seconds;
using std::chrono::system_clock;

namespace {

constexpr const char* kSource = "/keel/registry";
// An instance's row (db/columns.hpp), over `module_instances i JOIN modules m`.
constexpr db::Columns kInstance{"m.name",           "i.instance_id",   "i.url",          "i.version",
                                "i.routes",         "i.health_path",   "i.tags",         "i.metadata",
                                "i.status",         "i.registered_at", "i.last_seen_at", "i.expires_at",
                                "i.critical_since", "i.ttl_seconds",   "i.public_routes"};
const std::string kColumns = kInstance.list();

std::vector<std::string> string_array(const std::string& text) {
  std::vector<std::string> out;
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  if (!ec && v.is_array())
    for (const auto& x : v.as_array())
      if (x.is_string()) out.emplace_back(x.as_string());
  return out;
}

std::string to_json_array(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return json::serialize(a);
}

Instance from_row(const db::Row& r) {
  Instance i;
  i.module = r.text(kInstance["name"]);
  i.instance_id = r.text(kInstance["instance_id"]);
  i.url = r.text(kInstance["url"]);
  i.version = r.opt_text(kInstance["version"]).value_or("");
  i.routes = string_array(r.text(kInstance["routes"]));
  i.health_path = r.opt_text(kInstance["health_path"]).value_or("");
  i.tags = string_array(r.text(kInstance["tags"]));
  i.metadata = r.text(kInstance["metadata"]);
  i.status = r.text(kInstance["status"]);
  i.registered_at = r.time(kInstance["registered_at"]);
  i.last_seen_at = r.time(kInstance["last_seen_at"]);
  i.expires_at = r.time(kInstance["expires_at"]);
  if (constexpr size_t critical = kInstance["critical_since"]; !r.is_null(critical))
    i.critical_since = r.time(critical);
  i.ttl_seconds = r.int64(kInstance["ttl_seconds"]);
  i.public_routes = string_array(r.text(kInstance["public_routes"]));
  return i;
}

std::optional<Instance> find(db::Session& s, const std::string& module, const std::string& instance_id) {
  auto r = s.query("SELECT " + kColumns +
                       " FROM module_instances i JOIN modules m ON m.id = i.module_id "
                       "WHERE m.name = $1 AND i.instance_id = $2",
                   {module, instance_id});
  if (r.empty()) return std::nullopt;
  return from_row(r.rows[0]);
}

// The module's routes are the union of its instances' routes.
void refresh_module_routes(db::Session& s, const std::string& module) {
  auto r = s.query(
      "SELECT i.routes FROM module_instances i JOIN modules m ON m.id = i.module_id WHERE m.name = $1",
      {module});
  // With no instance left, the module keeps its prefixes: the gateway answers 503 for them (the module is
  // known, just down), and nobody else can take them over while it is away.
  if (r.rows.empty()) return;
  std::set<std::string> all;
  for (const auto& row : r.rows)
    for (auto& p : string_array(row.text(0))) all.insert(p);
  s.query("UPDATE modules SET routes = $2, updated_at = $3 WHERE name = $1",
          {module, to_json_array({all.begin(), all.end()}), now_rfc3339()});
}

json::object event_data(const Instance& i) {
  return json::object{{"module", i.module}, {"instance_id", i.instance_id}, {"url", i.url}};
}

}  // namespace

json::object Instance::to_json() const {
  json::array r, t, p;
  for (const auto& x : routes) r.emplace_back(x);
  for (const auto& x : public_routes) p.emplace_back(x);
  for (const auto& x : tags) t.emplace_back(x);
  boost::system::error_code ec;
  auto meta = json::parse(metadata, ec);
  return json::object{{"module", module},
                      {"instance_id", instance_id},
                      {"url", url},
                      {"version", version.empty() ? json::value(nullptr) : json::value(version)},
                      {"routes", std::move(r)},
                      {"public_routes", std::move(p)},
                      {"health_path", health_path.empty() ? json::value(nullptr) : json::value(health_path)},
                      {"tags", std::move(t)},
                      {"metadata", ec ? json::value(json::object{}) : meta},
                      {"status", status},
                      {"registered_at", registered_at},
                      {"last_seen_at", last_seen_at},
                      {"expires_at", expires_at}};
}

int64_t current_index(db::Session& s) {
  return s.query("SELECT value FROM registry_index WHERE id = 1").rows.at(0).int64(0);
}

void lock_registry(db::Session& s) {
  if (s.dialect() == db::Dialect::Postgres)
    s.query("SELECT value FROM registry_index WHERE id = 1 FOR UPDATE");
}

int64_t bump_index(db::Session& s) {
  s.query("UPDATE registry_index SET value = value + 1, updated_at = $1 WHERE id = 1", {now_rfc3339()});
  return current_index(s);
}

std::pair<Instance, bool> upsert_instance(db::Session& s, const module::Outbox& outbox,
                                          const InstanceInput& in, const std::string& traceparent) {
  // First, as in every registry write: processes that start together register their modules one at a time
  // (without it, two inserting the same new module row made one of them exit on the unique key).
  lock_registry(s);
  const auto now = system_clock::now();
  const std::string now_s = format_rfc3339(now);
  const std::string expires = format_rfc3339(now + seconds(in.ttl_seconds));
  auto m = s.query("SELECT id FROM modules WHERE name = $1", {in.module});
  std::string module_id;
  if (m.empty()) {
    module_id = uuid_v7();
    s.query("INSERT INTO modules (id, name, created_at, updated_at) VALUES ($1, $2, $3, $3)",
            {module_id, in.module, now_s});
  } else {
    module_id = m.rows[0].text(0);
  }
  const bool existed = !s.query("SELECT 1 FROM module_instances WHERE module_id = $1 AND instance_id = $2",
                                {module_id, in.instance_id})
                            .empty();
  const db::Value version = in.version.empty() ? db::Value(nullptr) : db::Value(in.version);
  const db::Value health = in.health_path.empty() ? db::Value(nullptr) : db::Value(in.health_path);
  if (existed) {
    s.query(
        "UPDATE module_instances SET url = $3, version = $4, routes = $5, health_path = $6, tags = $7, "
        "metadata = $8, "
        "status = 'passing', critical_since = NULL, ttl_seconds = $9, last_seen_at = $10, expires_at = $11, "
        "updated_at = $10, public_routes = $12 WHERE module_id = $1 AND instance_id = $2",
        {module_id, in.instance_id, in.url, version, to_json_array(in.routes), health, to_json_array(in.tags),
         json::serialize(in.metadata), in.ttl_seconds, now_s, expires, to_json_array(in.public_routes)});
  } else {
    s.query(
        "INSERT INTO module_instances (id, module_id, instance_id, url, version, routes, health_path, tags, "
        "metadata, "
        "status, ttl_seconds, registered_at, last_seen_at, expires_at, created_at, updated_at, "
        "public_routes) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'passing', $10, $11, $11, $12, $11, $11, $13)",
        {uuid_v7(), module_id, in.instance_id, in.url, version, to_json_array(in.routes), health,
         to_json_array(in.tags), json::serialize(in.metadata), in.ttl_seconds, now_s, expires,
         to_json_array(in.public_routes)});
  }
  refresh_module_routes(s, in.module);
  bump_index(s);
  Instance inst = *find(s, in.module, in.instance_id);
  if (!existed)
    outbox.append(s, {"keel.registry.instance.registered", kSource, "", event_data(inst), traceparent});
  return {std::move(inst), !existed};
}

std::optional<Instance> heartbeat(db::Session& s, const std::string& module, const std::string& instance_id) {
  lock_registry(s);
  auto inst = find(s, module, instance_id);
  if (!inst) return std::nullopt;
  const auto now = system_clock::now();
  s.query(
      "UPDATE module_instances SET last_seen_at = $3, expires_at = $4, status = 'passing', critical_since = "
      "NULL, "
      "updated_at = $3 WHERE instance_id = $2 AND module_id = (SELECT id FROM modules WHERE name = $1)",
      {module, instance_id, format_rfc3339(now), format_rfc3339(now + seconds(inst->ttl_seconds))});
  if (inst->status != "passing") bump_index(s);
  return find(s, module, instance_id);
}

bool delete_instance(db::Session& s, const module::Outbox& outbox, const std::string& module,
                     const std::string& instance_id, const std::string& reason,
                     const std::string& traceparent) {
  lock_registry(s);
  auto inst = find(s, module, instance_id);
  if (!inst) return false;
  s.query(
      "DELETE FROM module_instances WHERE instance_id = $2 AND module_id = (SELECT id FROM modules WHERE "
      "name = $1)",
      {module, instance_id});
  refresh_module_routes(s, module);
  bump_index(s);
  auto data = event_data(*inst);
  data["reason"] = reason;
  outbox.append(s, {"keel.registry.instance.deregistered", kSource, "", data, traceparent});
  return true;
}

std::vector<Instance> list_instances(db::Session& s, const std::optional<std::string>& module) {
  const std::string base =
      "SELECT " + kColumns + " FROM module_instances i JOIN modules m ON m.id = i.module_id";
  auto r = module ? s.query(base + " WHERE m.name = $1 ORDER BY i.instance_id", {*module})
                  : s.query(base + " ORDER BY m.name, i.instance_id");
  std::vector<Instance> out;
  out.reserve(r.rows.size());
  for (const auto& row : r.rows) out.push_back(from_row(row));
  return out;
}

std::vector<std::pair<std::string, std::string>> route_owners(db::Session& s) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& row : s.query("SELECT name, routes FROM modules").rows)
    for (auto& p : string_array(row.text(1))) out.emplace_back(p, row.text(0));
  return out;
}

void expire(db::Session& s, const module::Outbox& outbox, int64_t grace_seconds) {
  lock_registry(s);
  const auto now = system_clock::now();
  const std::string now_s = format_rfc3339(now);
  bool changed = false;
  for (const auto& i : list_instances(s, std::nullopt)) {
    if (i.status == "passing" && i.expires_at <= now_s) {
      s.query(
          "UPDATE module_instances SET status = 'critical', critical_since = $3, updated_at = $3 "
          "WHERE instance_id = $2 AND module_id = (SELECT id FROM modules WHERE name = $1)",
          {i.module, i.instance_id, now_s});
      outbox.append(s, {"keel.registry.instance.expired", kSource, "", event_data(i), ""});
      changed = true;
    } else if (i.status == "critical" && i.critical_since &&
               *i.critical_since <= format_rfc3339(now - seconds(grace_seconds))) {
      delete_instance(s, outbox, i.module, i.instance_id, "critical_past_grace", "");
    }
  }
  if (changed) bump_index(s);
}

void record_check(db::Session& s, const std::string& module, const std::string& instance_id, bool ok) {
  lock_registry(s);
  auto inst = find(s, module, instance_id);
  if (!inst) return;
  const auto now = system_clock::now();
  const std::string now_s = format_rfc3339(now);
  if (ok) {
    // A passing check clears a failed one, but only heartbeats renew the TTL: an instance that stopped
    // heartbeating lapses even while its health endpoint answers.
    if (inst->status != "passing" && inst->expires_at > now_s) {
      s.query(
          "UPDATE module_instances SET status = 'passing', critical_since = NULL, updated_at = $3 "
          "WHERE instance_id = $2 AND module_id = (SELECT id FROM modules WHERE name = $1)",
          {module, instance_id, now_s});
      bump_index(s);
    }
  } else if (inst->status == "passing") {
    s.query(
        "UPDATE module_instances SET status = 'critical', critical_since = $3, updated_at = $3 "
        "WHERE instance_id = $2 AND module_id = (SELECT id FROM modules WHERE name = $1)",
        {module, instance_id, now_s});
    bump_index(s);
  }
}

}  // namespace keel::registry
