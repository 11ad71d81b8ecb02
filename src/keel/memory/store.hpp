#pragma once
// The memory module's SQL: memories, their tags, earlier versions and vector spaces, on either backend.
// Every function runs inside the caller's session (one transaction for writes).
#include <boost/json/object.hpp>
#include <optional>
#include <string>
#include <vector>

#include "keel/db/columns.hpp"
#include "keel/db/database.hpp"
#include "keel/memory/vector_index.hpp"
#include "keel/module/outbox.hpp"

namespace keel::memory {

// A memory's columns (db/columns.hpp), which memory_json reads, and their SELECT list over `memories m`.
inline constexpr db::Columns kMemory{"id",         "namespace",      "content", "metadata",
                                     "tags",       "embedding_dims", "version", "created_at",
                                     "updated_at", "expires_at"};
extern const std::string kColumns;
// A memory and whose it is (an admin's read of any user's memory).
inline constexpr auto kWithOwner = kMemory.with("user_id");
boost::json::object memory_json(const db::Row& r);

// What a search or a list is narrowed to; every condition must hold.
struct Filters {
  std::optional<std::string> ns;
  std::vector<std::string> tags;  // all of them
  boost::json::object metadata;   // top-level keys, by equality
  bool any() const { return !tags.empty() || !metadata.empty(); }
};
// Appends " AND ..." conditions on `m` for the namespace, tags and metadata; numbers further $n.
void add_filters(db::Dialect dialect, const Filters& f, std::string& sql, std::vector<db::Value>& params);
// " AND (m.expires_at IS NULL OR m.expires_at > $n)" with now as $n.
void add_not_expired(const std::string& now, std::string& sql, std::vector<db::Value>& params);

struct Fields {
  std::string content;
  std::string metadata = "{}";  // JSON text
  std::vector<std::string> tags;
  std::optional<std::vector<float>> embedding;  // as the client sent it
  std::optional<std::string> expires_at;
};

struct NewMemory {
  std::string id, user_id, ns, now, traceparent;
  Fields fields;
};
// Inserts the memory (and its space's sequence step when it has an embedding). 422 when the embedding's
// dimension differs from the namespace's.
db::Row insert_memory(db::Session& s, const module::Outbox& outbox, const NewMemory& m);

struct Change {
  std::optional<std::string> content, metadata;
  std::optional<std::vector<std::string>> tags;
  bool set_embedding = false;  // embedding given (a null removes it)
  std::optional<std::vector<float>> embedding;
  bool set_expiry = false;  // ttl_seconds given (a null clears the expiry)
  std::optional<std::string> expires_at;
  bool empty() const { return !content && !metadata && !tags && !set_embedding && !set_expiry; }
};
// The If-Match header: nullopt when absent; else whether it names `version` (or is "*").
bool if_match_allows(std::string_view header, int64_t version);

// Applies the change, keeping the previous version in memory_versions, and at most `versions_kept` of them
// (the newest; 0 keeps none). Throws 404 (missing, another user's, expired) and 412 (If-Match names another
// version).
db::Row update_memory(db::Session& s, const module::Outbox& outbox, const std::string& user_id,
                      const std::string& id, const Change& c, std::string_view if_match,
                      const std::string& now, const std::string& traceparent, int64_t versions_kept);

// Deletes past versions that stopped being current before `horizon` (at most `batch`); how many.
int64_t forget_old_versions(db::Session& s, const std::string& horizon, int64_t batch);

// Deletes it; the namespace and whether it had an embedding, or nullopt when there was nothing to delete.
std::optional<std::pair<std::string, bool>> delete_memory(db::Session& s, const module::Outbox& outbox,
                                                          const std::string& user_id, const std::string& id,
                                                          const std::string& now,
                                                          const std::string& traceparent);

// Deletes up to `batch` expired memories; returns how many.
int64_t sweep_expired(db::Session& s, const std::string& now, int64_t batch);

// Float32 little-endian, the stored form of an embedding.
std::string embedding_blob(const std::vector<float>& v);
std::vector<float> embedding_from_blob(const std::string& bytes);

// A space's dimension, or 0 when the user has no embeddings in that namespace.
int space_dims(db::Session& s, const std::string& user_id, const std::string& ns);
// The user's namespaces holding embeddings of `dims` dimensions.
std::vector<std::string> spaces_with_dims(db::Session& s, const std::string& user_id, int dims);

// Reads the space's vector rows past `after_seq` (at most `limit`, in seq order), normalized for the index.
std::vector<VectorUpdate> vector_changes(db::Session& s, const std::string& user_id, const std::string& ns,
                                         int64_t after_seq, int64_t limit);

}  // namespace keel::memory
