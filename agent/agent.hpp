// weft-agent's two commands.
//
// run: load/adopt the node's pinned maps -> Reconciler::Adopt from them ->
// open the config source (config_source.hpp) and apply its first state (file
// mode) -> attach (or atomically update) the pinned cgroup links -> start the
// source (controller mode: the ConfigDiscovery stream) -> convert every
// update the source hands out into the one node state (node_state.hpp), apply
// it to the consumers in order (identity policy, then socket LB), and report
// the outcome back (ACK/NACK in controller mode); a NACKed push is reverted and
// the last good state applied to every consumer again. Threads: the main thread does all of that (reconcile
// loop, signals via signalfd); the metrics thread serves HTTP (metrics.hpp);
// in controller mode the controller thread reads the stream
// (controller_client.hpp). SIGTERM/SIGINT end the loop with exit 0 and leave
// pins and links in place: the data plane keeps working without the agent
// and the next agent adopts it.
//
// cleanup: detach and unpin the node's links, unpin its maps, remove its pin
// directory. Idempotent.
#pragma once

#include <string>

#include "agent/datapath/loader.hpp"

namespace weft::agent {

struct RunOptions {
  std::string node;
  std::string cgroup;
  std::string config;      // --config FILE, or
  std::string controller;  // --controller ADDR (exactly one of the two)
  // TCP controller: mutual TLS with the node's identity (agent/node_credentials.hpp).
  std::string credentials_dir;   // "" = <state-dir>/<node>/credentials
  std::string join_token_file;   // a one-time token, for a node without credentials
  std::string trust_domain = "cluster.local";
  std::string pin_root = "/sys/fs/bpf/weft";
  std::string metrics = "127.0.0.1:9464";  // "" disables the metrics server
  // <state-dir>/<node>/: names.json (policy names for weftctl), applied.json
  // (the controller version applied, kept across restarts). 0700, files 0600.
  std::string state_dir = "/run/weft/agent";
  // Network namespace of the pods' host-side interfaces (a netns file, e.g.
  // /run/netns/NAME); "" = the agent's own (a DaemonSet with hostNetwork).
  // The lab runs agents in the host netns and its pods' veths in node netns.
  std::string netns;
  // VIPs the controller may program (the controller's --service-cidr/-v6 and
  // --service-entry-cidr/-v6): a push with a VIP outside them is NACKed.
  std::string service_cidr = "10.96.0.0/16";
  std::string service_cidr_v6 = "fd00:96::/112";
  std::string service_entry_cidr = "240.240.0.0/16";
  std::string service_entry_cidr_v6 = "2001:2::/48";
  datapath::Capacities capacities;
  bool no_batch = false;
  bool verbose = false;
};

// Both return the process exit code.
int Run(const RunOptions& opts);
// Also removes the policy datapath's tcx links (and older agents' tc filters), program pins,
// <state_dir>/<node>/names.json and applied.json.
int Cleanup(const std::string& pin_root, const std::string& node,
            const std::string& state_dir = "/run/weft/agent", const std::string& netns = "");

// stderr logging with timestamp and level (debug only if verbose).
void SetUpLogging(bool verbose);

}  // namespace weft::agent
