#include "keel/memory/vector_index.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>

using keel::memory::normalize;
using keel::memory::VectorIndex;
using keel::memory::VectorSettings;
using keel::memory::VectorUpdate;

namespace {

std::vector<float> unit(std::vector<float> v) {
  EXPECT_TRUE(normalize(v));
  return v;
}

VectorUpdate row(const std::string& id, int64_t seq, std::vector<float> v) {
  return {id, seq, unit(std::move(v))};
}

std::vector<std::string> ids_of(const std::vector<keel::memory::VectorHit>& hits) {
  std::vector<std::string> out;
  for (const auto& h : hits) out.push_back(h.id);
  return out;
}

}  // namespace

TEST(VectorIndex, NormalizeRefusesZeroAndNonFinite) {
  std::vector<float> zero{0, 0, 0};
  EXPECT_FALSE(normalize(zero));
  std::vector<float> inf{1, std::numeric_limits<float>::infinity()};
  EXPECT_FALSE(normalize(inf));
  std::vector<float> v{3, 4};
  ASSERT_TRUE(normalize(v));
  EXPECT_FLOAT_EQ(v[0], 0.6f);
  EXPECT_FLOAT_EQ(v[1], 0.8f);
}

TEST(VectorIndex, ExactSearchRanksByCosineAndFollowsUpdates) {
  VectorIndex index(VectorSettings{});
  index.apply("u", "ns", 2, {row("a", 1, {1, 0}), row("b", 2, {1, 1}), row("c", 3, {0, 1})});
  EXPECT_EQ(index.applied_seq("u", "ns", 2), 3);
  EXPECT_EQ(index.applied_seq("u", "ns", 3), 0);  // another dimension is another cache
  auto hits = index.search("u", "ns", unit({1, 0.1f}), 3);
  EXPECT_EQ(ids_of(hits), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_NEAR(hits[0].score, 1 / std::sqrt(1.01), 1e-5);

  // A later seq moves "c"; an older one is ignored; a row without an embedding removes it.
  index.apply("u", "ns", 2, {row("c", 4, {1, 0.1f}), row("a", 2, {0, 1})});
  EXPECT_EQ(index.search("u", "ns", unit({1, 0.1f}), 1)[0].id, "c");
  index.apply("u", "ns", 2, {VectorUpdate{"c", 5, std::nullopt}});
  EXPECT_EQ(ids_of(index.search("u", "ns", unit({1, 0.1f}), 5)), (std::vector<std::string>{"a", "b"}));
  index.remove("u", "ns", "a");
  EXPECT_EQ(ids_of(index.search("u", "ns", unit({1, 0.1f}), 5)), (std::vector<std::string>{"b"}));
  EXPECT_TRUE(index.search("other", "ns", unit({1, 0}), 5).empty());
  EXPECT_TRUE(index.search("u", "ns", unit({1, 0, 0}), 5).empty());  // wrong dimension: nothing
}

TEST(VectorIndex, AllowedSetIsScoredExactly) {
  VectorIndex index(VectorSettings{});
  index.apply("u", "ns", 2, {row("a", 1, {1, 0}), row("b", 2, {1, 1}), row("c", 3, {0, 1})});
  std::unordered_set<std::string> allowed{"c", "b", "missing"};
  EXPECT_EQ(ids_of(index.search("u", "ns", unit({1, 0}), 5, &allowed)), (std::vector<std::string>{"b", "c"}));
}

TEST(VectorIndex, GraphSearchKeepsRecallAndSeesPendingWrites) {
  VectorSettings vs;
  vs.hnsw_threshold = 200;
  VectorIndex index(vs);
  std::mt19937 rng(42);
  std::normal_distribution<float> g;
  const int dims = 32;
  std::vector<std::vector<float>> data;
  std::vector<VectorUpdate> rows;
  for (int i = 0; i < 3000; ++i) {
    std::vector<float> v(dims);
    for (auto& x : v) x = g(rng);
    data.push_back(unit(v));
    rows.push_back({fmt::format("m{}", i), i + 1, data.back()});
  }
  index.apply("u", "ns", dims, rows);
  // Seconds in a release build; minutes under ThreadSanitizer (scripts/sanitize.sh).
  ASSERT_TRUE(index.wait_indexed(std::chrono::seconds(600)));
  EXPECT_EQ(index.stats().pending, 0u);
  EXPECT_EQ(index.stats().in_graph, 3000u);

  int found = 0;
  for (int q = 0; q < 50; ++q) {
    std::vector<float> query(dims);
    for (auto& x : query) x = g(rng);
    query = unit(query);
    std::vector<std::pair<float, int>> exact;
    for (int i = 0; i < 3000; ++i) {
      float dot = 0;
      for (int d = 0; d < dims; ++d) dot += query[d] * data[i][d];
      exact.emplace_back(-dot, i);
    }
    std::partial_sort(exact.begin(), exact.begin() + 10, exact.end());
    std::set<std::string> truth;
    for (int i = 0; i < 10; ++i) truth.insert(fmt::format("m{}", exact[i].second));
    for (const auto& h : index.search("u", "ns", query, 10)) found += truth.count(h.id);
  }
  EXPECT_GE(found / 500.0, 0.95);

  // A vector written after the graph was built is found at once (exact pass over pending writes), and a
  // moved one is found at its new place, not its old one.
  std::vector<float> fresh(dims, 0);
  fresh[0] = 1;
  index.apply("u", "ns", dims, {row("new", 5000, fresh), row("m7", 5001, {fresh.begin(), fresh.end()})});
  auto hits = index.search("u", "ns", fresh, 2);
  EXPECT_EQ(std::set<std::string>({hits[0].id, hits[1].id}), (std::set<std::string>{"new", "m7"}));
  ASSERT_TRUE(index.wait_indexed(std::chrono::seconds(30)));
  hits = index.search("u", "ns", fresh, 2);
  EXPECT_EQ(std::set<std::string>({hits[0].id, hits[1].id}), (std::set<std::string>{"new", "m7"}));
  EXPECT_NE(index.search("u", "ns", data[7], 1)[0].id, "m7");
  index.remove("u", "ns", "new");
  for (const auto& h : index.search("u", "ns", fresh, 5)) EXPECT_NE(h.id, "new");
}
