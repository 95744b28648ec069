// The lab's persistent state: /run/weft/lab/<lab>/state.json, rewritten
// (atomically) after every step of `up`, so `down` can undo a half-built lab.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "cli/lab/spec.hpp"
#include "weft/status.hpp"

namespace weft::cli::lab {

struct AgentState {
  pid_t pid = 0;
  std::string metrics;  // 127.0.0.1:PORT
  std::string log;
};

// The lab's weft-controller: host netns, store and admin socket in the state dir.
struct ControllerState {
  pid_t pid = 0;
  std::string listen;        // 127.0.0.1:PORT: ConfigDiscovery for the agents, Admin too
  std::string admin_socket;  // <state_dir>/controller/admin.sock (weftctl's default for this lab)
  std::string data_dir;      // <state_dir>/controller/data
  std::string log;
};

struct NodeState {
  std::string name;  // node1..nodeN (the agent's --node)
  int index = 0;
  std::string netns;
  std::string cgroup;
  std::string pod_cidr;   // 10.244.<i>.0/24
  std::string pod_cidr6;  // fd00:244:<i>::/64
  std::string fabric_ip;  // 10.243.0.<i> on fabric_if
  std::string fabric_ip6;
  std::string fabric_if;    // in the node netns
  std::string fabric_peer;  // in the fabric netns, enslaved to the bridge
  AgentState agent;
};

struct PodState {
  std::string name;
  std::string deployment;
  int replica = 0;
  std::string ns;
  std::string node;
  std::string netns;
  std::string cgroup;
  std::string ip;
  std::string ip6;
  std::string node_veth;  // in the node netns
  std::string pod_veth;   // in the pod netns
  std::string hosts;      // /etc/netns/<netns>/hosts
  pid_t pid = 0;
  std::string log;
  std::vector<int> ports;
  std::vector<std::string> port_names;  // parallel to ports ("" if unnamed)
  std::map<std::string, std::string> labels;
  std::string service_account;
  bool serving = true;  // false: dropped from the service table by `lab apply`
};

struct LabState {
  int version = 1;
  std::string lab;
  std::string phase;  // creating, ready, down
  std::string state_dir;
  std::string spec_file;
  std::string cgroup_root;
  std::string pin_root;
  std::string agent_bin;
  std::string echo_bin;
  std::string controller_bin;
  std::vector<std::string> agent_args;  // extra weft-agent arguments (lab up --agent-arg)
  ControllerState controller;
  bool dual_stack = false;
  std::string fabric_netns;
  std::string bridge;
  std::vector<NodeState> nodes;
  std::vector<PodState> pods;
  std::vector<ServiceVips> services;

  std::string path() const { return state_dir + "/state.json"; }
  const PodState* FindPod(const std::string& name) const;
  NodeState* FindNode(const std::string& name);
};

std::string StateDir(const std::string& lab);        // /run/weft/lab/<lab>
// The lab's agents' --state-dir: <state dir>/agents, unless --agent-arg gave one.
std::string AgentsStateDir(const LabState& st);
std::string ControllerDir(const std::string& lab);   // <state dir>/controller
Result<LabState> LoadState(const std::string& lab);  // error if absent or corrupt
Status SaveState(const LabState& st);                // write tmp + rename
std::string StateToJson(const LabState& st, int indent = 2);

// Writes `content` to `path` atomically (tmp file in the same dir + rename).
Status WriteFileAtomic(const std::string& path, const std::string& content);

}  // namespace weft::cli::lab
