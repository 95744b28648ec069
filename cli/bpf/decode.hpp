// Typed decoding of Weft's pinned maps (include/weft/bpf_abi.h) into a table
// and JSON, with service and workload names when a source of names is known
// (the lab's state.json, or the agent's config file via --names-from).
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/bpf/pinned_map.hpp"
#include "weft/status.hpp"

namespace weft::cli::bpf {

// Names by address, as strings in IpAddr::ToString form.
struct Names {
  std::map<std::string, std::string> vips;       // VIP -> "ns/service"
  std::map<std::string, std::string> workloads;  // pod/workload IP -> name
};

// Services (clusterIP, clusterIPs) and WorkloadEntries (address) of a
// Kubernetes/Istio YAML file such as the agent's --config.
Result<Names> NamesFromYaml(const std::string& path);

struct Decoded {
  std::vector<std::vector<std::string>> rows;  // header first
  nlohmann::json json = nlohmann::json::array();
  std::string note;  // e.g. "16381 slots in 2 groups (--raw for every slot)"
};

struct DumpOptions {
  bool raw = false;  // weft_slots: one row per slot
};

// The map names `weftctl bpf dump` decodes.
const std::vector<std::string>& KnownMaps();

// Decodes one map. `maps_dir` lets a decoder read a sibling map for names
// (weft_slots and the stats maps look up weft_services / weft_backends).
// Maps without a decoder are dumped as hex key/value.
Result<Decoded> DecodeMap(const PinnedMap& m, const std::string& maps_dir, const Names& names, const DumpOptions& opts);

}  // namespace weft::cli::bpf
