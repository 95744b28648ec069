#include "agent/lb/hash.hpp"

namespace weft::lb {
namespace {

constexpr uint64_t kPrime1 = 0x9E3779B185EBCA87ULL;
constexpr uint64_t kPrime2 = 0xC2B2AE3D27D4EB4FULL;
constexpr uint64_t kPrime3 = 0x165667B19E3779F9ULL;

uint64_t Rotl(uint64_t v, int r) { return (v << r) | (v >> (64 - r)); }

uint64_t LoadLe(const char* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

uint64_t Round(uint64_t k) { return Rotl(k * kPrime2, 31) * kPrime1; }

// murmur3's fmix64: every input bit affects every output bit.
uint64_t Finalize(uint64_t h) {
  h ^= h >> 33;
  h *= 0xFF51AFD7ED558CCDULL;
  h ^= h >> 33;
  h *= 0xC4CEB9FE1A85EC53ULL;
  h ^= h >> 33;
  return h;
}

}  // namespace

uint64_t Hash64(std::string_view data, uint64_t seed) {
  uint64_t h = seed * kPrime3 + data.size() * kPrime1;
  size_t i = 0;
  for (; i + 8 <= data.size(); i += 8) h = Rotl(h ^ Round(LoadLe(data.data() + i, 8)), 27) * kPrime1 + kPrime3;
  if (i < data.size()) h = Rotl(h ^ Round(LoadLe(data.data() + i, data.size() - i)), 27) * kPrime1 + kPrime3;
  return Finalize(h);
}

}  // namespace weft::lb
