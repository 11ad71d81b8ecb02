#pragma once
// In-memory vector search over each user's namespaces ("spaces"). The database holds the embeddings; this
// index is a cache of them that any number of processes keep, each catching up by the space's vector_seq
// (see 0005_memory.sql). A small space is searched exactly; once a space reaches `hnsw_threshold` vectors a
// background thread builds an HNSW graph (hnswlib) and from then on searches go to the graph, plus an exact
// pass over the vectors written since the graph last caught up. Similarity is cosine: vectors are stored
// normalized and compared by inner product.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace keel::memory {

struct VectorSettings {
  size_t hnsw_threshold = 2048;  // spaces with fewer vectors are searched exactly
  size_t m = 16;                 // HNSW graph degree
  size_t ef_construction = 128;
  size_t ef_search = 96;  // at least k
};

struct VectorHit {
  std::string id;
  float score;  // cosine similarity, -1..1
};

// One database row seen by a catch-up: the memory's embedding at `seq`, or none when it was removed.
struct VectorUpdate {
  std::string id;
  int64_t seq = 0;
  std::optional<std::vector<float>> embedding;  // normalized, `dims` long
};

// Scales v to unit length; false when it has no direction (all zeros) or a value is not finite.
bool normalize(std::vector<float>& v);

class VectorIndex {
 public:
  explicit VectorIndex(VectorSettings settings);
  ~VectorIndex();
  VectorIndex(const VectorIndex&) = delete;
  VectorIndex& operator=(const VectorIndex&) = delete;

  // The highest vector_seq applied to the space (0 when unknown, or cached with another dimension).
  int64_t applied_seq(const std::string& user_id, const std::string& ns, int dims) const;
  // Applies rows in increasing seq order; rows at or below the applied seq are skipped, so concurrent
  // catch-ups of one space are harmless.
  void apply(const std::string& user_id, const std::string& ns, int dims,
             const std::vector<VectorUpdate>& rows);
  // Drops a memory's vector (a delete seen by this process, or a hit the database no longer has).
  void remove(const std::string& user_id, const std::string& ns, const std::string& id);

  // The k most similar live vectors of the space, best first. When `allowed` is given only those ids are
  // scored, exactly.
  std::vector<VectorHit> search(const std::string& user_id, const std::string& ns,
                                const std::vector<float>& query, size_t k,
                                const std::unordered_set<std::string>* allowed = nullptr) const;

  struct Stats {
    size_t spaces = 0, vectors = 0, in_graph = 0, pending = 0;
  };
  Stats stats() const;
  // Blocks until no space has vectors waiting for its graph (tests and benchmarks), or the timeout passes.
  bool wait_indexed(std::chrono::milliseconds timeout) const;
  size_t space_size(const std::string& user_id, const std::string& ns) const;

  struct Space;

 private:
  std::shared_ptr<Space> find(const std::string& user_id, const std::string& ns) const;
  std::shared_ptr<Space> find_or_create(const std::string& user_id, const std::string& ns, int dims);
  void indexer_loop();
  void wake_indexer(const std::shared_ptr<Space>& s);

  VectorSettings settings_;
  mutable std::shared_mutex spaces_mu_;
  std::unordered_map<std::string, std::shared_ptr<Space>> spaces_;

  mutable std::mutex queue_mu_;
  mutable std::condition_variable queue_cv_;
  std::vector<std::weak_ptr<Space>> queue_;
  bool stopping_ = false;
  std::atomic<size_t> building_{0};
  std::thread indexer_;
};

}  // namespace keel::memory
