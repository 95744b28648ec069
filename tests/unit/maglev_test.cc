#include "agent/lb/maglev.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>

#include "agent/lb/hash.hpp"
#include "weft/bpf_abi.h"

namespace weft::lb {
namespace {

constexpr uint32_t kSize = WEFT_MAGLEV_DEFAULT_SIZE;  // 16381

std::vector<WeightedBackend> Backends(size_t n, uint32_t weight = 1) {
  std::vector<WeightedBackend> out;
  for (size_t i = 0; i < n; ++i) {
    out.push_back({"10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1) + ":8080",
                   static_cast<uint32_t>(i + 1), weight});
  }
  return out;
}

std::map<uint32_t, size_t> Counts(const std::vector<uint32_t>& table) {
  std::map<uint32_t, size_t> out;
  for (uint32_t id : table) ++out[id];
  return out;
}

TEST(Maglev, IsPrime) {
  EXPECT_TRUE(IsPrime(2));
  EXPECT_TRUE(IsPrime(16381));
  EXPECT_TRUE(IsPrime(WEFT_MAGLEV_MAX_SIZE));
  EXPECT_FALSE(IsPrime(0));
  EXPECT_FALSE(IsPrime(1));
  EXPECT_FALSE(IsPrime(16383));
  EXPECT_FALSE(IsPrime(65535));
}

TEST(Maglev, HashIsStable) {
  // Fixed values: the table must not change across builds or machines.
  EXPECT_EQ(Hash64("", 0), Hash64("", 0));
  EXPECT_NE(Hash64("10.0.0.1:80", 1), Hash64("10.0.0.1:80", 2));
  EXPECT_NE(Hash64("10.0.0.1:80", 1), Hash64("10.0.0.2:80", 1));
  EXPECT_EQ(Hash64("10.0.0.1:8080", 0x6d61676c65762d6fULL), 6669431939382238440ULL);
}

TEST(Maglev, EqualWeightsBalanced) {
  for (size_t n : {3, 10, 100}) {
    auto table = BuildMaglevTable(Backends(n), kSize);
    ASSERT_EQ(table.size(), kSize);
    auto counts = Counts(table);
    ASSERT_EQ(counts.size(), n);
    double mean = static_cast<double>(kSize) / n;
    for (const auto& [id, count] : counts) {
      EXPECT_LE(std::abs(count - mean), 0.01 * mean) << "n=" << n << " backend " << id << ": " << count;
    }
  }
}

TEST(Maglev, RemovingOneBackendMovesLittle) {
  for (size_t n : {3, 5, 10, 50}) {
    auto all = Backends(n);
    auto before = BuildMaglevTable(all, kSize);
    for (size_t removed : {size_t{0}, n / 2, n - 1}) {
      auto rest = all;
      rest.erase(rest.begin() + removed);
      auto after = BuildMaglevTable(rest, kSize);
      size_t moved = 0;
      for (size_t i = 0; i < kSize; ++i) moved += before[i] != after[i];
      double fraction = static_cast<double>(moved) / kSize;
      EXPECT_LE(fraction, 1.0 / n + 0.02) << "n=" << n << " removed #" << removed;
      for (uint32_t id : after) EXPECT_NE(id, all[removed].id);
    }
  }
}

TEST(Maglev, DeterministicAndOrderIndependent) {
  auto backends = Backends(20);
  auto table = BuildMaglevTable(backends, kSize);
  EXPECT_EQ(BuildMaglevTable(backends, kSize), table);
  std::mt19937 rng(42);
  for (int i = 0; i < 5; ++i) {
    std::shuffle(backends.begin(), backends.end(), rng);
    EXPECT_EQ(BuildMaglevTable(backends, kSize), table);
  }
}

TEST(Maglev, WeightsRespected) {
  struct Row {
    std::vector<uint32_t> weights;
  };
  const Row rows[] = {{{1, 2}}, {{1, 1, 2}}, {{1, 3, 6}}, {{5, 5, 5, 1}}, {{100, 1}}};
  for (const auto& row : rows) {
    std::vector<WeightedBackend> backends = Backends(row.weights.size());
    uint64_t total = 0;
    for (size_t i = 0; i < backends.size(); ++i) {
      backends[i].weight = row.weights[i];
      total += row.weights[i];
    }
    auto counts = Counts(BuildMaglevTable(backends, kSize));
    for (const auto& b : backends) {
      double want = static_cast<double>(b.weight) / total;
      EXPECT_NEAR(static_cast<double>(counts[b.id]) / kSize, want, 0.01) << "weight " << b.weight;
    }
  }
}

TEST(Maglev, ZeroWeightAndEmpty) {
  EXPECT_TRUE(BuildMaglevTable({}, kSize).empty());
  EXPECT_TRUE(BuildMaglevTable({{"a", 1, 0}}, kSize).empty());
  auto counts = Counts(BuildMaglevTable({{"a", 1, 0}, {"b", 2, 1}}, 251));
  EXPECT_EQ(counts, (std::map<uint32_t, size_t>{{2, 251}}));
}

}  // namespace
}  // namespace weft::lb
