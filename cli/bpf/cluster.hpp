// What `weftctl bpf`, `weftctl flows` and `weftctl trace` need to know about a
// cluster besides the maps: the pin root and its nodes, each node's running
// agent (its admin endpoint, weft/node/admin.hpp: pin root, state dir, the
// pods' network namespace, versions), the agents' names (names.json,
// weft/node/names_file.hpp: identities with SPIFFE ids, AuthorizationPolicy
// names, local endpoints with their host veths), and the pods and services
// of the environment that built the cluster when there is one (the lab).
//
// Sources, in order: explicit flags (--pin-root, --state-dir, --netns); the
// agents (asked on <state-dir>/<node>/agent.sock); the environment's hints
// (--lab, or the one running lab); defaults (weft/node/paths.hpp). Missing
// names are warnings, never failures: a flow is still shown with numeric
// identities.
//
// These commands do not depend on the lab: an environment registers its
// hints here (SetHintSource; cli/lab does for labs).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "weft/ip.hpp"
#include "weft/node/admin.hpp"
#include "weft/node/names_file.hpp"
#include "weft/node/paths.hpp"
#include "weft/status.hpp"

namespace weft::cli::bpf {

using IdentityName = node::IdentityName;
using PolicyName = node::PolicyName;

// A pod: from the environment's hints, from names.json endpoints, or both
// (merged by namespace/name).
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

// What the environment that built a cluster knows about it.
struct ClusterHints {
  std::string source;  // "lab demo"
  std::string pin_root;
  std::vector<std::string> nodes;            // in the environment's order
  std::map<std::string, std::string> netns;  // node -> network namespace path
  std::string agents_state_dir;              // the agents' --state-dir ("" unknown)
  std::vector<Pod> pods;
  std::vector<Service> services;
};
struct HintSource {
  // --lab NAME: that environment (an error names what is wrong with NAME).
  std::function<Result<ClusterHints>(const std::string& name)> named;
  // The environments running now.
  std::function<std::vector<ClusterHints>()> running;
};
// Registered once, before the commands run (weftctl's main: cli/lab).
void SetHintSource(HintSource source);

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
  std::string source;  // "--pin-root", "lab LAB", "agent of node N", "default"
  std::string state_dir;  // where the agents' state dirs are looked for
  std::vector<std::string> nodes;
  std::optional<ClusterHints> hints;
  std::map<std::string, node::AgentInfo> agents;  // node -> its running agent's answer
  std::map<std::string, std::string> netns;       // node -> netns path (may be missing)
  std::map<std::string, node::NodeNames> names;   // node -> names.json (nodes without one are absent)
  std::vector<Pod> pods;
  std::vector<Service> services;
  std::vector<std::string> warnings;

  std::string MapsDir(const std::string& node) const { return node::PinPaths(pin_root, node).maps_dir; }
  std::string ProgsDir(const std::string& node) const { return node::PinPaths(pin_root, node).progs_dir; }

  const IdentityName* Identity(uint32_t id) const;  // any node's names.json
  const PolicyName* Policy(uint32_t id) const;
  const Pod* PodByIp(const IpAddr& ip) const;
  // By "name" or "ns/name"; nullptr if none (or several with that bare name: *ambiguous set).
  const Pod* FindPod(const std::string& text, bool* ambiguous = nullptr) const;
  const Service* FindService(const std::string& text) const;
  const Service* ServiceByVip(const IpAddr& vip) const;
  // Pods that carry `identity` (names.json endpoints; hinted pods whose ns/sa
  // is the identity's).
  std::vector<const Pod*> PodsOfIdentity(uint32_t identity) const;
  // Identities whose namespace/service account or SPIFFE id is `text`
  // ("ns/sa" or "spiffe://.../ns/NS/sa/SA").
  std::vector<uint32_t> IdentitiesOfSa(const std::string& text) const;
  // Close names for an error message: pods, services and service accounts.
  std::vector<std::string> Suggest(const std::string& text, bool pods, bool services, bool sas) const;
};

// The pin root, its nodes, the hints and the nodes' agents (what `weftctl
// bpf` needs). A Failure carries the exit code (1: bad --lab/--node, 2: pin
// root or nodes missing).
std::optional<Failure> ResolveNodes(const ClusterOptions& o, Cluster* c);
// ResolveNodes, then the nodes' network namespaces, names, pods and services.
std::optional<Failure> LoadCluster(const ClusterOptions& o, Cluster* c);

// "0 (any)", "1 (unknown)", "256 spiffe://..." for display.
std::string IdentityLabel(const Cluster& c, uint32_t id);

// Runs fn in a thread that has joined the network namespace at `netns_path`
// (setns is per thread; the caller's thread never moves).
Status InNetns(const std::string& netns_path, const std::function<Status()>& fn);

}  // namespace weft::cli::bpf
