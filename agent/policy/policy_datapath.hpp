// The TC policy datapath of one node: bpf/tc_policy.bpf.c loaded over the
// node's pinned maps, and the pieces that program it:
//
//   placement.hpp            which interface serves each workload, endpoint ids
//   reconcile.hpp            plan, then write the difference in the documented order
//   kernel_policy_writer.hpp the maps (PolicyMapWriter for the kernel)
//   tcx_links.hpp            the tcx links and program pins (PolicyLinks for the kernel), cleanup
//   names.hpp                names.json
//   apply.hpp                one apply: placement -> ToKernel -> reconcile -> names
//
// This class loads (adopting the pinned maps: same type, key/value size,
// flags and capacity checks as the sock_lb loader, and the ABI version of the
// pins, migrating an older one), attaches at start-up, and applies the policy
// part of the node state (agent/node_state.hpp) it is given: it keeps no
// config of its own.
//
// Restart without a window: Load() adopts the pinned maps, so conntrack,
// identities, policy and endpoint ids survive; Attach() swaps the program of
// every pinned tcx link of the adopted endpoints in place, then re-pins the
// programs.
//
// Threads: everything runs on the agent's main thread except
// ReadPolicyCounters (metrics thread), which reads only map fds, a gauge and a
// names snapshot swapped under a mutex.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/metrics.hpp"
#include "agent/policy/apply.hpp"
#include "agent/policy/desired.hpp"
#include "agent/policy/kernel_policy_writer.hpp"
#include "agent/policy/tcx_links.hpp"
#include "weft/status.hpp"
#include "weft/unique_fd.hpp"

struct tc_policy;  // generated skeleton (weft/tc_policy.skel.h)

namespace weft::datapath {
class AbiMigration;
}

namespace weft::policy {

struct PolicyCapacities {
  // Unset: the pinned capacity when adopting, else the default.
  std::optional<uint32_t> identity, policy, ct, flows;
};

struct PolicyOptions {
  std::string pin_root = "/sys/fs/bpf/weft";
  std::string node;
  std::string state_dir;  // names.json goes to <state_dir>/<node>/; "" = not written
  PolicyCapacities capacities;
  // Take the node lock (R/N) for the object's lifetime. The agent already
  // holds it through the sock_lb loader; standalone users (tests) may ask.
  bool lock_node = false;
};

class PolicyDatapath : public agent::PolicyCountersSource {
 public:
  static Result<std::unique_ptr<PolicyDatapath>> Load(const PolicyOptions& opts);
  ~PolicyDatapath() override;
  PolicyDatapath(const PolicyDatapath&) = delete;
  PolicyDatapath& operator=(const PolicyDatapath&) = delete;

  // Attaches (or atomically replaces) the programs on every interface the
  // adopted weft_endpoints map names (weft_tc_to_pod only where its endpoint
  // enforces a direction), pins the programs, finishes an ABI migration and
  // stamps the ABI. Call once after Load, before the first Apply (which
  // attaches new interfaces itself).
  Status Attach();

  // Makes the maps and links hold `desired`, the policy part of the node
  // state; `change` says what the push changed (an identity-cache-only change
  // takes the fast path). version: the controller's, recorded in names.json.
  // On failure the maps may be part-written: apply the last good state again.
  Status Apply(const PolicyDesired& desired, const PolicyChange& change, uint64_t version);
  // A whole config, converted as the node state converts a snapshot (tools
  // and tests; the agent applies its node state).
  Status Apply(const v1::NodeConfig& config, uint64_t version);
  // Places again the workloads of `desired` (the state last applied) whose
  // interface did not exist yet or moved; no-op when nothing changed.
  Status Refresh(const PolicyDesired& desired);
  bool has_unplaced() const { return applier_->has_unplaced(); }
  // Local workloads with no interface on this node (no route to their first
  // address, or not through a veth): not enforced; Refresh() retries them.
  size_t unplaced_count() const { return applier_->unplaced_count(); }
  // Their addresses, less those a placed endpoint holds: a backend at one of
  // them is not served by this node (the agent withholds it from its load
  // balancing until the workload is placed).
  const std::set<IpAddr>& unplaced_addresses() const { return applier_->unplaced_addresses(); }

  // For the metrics thread.
  Result<agent::PolicyCounters> ReadPolicyCounters() const override;

  tc_policy& skel() { return *skel_; }
  const std::vector<EndpointStatus>& endpoints() const { return applier_->endpoints(); }
  uint32_t policy_revision() const;
  std::string prog_pin(bool from_pod) const { return links_->prog_pin(from_pod); }
  const std::string& maps_dir() const { return maps_dir_; }

 private:
  explicit PolicyDatapath(PolicyOptions opts);

  PolicyOptions opts_;
  std::string node_dir_, maps_dir_;
  UniqueFd lock_;
  tc_policy* skel_ = nullptr;
  std::unique_ptr<datapath::AbiMigration> abi_;
  std::unique_ptr<KernelPolicyWriter> writer_;
  std::unique_ptr<TcxLinks> links_;
  std::unique_ptr<PolicyApplier> applier_;
};


}  // namespace weft::policy
