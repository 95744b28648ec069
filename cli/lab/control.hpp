// The lab's control plane: one weft-controller per lab (host netns, store and
// admin socket in the lab's state dir, TCP on a free 127.0.0.1 port for the
// agents) and the Admin calls the lab makes through it: apply the user's
// file plus the pods' WorkloadEntries, read back the VIPs the controller
// allocated, drop the entries of pods that left the service table.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "cli/lab/spec.hpp"
#include "cli/lab/state.hpp"
#include "weft/status.hpp"
#include "weft/v1/admin.pb.h"

namespace weft::cli::lab::control {

// The lab's service CIDRs, given to its controller and to every agent (which
// refuse VIPs outside them).
inline constexpr const char* kServiceCidr = "10.96.0.0/16";
inline constexpr const char* kServiceCidrV6 = "fd00:96::/112";

// weftctl's address for the lab's controller: unix://<admin socket>.
std::string AdminAddress(const LabState& st);

// Fills st.controller (paths, a free port) for a first start.
Status PlanController(LabState& st);
// init: the lab's first start (a new store: --init); a restart opens the existing one.
std::vector<std::string> ControllerArgv(const LabState& st, bool init);
// Starts the controller with the recorded arguments; records the pid (caller saves).
Status StartController(LabState& st, bool init);
// Until the Admin API answers (or the process exits: the log's tail is in the error).
Status WaitControllerReady(const LabState& st, std::chrono::steady_clock::time_point deadline);

// The outcome of an Admin call, with weftctl's exit code (0, 1 rejected, 2 unreachable).
struct CallResult {
  int exit_code = 0;
  std::string error;  // rejected input verbatim, or the unreachable controller named
  std::vector<std::string> changes;   // "kind/name action"
  std::vector<std::string> warnings;  // "file:line:col: ..."
};

struct NamedText {
  std::string name;  // shown in "file:line:col" messages
  std::string content;
};
CallResult Apply(const LabState& st, const std::vector<NamedText>& files);
// Deletes WorkloadEntries ns/name; already-absent ones are fine.
CallResult DeleteWorkloads(const LabState& st, const std::vector<std::pair<std::string, std::string>>& ns_names);
// Every Service's VIPs, as the controller stored them.
Result<std::vector<ServiceVips>> ReadVips(const LabState& st);
// Per-node sync state (SYNCED/STALE/NACKED/BEHIND/DISCONNECTED).
Result<weft::v1::StatusResponse> SyncStatus(const LabState& st);

}  // namespace weft::cli::lab::control
