#pragma once
// The memory module's background work: deleting expired memories and old versions, and loading every vector
// space into this process's index at start.
#include <boost/asio/awaitable.hpp>
#include <memory>

#include "keel/memory/state.hpp"

namespace keel::memory {

// Deletes expired memories in batches (reads already hide them), and past versions older than the
// module's limit, every sweep_interval.
boost::asio::awaitable<void> sweep(std::shared_ptr<Memories> m);
// Loads every vector space into the index (graphs are then built in the background).
boost::asio::awaitable<void> load_spaces(std::shared_ptr<Memories> m);

}  // namespace keel::memory
