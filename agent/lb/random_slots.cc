#include "agent/lb/random_slots.hpp"

#include <algorithm>
#include <numeric>
#include <queue>
#include <tuple>

#include "weft/bpf_abi.h"

namespace weft::lb {
namespace {

// Shares `slots` among weights by largest remainder (each count is within one
// slot of its exact share), then lifts zeros to one slot, taking those from
// the largest counts. Needs weights.size() < slots and a positive total.
std::vector<uint64_t> Apportion(const std::vector<uint64_t>& weights, uint64_t total, uint64_t slots) {
  std::vector<uint64_t> counts(weights.size());
  std::vector<uint64_t> remainders(weights.size());
  uint64_t assigned = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    counts[i] = weights[i] * slots / total;
    remainders[i] = weights[i] * slots % total;
    assigned += counts[i];
  }
  std::vector<size_t> order(weights.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return remainders[a] > remainders[b]; });
  for (size_t k = 0; assigned < slots; ++k, ++assigned) ++counts[order[k]];

  std::priority_queue<std::pair<uint64_t, size_t>> largest;  // (count, index)
  size_t lifted = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] == 0) {
      counts[i] = 1;
      ++lifted;
    } else {
      largest.emplace(counts[i], i);
    }
  }
  for (; lifted > 0; --lifted) {
    auto [count, i] = largest.top();
    largest.pop();
    --counts[i];
    if (counts[i] > 1) largest.emplace(counts[i], i);
  }
  return counts;
}

}  // namespace

std::vector<uint32_t> BuildRandomSlots(std::vector<WeightedBackend> backends) {
  std::erase_if(backends, [](const WeightedBackend& b) { return b.weight == 0; });
  std::sort(backends.begin(), backends.end(), [](const WeightedBackend& a, const WeightedBackend& b) {
    return std::tie(a.name, a.id) < std::tie(b.name, b.id);
  });
  std::vector<uint64_t> counts;
  uint64_t total = 0;
  for (const auto& b : backends) {
    counts.push_back(b.weight);
    total += b.weight;
  }
  if (total > WEFT_MAX_RANDOM_SLOTS) {
    counts = backends.size() < WEFT_MAX_RANDOM_SLOTS ? Apportion(counts, total, WEFT_MAX_RANDOM_SLOTS)
                                                     : std::vector<uint64_t>(backends.size(), 1);
  }
  uint64_t divisor = std::accumulate(counts.begin(), counts.end(), uint64_t{0},
                                     [](uint64_t g, uint64_t c) { return std::gcd(g, c); });
  std::vector<uint32_t> slots;
  for (size_t i = 0; i < backends.size(); ++i) slots.insert(slots.end(), counts[i] / divisor, backends[i].id);
  return slots;
}

}  // namespace weft::lb
