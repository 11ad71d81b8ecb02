#include <algorithm>

#include "keel/core/error.hpp"
#include "keel/core/ids.hpp"
#include "keel/core/log.hpp"
#include "keel/core/thread_slots.hpp"
#include "keel/db/database.hpp"
#include "keel/gateway/gateway.hpp"
#include "keel/module/caller.hpp"
#include "keel/module/registry_view.hpp"

namespace keel::gateway {

namespace net = boost::asio;
using http::iequals;
using http::Method;
using http::Request;
using http::Response;

void Meter::add(const std::string& user_id, const std::string& module) {
  std::lock_guard lk(mu_);
  const std::pair<std::string_view, std::string_view> key(user_id, module);
  if (auto it = counts_.find(key); it != counts_.end())
    ++it->second;
  else
    counts_.emplace(std::pair<std::string, std::string>(user_id, module), 1);
  ++per_user_[user_id];
}

int64_t Meter::pending(const std::string& user_id) {
  std::lock_guard lk(mu_);
  int64_t n = 0;
  if (auto it = per_user_.find(user_id); it != per_user_.end()) n += it->second;
  if (auto it = in_flight_.find(user_id); it != in_flight_.end()) n += it->second;
  return n;
}

Meter::Batch Meter::take() {
  std::lock_guard lk(mu_);
  if (unwritten_) {
    Batch batch = std::move(*unwritten_);
    unwritten_.reset();
    return batch;
  }
  Batch batch{Counts(counts_.begin(), counts_.end()), std::string()};
  if (!batch.counts.empty()) batch.prefix = "gateway:" + uuid_v7();
  counts_.clear();
  for (const auto& [user, n] : per_user_) in_flight_[user] += n;
  per_user_.clear();
  return batch;
}

void Meter::settle(const Batch& batch, bool written) {
  std::lock_guard lk(mu_);
  if (!written) {
    if (!batch.counts.empty()) unwritten_ = batch;  // still in flight, so still pending
    return;
  }
  for (const auto& [key, n] : batch.counts)
    if (auto it = in_flight_.find(key.first); it != in_flight_.end() && (it->second -= n) <= 0)
      in_flight_.erase(it);
}

void Meter::write(db::Session& s, const Counts& counts, const std::string& prefix) const {
  std::vector<module::RequestCount> requests;
  requests.reserve(counts.size());
  for (const auto& [key, n] : counts) requests.push_back({key.first, key.second, n});
  accounts_.charge_requests(s, requests, prefix);
}

void Meter::flush_sync(db::Database& db, const std::function<void()>& committed) {
  for (int round = 0; round < 2; ++round) {  // a batch a failed write left, then the counts since
    const Batch batch = take();
    if (batch.counts.empty()) return;
    bool written = false;
    try {
      write_sync(db, batch);
      written = true;
      committed();
    } catch (const std::exception& e) {
      log::warn("usage metering flush failed", {{"error", e.what()}});
    }
    settle(batch, written);
    if (!written) return;
  }
}

void Meter::write_sync(db::Database& db, const Batch& batch) {
  db.write_sync([&](db::Session& s) { write(s, batch.counts, batch.prefix); });
}

net::awaitable<void> Meter::write(db::Database& db, const Batch& batch) {
  co_await db.write([&](db::Session& s) { write(s, batch.counts, batch.prefix); });
}

}  // namespace keel::gateway
