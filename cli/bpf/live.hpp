// Typed reads of single entries of a node's live maps (the ones `weftctl
// trace` and `weftctl flows` need), through weft/bpf_abi.h. A map that is not
// pinned is an error with err() == ENOENT; an absent key is std::nullopt.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "weft/bpf_abi.h"
#include "weft/ip.hpp"
#include "weft/status.hpp"

namespace weft::cli::bpf {

// A service entry of weft_services with its current generation's slots.
struct LiveService {
  IpAddr vip;
  uint16_t port = 0;  // host byte order
  uint8_t proto = 0;
  weft_svc_val val{};
  struct Backend {
    uint32_t id = 0;
    bool present = false;  // in weft_backends
    IpAddr ip;
    uint16_t port = 0;   // host byte order
    uint32_t slots = 0;  // slots of the current generation that point at it
  };
  std::vector<Backend> backends;    // by id
  std::vector<uint32_t> slot_table;  // backend id per slot (0: slot missing)
};

// Every weft_services entry for `vip` (all ports/protocols), or only
// port/proto when port != 0; slots read when `with_slots`.
Result<std::vector<LiveService>> ServicesOfVip(const std::string& maps_dir, const IpAddr& vip, uint16_t port,
                                               uint8_t proto, bool with_slots);

// weft_identity: the longest-prefix match for ip.
Result<std::optional<weft_ipcache_val>> IdentityOf(const std::string& maps_dir, const IpAddr& ip);
// weft_endpoints by host-veth ifindex.
Result<std::optional<weft_endpoint>> EndpointOf(const std::string& maps_dir, uint32_t ifindex);
// weft_policy by exact key.
Result<std::optional<weft_policy_val>> PolicyOf(const std::string& maps_dir, const weft_policy_key& key);
// weft_ev_stats summed over CPUs: {sent, lost}.
Result<std::pair<uint64_t, uint64_t>> EventStats(const std::string& maps_dir);

}  // namespace weft::cli::bpf
