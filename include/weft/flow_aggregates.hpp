// Reading the exact flow aggregates of tc_policy (include/weft/bpf_abi.h):
// weft_flows maps each weft_flow_key to a slot, weft_flow_ctr[slot] holds the
// per-CPU counters. One reader for the agent's metrics, weftctl and tests.
#pragma once

#include <cstdint>
#include <vector>

#include "weft/bpf_abi.h"
#include "weft/status.hpp"

namespace weft::flows {

struct Aggregate {
  weft_flow_key key{};
  uint32_t slot = 0;
  weft_flow_val total{};  // summed over CPUs
};

// Every key of weft_flows (flows_fd) with its counters from weft_flow_ctr
// (counters_fd). A key deleted while iterating is skipped; a slot the counter
// map cannot hold is an error naming the key's slot and the map's capacity.
Result<std::vector<Aggregate>> ReadAggregates(int flows_fd, int counters_fd);

// The counters of one key, summed over CPUs; all zero when the key is absent.
Result<weft_flow_val> ReadAggregate(int flows_fd, int counters_fd, const weft_flow_key& key);

}  // namespace weft::flows
