// Slots for weighted random selection: the kernel picks slot rand() % count.
#pragma once

#include <cstdint>
#include <vector>

#include "agent/lb/weighted_backend.hpp"

namespace weft::lb {

// Each backend of positive weight appears in proportion to its weight: weights
// are reduced by their gcd and, if their sum exceeds WEFT_MAX_RANDOM_SLOTS,
// scaled down so the count fits while every backend keeps at least one slot.
// Order: by backend name. With more backends than WEFT_MAX_RANDOM_SLOTS each
// gets one slot and the result is longer than the limit (callers reject it).
std::vector<uint32_t> BuildRandomSlots(std::vector<WeightedBackend> backends);

}  // namespace weft::lb
