// The seam "where the desired state comes from". The agent's run loop
// (agent.cc) owns the maps: it polls a ConfigSource's fd, takes the states it
// hands out (Next), applies each with the Reconciler and reports the outcome
// back (Applied). It does not know whether the state came from a YAML file or
// from weft-controller.
//
//   FileSource        --config FILE: compiled by the controller's compiler in
//                     process (file_config.hpp); inotify on the file's directory, ~50 ms
//                     coalescing, SIGHUP reloads; an invalid file is logged
//                     with file:line:col, counted (weft_config_errors_total)
//                     and handed out as nothing (the last good state stays).
//   ControllerSource  --controller ADDR: the weft.v1.ConfigDiscovery stream
//                     (controller_client.hpp): hello, snapshot, deltas,
//                     ACK/NACK, reconnect with backoff.
//
// Retry policy: a state whose Apply failed is retried by the run loop with
// backoff only if the source says so (retry_on_failure). The file source
// does (the file is the truth); the controller source does not retry a
// NACKed push (the controller decides what comes next): the run loop reverts
// the node state and applies the last good one again (a rollback, retried
// until it sticks).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/lb/desired_state.hpp"
#include "weft/status.hpp"

namespace weft::v1 {
class NodeConfig;
class NodeConfigDelta;
}  // namespace weft::v1

namespace weft::agent {

class AgentMetrics;

struct ConfigUpdate {
  // File mode: the services compiled from the file (the node state's LB part).
  lb::DesiredState desired;
  std::string why;  // for logs: "start", "config change", "controller snapshot v7", ...
  bool retry_on_failure = true;
  // Controller mode: the push itself, converted once into the node state by
  // the agent (agent/node_state.hpp). At most one is set; neither for a file.
  std::shared_ptr<const v1::NodeConfig> snapshot;
  std::shared_ptr<const v1::NodeConfigDelta> delta;
  uint64_t version = 0;
};

class ConfigSource {
 public:
  using Clock = std::chrono::steady_clock;
  virtual ~ConfigSource() = default;

  // For logs: "config /etc/weft/node.yaml", "controller 10.0.0.1:15010".
  virtual std::string Describe() const = 0;
  // Before the programs are attached. A file source loads the file here (its
  // state is then the first Next()); an error is fatal (start fails).
  virtual Status Open() = 0;
  // After the programs are attached: begin producing states.
  virtual Status Start() { return Status::Ok(); }
  // Poll for POLLIN; then call Next until it returns nullopt.
  virtual int fd() const = 0;
  // Milliseconds until Next should be called even without an event; -1: none.
  virtual int TimeoutMs(Clock::time_point now) const = 0;
  // The next state to apply, if any. An error is fatal (the agent exits 1).
  virtual Result<std::optional<ConfigUpdate>> Next(Clock::time_point now) = 0;
  // Outcome of applying the update Next returned last (called before the next Next).
  virtual void Applied(const ConfigUpdate& update, const Status& result) = 0;
  // SIGHUP.
  virtual void Reload() {}
  // Before exit: stop threads, close streams. Idempotent.
  virtual void Stop() {}
};

// What the node's kernel offers, reported to the controller in NodeHello.
struct NodeCapabilities {
  std::string kernel_release;  // uname -r
  bool bpf_link = false;       // the programs are attached through cgroup bpf_links
  bool sk_storage = false;
  bool map_batch_ops = false;
  bool ktls = false;
};

// Probes the running kernel. bpf_link is true: the agent attaches only
// through bpf_links, and the stream starts only after that attach succeeded.
// map_batch_ops is false when the agent was told not to use them (--no-batch).
NodeCapabilities ProbeCapabilities(bool batch_enabled);

std::unique_ptr<ConfigSource> MakeFileSource(std::string path, AgentMetrics& metrics);

struct ControllerSourceOptions {
  std::string address;  // as accepted by transport::GrpcTarget
  std::string node;
  // TCP only (agent/node_credentials.hpp): the node's credentials dir, the
  // one-time join token for a node without an identity, the trust domain.
  std::string credentials_dir;
  std::string join_token_file;
  std::string trust_domain = "cluster.local";
  std::string agent_version;
  NodeCapabilities capabilities;
  // <state-dir>/<node>/applied.json: the version applied, kept across
  // restarts (applied_state.hpp). "" keeps it in memory only.
  std::string state_dir;
  // Reconnect backoff (exponential, +-20 % jitter).
  std::chrono::milliseconds backoff_min{100};
  std::chrono::milliseconds backoff_max{5000};
};
// Implemented in controller_client.cc. The hello carries the version (and
// store) last applied, read from the state dir after a restart; the
// controller's snapshot is applied as a difference anyway.
std::unique_ptr<ConfigSource> MakeControllerSource(ControllerSourceOptions opts, AgentMetrics& metrics);

}  // namespace weft::agent
