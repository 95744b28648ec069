// A 64-bit hash for Maglev permutations: the same value on every run and every
// machine (bytes are read little-endian explicitly), murmur3/xxhash-style mixing.
#pragma once

#include <cstdint>
#include <string_view>

namespace weft::lb {

uint64_t Hash64(std::string_view data, uint64_t seed);

}  // namespace weft::lb
