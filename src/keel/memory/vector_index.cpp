#include "keel/memory/vector_index.hpp"

#include <hnswlib/hnswlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>

namespace keel::memory {

namespace {

constexpr uint8_t kLive = 1;     // the slot holds a memory's vector
constexpr uint8_t kPending = 2;  // ...that the graph does not have yet (searched exactly)
constexpr uint8_t kInGraph = 4;  // the graph holds the slot's current vector, unmarked

std::string space_key(const std::string& user_id, const std::string& ns) { return user_id + '\n' + ns; }

using Ranked = std::vector<std::pair<float, uint32_t>>;  // (similarity, slot)

void keep_best(Ranked& r, size_t k) {
  auto better = [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  if (r.size() > k) {
    std::partial_sort(r.begin(), r.begin() + static_cast<std::ptrdiff_t>(k), r.end(), better);
    r.resize(k);
  } else {
    std::sort(r.begin(), r.end(), better);
  }
}

}  // namespace

bool normalize(std::vector<float>& v) {
  double sum = 0;
  for (float x : v) {
    if (!std::isfinite(x)) return false;
    sum += static_cast<double>(x) * x;
  }
  if (!(sum > 0) || !std::isfinite(sum)) return false;
  const double inv = 1.0 / std::sqrt(sum);
  for (float& x : v) x = static_cast<float>(x * inv);
  return true;
}

struct VectorIndex::Space {
  explicit Space(int d)
      : dims(d), ip(static_cast<size_t>(d)), dist(ip.get_dist_func()), dist_param(ip.get_dist_func_param()) {}
  const int dims;
  mutable std::shared_mutex mu;
  int64_t applied = 0;
  std::vector<std::string> ids;  // slot -> memory id ("" when free)
  std::vector<float> data;       // slot * dims, normalized
  std::vector<uint8_t> flags;
  std::unordered_map<std::string, uint32_t> slot_of;
  std::vector<uint32_t> free_slots;
  std::deque<uint32_t> pending;  // slots flagged kPending, in the order they were written
  size_t live = 0;
  hnswlib::InnerProductSpace ip;
  hnswlib::DISTFUNC<float> dist;  // 1 - inner product, SIMD where the build allows
  void* dist_param;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> graph;
  bool queued = false;  // guarded by the index's queue mutex

  const float* vec(uint32_t slot) const { return data.data() + static_cast<size_t>(slot) * dims; }
  float similarity(const float* q, uint32_t slot) const { return 1.0f - dist(q, vec(slot), dist_param); }

  void unlink_from_graph(uint32_t slot) {
    if (flags[slot] & kInGraph) {
      graph->markDelete(slot);
      flags[slot] &= static_cast<uint8_t>(~kInGraph);
    }
  }

  void set(const std::string& id, const std::vector<float>& v) {
    uint32_t slot;
    auto it = slot_of.find(id);
    if (it != slot_of.end()) {
      slot = it->second;
      unlink_from_graph(slot);
    } else {
      if (!free_slots.empty()) {
        slot = free_slots.back();
        free_slots.pop_back();
      } else {
        slot = static_cast<uint32_t>(ids.size());
        ids.emplace_back();
        flags.push_back(0);
        data.resize(data.size() + static_cast<size_t>(dims));
      }
      ids[slot] = id;
      slot_of.emplace(id, slot);
      flags[slot] |= kLive;
      ++live;
    }
    std::copy(v.begin(), v.end(), data.begin() + static_cast<std::ptrdiff_t>(slot) * dims);
    if (!(flags[slot] & kPending)) {
      flags[slot] |= kPending;
      pending.push_back(slot);
    }
    if (pending.size() > 2 * live + 64) {  // drop the entries of erased slots
      std::erase_if(pending, [&](uint32_t p) { return !(flags[p] & kPending); });
    }
  }

  void erase(const std::string& id) {
    auto it = slot_of.find(id);
    if (it == slot_of.end()) return;
    const uint32_t slot = it->second;
    unlink_from_graph(slot);
    flags[slot] = 0;  // a stale entry in `pending` is skipped by its flag
    ids[slot].clear();
    slot_of.erase(it);
    free_slots.push_back(slot);
    --live;
  }

  size_t pending_count() const {
    size_t n = 0;
    for (uint32_t s : pending) n += (flags[s] & kPending) ? 1 : 0;
    return n;
  }
};

VectorIndex::VectorIndex(VectorSettings settings) : settings_(settings) {
  indexer_ = std::thread([this] { indexer_loop(); });
}

VectorIndex::~VectorIndex() {
  {
    std::lock_guard lock(queue_mu_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  indexer_.join();
}

std::shared_ptr<VectorIndex::Space> VectorIndex::find(const std::string& user_id,
                                                      const std::string& ns) const {
  std::shared_lock lock(spaces_mu_);
  auto it = spaces_.find(space_key(user_id, ns));
  return it == spaces_.end() ? nullptr : it->second;
}

std::shared_ptr<VectorIndex::Space> VectorIndex::find_or_create(const std::string& user_id,
                                                                const std::string& ns, int dims) {
  const std::string key = space_key(user_id, ns);
  {
    std::shared_lock lock(spaces_mu_);
    auto it = spaces_.find(key);
    if (it != spaces_.end() && it->second->dims == dims) return it->second;
  }
  std::unique_lock lock(spaces_mu_);
  auto& slot = spaces_[key];
  // A space's dimension is fixed in the database; a different one here means the cache is from a deleted
  // user's namespace of the same name, so it starts over.
  if (!slot || slot->dims != dims) slot = std::make_shared<Space>(dims);
  return slot;
}

int64_t VectorIndex::applied_seq(const std::string& user_id, const std::string& ns, int dims) const {
  auto s = find(user_id, ns);
  if (!s || s->dims != dims) return 0;
  std::shared_lock lock(s->mu);
  return s->applied;
}

void VectorIndex::apply(const std::string& user_id, const std::string& ns, int dims,
                        const std::vector<VectorUpdate>& rows) {
  auto s = find_or_create(user_id, ns, dims);
  {
    std::unique_lock lock(s->mu);
    for (const auto& r : rows) {
      if (r.seq <= s->applied) continue;
      if (r.embedding && r.embedding->size() == static_cast<size_t>(dims))
        s->set(r.id, *r.embedding);
      else
        s->erase(r.id);
      s->applied = r.seq;
    }
  }
  wake_indexer(s);
}

void VectorIndex::remove(const std::string& user_id, const std::string& ns, const std::string& id) {
  auto s = find(user_id, ns);
  if (!s) return;
  std::unique_lock lock(s->mu);
  s->erase(id);
}

size_t VectorIndex::space_size(const std::string& user_id, const std::string& ns) const {
  auto s = find(user_id, ns);
  if (!s) return 0;
  std::shared_lock lock(s->mu);
  return s->live;
}

std::vector<VectorHit> VectorIndex::search(const std::string& user_id, const std::string& ns,
                                           const std::vector<float>& query, size_t k,
                                           const std::unordered_set<std::string>* allowed) const {
  std::vector<VectorHit> out;
  auto s = find(user_id, ns);
  if (!s || k == 0 || query.size() != static_cast<size_t>(s->dims)) return out;
  std::shared_lock lock(s->mu);
  Ranked ranked;
  const float* q = query.data();
  if (allowed) {
    for (const auto& id : *allowed) {
      auto it = s->slot_of.find(id);
      if (it != s->slot_of.end()) ranked.emplace_back(s->similarity(q, it->second), it->second);
    }
  } else if (s->graph) {
    auto found = s->graph->searchKnn(q, std::min(k, s->live));
    while (!found.empty()) {
      const auto slot = static_cast<uint32_t>(found.top().second);
      if (slot < s->flags.size() && (s->flags[slot] & kInGraph))
        ranked.emplace_back(1.0f - found.top().first, slot);
      found.pop();
    }
    for (uint32_t slot : s->pending)
      if (s->flags[slot] & kPending) ranked.emplace_back(s->similarity(q, slot), slot);
  } else {
    ranked.reserve(s->live);
    for (uint32_t slot = 0; slot < s->flags.size(); ++slot)
      if (s->flags[slot] & kLive) ranked.emplace_back(s->similarity(q, slot), slot);
  }
  keep_best(ranked, k);
  out.reserve(ranked.size());
  for (const auto& [score, slot] : ranked) out.push_back({s->ids[slot], score});
  return out;
}

VectorIndex::Stats VectorIndex::stats() const {
  Stats st;
  std::vector<std::shared_ptr<Space>> all;
  {
    std::shared_lock lock(spaces_mu_);
    for (const auto& [k, s] : spaces_) all.push_back(s);
  }
  st.spaces = all.size();
  for (const auto& s : all) {
    std::shared_lock lock(s->mu);
    st.vectors += s->live;
    if (s->graph || s->live >= settings_.hnsw_threshold) {
      const size_t p = s->pending_count();
      st.pending += p;
      st.in_graph += s->live - p;
    }
  }
  return st;
}

bool VectorIndex::wait_indexed(std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (stats().pending > 0 || building_.load() > 0) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

void VectorIndex::wake_indexer(const std::shared_ptr<Space>& s) {
  {
    std::shared_lock lock(s->mu);
    if (!s->graph && s->live < settings_.hnsw_threshold) return;
    if (s->pending.empty()) return;
  }
  {
    std::lock_guard lock(queue_mu_);
    if (s->queued) return;
    s->queued = true;
    queue_.push_back(s);
    building_.fetch_add(1);
  }
  queue_cv_.notify_one();
}

// Moves pending vectors into the space's graph one at a time, each under the space's write lock, so a search
// waits for at most one insertion.
void VectorIndex::indexer_loop() {
  for (;;) {
    std::shared_ptr<Space> s;
    {
      std::unique_lock lock(queue_mu_);
      queue_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      s = queue_.front().lock();
      queue_.erase(queue_.begin());
      if (s) s->queued = false;
    }
    if (!s) {
      building_.fetch_sub(1);
      continue;
    }
    for (;;) {
      {
        std::lock_guard stop(queue_mu_);
        if (stopping_) break;
      }
      std::unique_lock lock(s->mu);
      if (!s->graph) {
        s->graph = std::make_unique<hnswlib::HierarchicalNSW<float>>(
            &s->ip, std::max<size_t>(4096, s->ids.size() * 2), settings_.m, settings_.ef_construction);
        s->graph->setEf(settings_.ef_search);
      }
      uint32_t slot = UINT32_MAX;
      while (!s->pending.empty()) {
        const uint32_t candidate = s->pending.front();
        if (s->flags[candidate] & kPending) {
          slot = candidate;
          break;
        }
        s->pending.pop_front();
      }
      if (slot == UINT32_MAX) break;
      if (s->graph->cur_element_count >= s->graph->max_elements_ &&
          s->graph->label_lookup_.find(slot) == s->graph->label_lookup_.end())
        s->graph->resizeIndex(s->graph->max_elements_ * 2);
      s->graph->addPoint(s->vec(slot), slot);
      s->flags[slot] = static_cast<uint8_t>((s->flags[slot] & ~kPending) | kInGraph);
      s->pending.pop_front();
    }
    building_.fetch_sub(1);
  }
}

}  // namespace keel::memory
