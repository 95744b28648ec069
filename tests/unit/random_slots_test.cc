#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "agent/lb/random_slots.hpp"
#include "weft/bpf_abi.h"

namespace weft::lb {
namespace {

std::map<uint32_t, size_t> Counts(const std::vector<uint32_t>& slots) {
  std::map<uint32_t, size_t> out;
  for (uint32_t id : slots) ++out[id];
  return out;
}

TEST(RandomSlots, Distribution) {
  struct Row {
    const char* what;
    std::vector<WeightedBackend> backends;
    std::map<uint32_t, size_t> want;  // id -> slots
  };
  const Row rows[] = {
      {"equal weights: one slot each", {{"a", 1, 1}, {"b", 2, 1}, {"c", 3, 1}}, {{1, 1}, {2, 1}, {3, 1}}},
      {"1:1:2", {{"a", 1, 1}, {"b", 2, 1}, {"c", 3, 2}}, {{1, 1}, {2, 1}, {3, 2}}},
      {"reduced by gcd", {{"a", 1, 100}, {"b", 2, 100}, {"c", 3, 200}}, {{1, 1}, {2, 1}, {3, 2}}},
      {"weight 0 excluded", {{"a", 1, 0}, {"b", 2, 5}}, {{2, 1}}},
      {"no backends", {}, {}},
      {"only weight 0", {{"a", 1, 0}}, {}},
  };
  for (const auto& row : rows) EXPECT_EQ(Counts(BuildRandomSlots(row.backends)), row.want) << row.what;
}

TEST(RandomSlots, OrderedByNameRegardlessOfInput) {
  std::vector<WeightedBackend> backends = {{"c", 3, 2}, {"a", 1, 1}, {"b", 2, 1}};
  EXPECT_EQ(BuildRandomSlots(backends), (std::vector<uint32_t>{1, 2, 3, 3}));
  std::reverse(backends.begin(), backends.end());
  EXPECT_EQ(BuildRandomSlots(backends), (std::vector<uint32_t>{1, 2, 3, 3}));
}

TEST(RandomSlots, ScaledToTheLimitKeepingEveryBackend) {
  struct Row {
    const char* what;
    std::vector<uint32_t> weights;
  };
  std::vector<uint32_t> many(2000, 5);
  many.push_back(3000);
  const Row rows[] = {
      {"large coprime weights", {1000003, 2000003, 3000017}},
      {"one huge, many tiny", {4000000000u, 1, 1, 1, 1}},
      {"many backends, one heavy", many},
      {"sum just above the limit", {2048, 2049}},
  };
  for (const auto& row : rows) {
    std::vector<WeightedBackend> backends;
    uint64_t total = 0;
    for (size_t i = 0; i < row.weights.size(); ++i) {
      backends.push_back({"b" + std::to_string(i), static_cast<uint32_t>(i + 1), row.weights[i]});
      total += row.weights[i];
    }
    auto slots = BuildRandomSlots(backends);
    ASSERT_LE(slots.size(), WEFT_MAX_RANDOM_SLOTS) << row.what;
    auto counts = Counts(slots);
    ASSERT_EQ(counts.size(), backends.size()) << row.what << ": every backend keeps a slot";
    for (const auto& b : backends) {
      double want = static_cast<double>(b.weight) / total;
      double got = static_cast<double>(counts[b.id]) / slots.size();
      EXPECT_NEAR(got, want, 0.01) << row.what << " backend " << b.name;
    }
  }
}

TEST(RandomSlots, MoreBackendsThanSlotsGetOneEach) {
  std::vector<WeightedBackend> backends;
  for (uint32_t i = 1; i <= WEFT_MAX_RANDOM_SLOTS + 1; ++i) backends.push_back({"b" + std::to_string(i), i, i});
  EXPECT_EQ(BuildRandomSlots(backends).size(), WEFT_MAX_RANDOM_SLOTS + 1u) << "the caller rejects this";
}

}  // namespace
}  // namespace weft::lb
