// What `weftctl flows` and `weftctl trace` need to know about a cluster besides
// the maps: the pin root and its nodes, each node's network namespace, the
// agent's names (<state-dir>/<node>/names.json: identities with SPIFFE ids,
// AuthorizationPolicy names, local endpoints with their host veths), and the
// lab's pods and services when a lab is named or running.
//
// Sources, in order: explicit flags (--pin-root, --state-dir, --netns), the
// lab's state (/run/weft/lab/<lab>/state.json), defaults (/sys/fs/bpf/weft,
// /run/weft/agent). Missing names are warnings, never failures: a flow is still
// shown with numeric identities.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cli/lab/state.hpp"
#include "weft/ip.hpp"
#include "weft/status.hpp"

namespace weft::cli::bpf {

// names.json, as the agent writes it.
struct IdentityName {
  uint32_t id = 0;
  std::string spiffe_id, ns, service_account;
  std::vector<std::string> cidrs;
};
struct PolicyName {
  uint32_t id = 0;
  std::string name, action;
};
struct EndpointName {
  std::string node;
  std::string workload;  // "ns/name"
  uint32_t ifindex = 0;
  std::string ifname;
  uint32_t ep_id = 0, identity = 0;
  std::vector<std::string> addresses;
  bool enforce_ingress = false;
  std::vector<uint32_t> policies;
};
struct AgentNames {
  std::string path;
  uint64_t version = 0;
  std::map<uint32_t, IdentityName> identities;
  std::map<uint32_t, PolicyName> policies;
  std::vector<EndpointName> endpoints;
};
// Parses one names.json. `node` is recorded on every endpoint.
Result<AgentNames> LoadAgentNames(const std::string& path, const std::string& node);

// A pod: from the lab's state, from names.json endpoints, or both (merged by
// namespace/name).
struct Pod {
  std::string name, ns;  // name without namespace
  std::string node;
  std::vector<IpAddr> ips;  // v4 first
  std::string netns;        // the pod's own netns (lab only), path under /run/netns
  std::string host_veth;    // node-side veth name
  uint32_t host_ifindex = 0;  // from names.json (0: unknown)
  uint32_t identity = 0;      // from names.json (0: unknown)
  std::string service_account;
  std::vector<int> ports;
  std::string Qualified() const { return ns.empty() ? name : ns + "/" + name; }
};

struct Service {
  std::string name, ns;
  std::vector<IpAddr> vips;
  std::string Qualified() const { return ns + "/" + name; }
};

struct ClusterOptions {
  std::string pin_root, lab, node, state_dir;
  std::vector<std::string> netns;  // "NODE=NS" or "NS" (every node); NS a name under /run/netns or a path
};

struct Failure {
  int code;  // cli::ExitCode
  std::string message;
};

struct Cluster {
  std::string pin_root;
  std::string source;  // "--pin-root", "lab LAB", "default"
  std::vector<std::string> nodes;
  std::optional<lab::LabState> lab;
  std::map<std::string, std::string> netns;  // node -> /run/netns/... (may be missing)
  std::map<std::string, AgentNames> names;   // node -> names.json (nodes without one are absent)
  std::vector<Pod> pods;
  std::vector<Service> services;
  std::vector<std::string> warnings;

  std::string MapsDir(const std::string& node) const { return pin_root + "/" + node + "/maps"; }
  std::string ProgsDir(const std::string& node) const { return pin_root + "/" + node + "/progs"; }

  const IdentityName* Identity(uint32_t id) const;  // any node's names.json
  const PolicyName* Policy(uint32_t id) const;
  const Pod* PodByIp(const IpAddr& ip) const;
  // By "name" or "ns/name"; nullptr if none (or several with that bare name: *ambiguous set).
  const Pod* FindPod(const std::string& text, bool* ambiguous = nullptr) const;
  const Service* FindService(const std::string& text) const;
  const Service* ServiceByVip(const IpAddr& vip) const;
  // Pods that carry `identity` (names.json endpoints; lab pods whose ns/sa is
  // the identity's).
  std::vector<const Pod*> PodsOfIdentity(uint32_t identity) const;
  // Identities whose namespace/service account or SPIFFE id is `text`
  // ("ns/sa" or "spiffe://.../ns/NS/sa/SA").
  std::vector<uint32_t> IdentitiesOfSa(const std::string& text) const;
  // Close names for an error message: pods, services and service accounts.
  std::vector<std::string> Suggest(const std::string& text, bool pods, bool services, bool sas) const;
};

// Resolves everything; a Failure carries the exit code (1: bad --lab/--node,
// 2: pin root or nodes missing).
std::optional<Failure> LoadCluster(const ClusterOptions& o, Cluster* c);

// "0 (any)", "1 (unknown)", "256 spiffe://..." for display.
std::string IdentityLabel(const Cluster& c, uint32_t id);
std::string ReservedIdentityName(uint32_t id);  // "any", "unknown", "world", "host", or ""

// Runs fn in a thread that has joined the network namespace at `netns_path`
// (setns is per thread; the caller's thread never moves).
Status InNetns(const std::string& netns_path, const std::function<Status()>& fn);

}  // namespace weft::cli::bpf
