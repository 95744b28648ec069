#pragma once

#include <cstdint>
#include <string>

namespace weft::lb {

// A backend as the slot builders see it. `name` is stable across restarts and
// machines ("10.0.0.1:8080") and alone decides a backend's place; `id` is
// what the slots hold; weight 0 excludes the backend.
struct WeightedBackend {
  std::string name;
  uint32_t id = 0;
  uint32_t weight = 1;
};

}  // namespace weft::lb
