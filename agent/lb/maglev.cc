#include "agent/lb/maglev.hpp"

#include <algorithm>
#include <tuple>

#include "agent/lb/hash.hpp"

namespace weft::lb {
namespace {

constexpr uint64_t kOffsetSeed = 0x6d61676c65762d6fULL;  // two independent hashes
constexpr uint64_t kSkipSeed = 0x6d61676c65762d73ULL;

struct Permutation {
  uint32_t id;
  uint64_t weight;
  uint64_t next;  // current position in the permutation
  uint64_t skip;
};

}  // namespace

bool IsPrime(uint32_t n) {
  if (n < 2) return false;
  for (uint64_t d = 2; d * d <= n; ++d) {
    if (n % d == 0) return false;
  }
  return true;
}

std::vector<uint32_t> BuildMaglevTable(std::vector<WeightedBackend> backends, uint32_t table_size) {
  std::erase_if(backends, [](const WeightedBackend& b) { return b.weight == 0; });
  if (backends.empty() || table_size < 2) return {};
  std::sort(backends.begin(), backends.end(), [](const WeightedBackend& a, const WeightedBackend& b) {
    return std::tie(a.name, a.id, a.weight) < std::tie(b.name, b.id, b.weight);
  });
  uint64_t max_weight = 0;
  std::vector<Permutation> perms;
  for (const auto& b : backends) {
    uint64_t offset = Hash64(b.name, kOffsetSeed) % table_size;
    uint64_t skip = Hash64(b.name, kSkipSeed) % (table_size - 1) + 1;
    perms.push_back({b.id, b.weight, offset, skip});
    max_weight = std::max<uint64_t>(max_weight, b.weight);
  }
  constexpr uint32_t kEmpty = UINT32_MAX;
  std::vector<uint32_t> table(table_size, kEmpty);
  uint32_t filled = 0;
  // Weighted turns: in round r, a backend of weight w takes a turn when
  // floor((r+1)w/max) > floor(r w/max); the heaviest backends take one every round.
  for (uint64_t round = 0;; ++round) {
    for (auto& p : perms) {
      if ((round + 1) * p.weight / max_weight == round * p.weight / max_weight) continue;
      while (table[p.next] != kEmpty) p.next = (p.next + p.skip) % table_size;
      table[p.next] = p.id;
      p.next = (p.next + p.skip) % table_size;
      if (++filled == table_size) return table;
    }
  }
}

}  // namespace weft::lb
