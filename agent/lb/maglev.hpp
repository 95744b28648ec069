// Maglev consistent hashing (Eisenbud et al., NSDI'16), with weights.
#pragma once

#include <cstdint>
#include <vector>

#include "agent/lb/weighted_backend.hpp"

namespace weft::lb {

bool IsPrime(uint32_t n);

// The lookup table: table_size entries, each a backend id. table_size must be
// a prime greater than 1. A backend of weight w gets about w shares. The result
// depends only on the set of (name, id, weight), not on the input order.
// No backend of positive weight: an empty table.
std::vector<uint32_t> BuildMaglevTable(std::vector<WeightedBackend> backends, uint32_t table_size);

}  // namespace weft::lb
