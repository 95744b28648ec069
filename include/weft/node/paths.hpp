// The node-local layout, one definition for the agent, weftctl and the tests:
// where an agent pins its BPF objects (bpffs) and keeps its state.
//
//   <pin-root>/<node>/                  the node lock (flock: one agent per node)
//   <pin-root>/<node>/maps/<map>        every map, pinned by name (weft/bpf_abi.h WEFT_MAP_*)
//   <pin-root>/<node>/links/<prog>      sock_lb's cgroup bpf_links (weft_connect4, ...)
//   <pin-root>/<node>/progs/<prog>      the attached tc programs (weftctl trace runs them)
//   <pin-root>/<node>/tc_links/tcx_<ifindex>_{ingress,egress}  tcx links of the pods' host veths
//
//   <state-dir>/<node>/                 0700, the agent's (sys::MakePrivateDir)
//   <state-dir>/<node>/names.json       0600, identities/policies/endpoints (weft/node/names_file.hpp)
//   <state-dir>/<node>/applied.json     0600, {"store_id", "version"} applied from the controller
//   <state-dir>/<node>/agent.sock       0600, the agent's admin endpoint (weft/node/admin.hpp)
//   <state-dir>/<node>/credentials/     0700, the node identity (weft/credentials.hpp)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "weft/status.hpp"

namespace weft::node {

inline constexpr const char* kDefaultPinRoot = "/sys/fs/bpf/weft";
inline constexpr const char* kDefaultStateDir = "/run/weft/agent";

// The tc programs' names (their pins under progs/).
inline constexpr const char* kProgFromPod = "weft_tc_from_pod";  // tcx ingress of the host veth: leaving the pod
inline constexpr const char* kProgToPod = "weft_tc_to_pod";      // tcx egress of the host veth: entering the pod

struct PinPaths {
  PinPaths(std::string pin_root, std::string node);
  std::string pin_root, node;
  std::string node_dir;      // R/N
  std::string maps_dir;      // R/N/maps
  std::string links_dir;     // R/N/links
  std::string progs_dir;     // R/N/progs
  std::string tc_links_dir;  // R/N/tc_links

  std::string Map(std::string_view name) const { return maps_dir + "/" + std::string(name); }
  std::string Prog(std::string_view name) const { return progs_dir + "/" + std::string(name); }
  // R/N/tc_links/tcx_<ifindex>_ingress (ingress: leaving the pod) or _egress.
  std::string TcxLink(uint32_t ifindex, bool ingress) const;
};

struct StatePaths {
  StatePaths(std::string state_dir, std::string node);
  std::string state_dir, node;
  std::string dir;           // S/N
  std::string names;         // S/N/names.json
  std::string applied;       // S/N/applied.json
  std::string admin_socket;  // S/N/agent.sock
  std::string credentials;   // S/N/credentials
};

// A tcx link's pin name under tc_links/: tcx_<ifindex>_ingress or _egress.
std::string TcxLinkName(uint32_t ifindex, bool ingress);

// A node name as a path component: non-empty, no '/', not "." or "..".
// (The agent requires a DNS-1123 subdomain, which is stricter.)
Status CheckNodeComponent(std::string_view node);

// The nodes under a pin root: directories with a maps/ directory, sorted.
std::vector<std::string> NodesUnder(const std::string& pin_root);

}  // namespace weft::node
