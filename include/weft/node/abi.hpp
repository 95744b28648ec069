// The ABI version record of a node's pins: the pinned weft_meta map
// (<pin-root>/<node>/maps/weft_meta, weft/bpf_abi.h), stamped by the agent
// once every map of the node has this build's layout (WEFT_ABI_VERSION).
// Pins without it are ABI 1 (before weft_meta existed). The agent checks it
// before adopting pins (agent/datapath/abi.hpp: refuse newer, migrate older);
// weftctl checks it before decoding maps with its own structs.
#pragma once

#include <cstdint>
#include <string>

#include "weft/status.hpp"

namespace weft::node {

struct PinnedAbi {
  uint32_t version = 0;  // 0: nothing pinned (a fresh node); 1: pins without weft_meta
  bool stamped = false;  // weft_meta is pinned
};
// Reads <maps_dir>/weft_meta (maps_dir = R/N/maps).
Result<PinnedAbi> ReadPinnedAbi(const std::string& maps_dir);

}  // namespace weft::node
