// The TC policy datapath of one node: bpf/tc_policy.bpf.c loaded over the
// node's pinned maps, its two programs attached through tcx links (kernel >=
// 6.6; no clsact qdisc, no cls_bpf classifier in the path) on the host-side
// interface of every local workload that a policy applies to (one that
// enforces neither direction gets no programs: it pays nothing per packet),
// and the maps programmed from the controller's config by difference.
//
// Pinned paths, for pin root R and node N:
//   R/N/maps/weft_{identity,policy,ct,endpoints,drop_stats,flows,flow_ctr,flow_next,flow_ev,ev_stats,policy_rev}
//   R/N/progs/weft_tc_from_pod, R/N/progs/weft_tc_to_pod   the programs that are attached
//   R/N/tc_links/tcx_<ifindex>_{ingress,egress}           one tcx link per hook
// (weftctl trace BPF_PROG_TEST_RUNs the program pins: they are re-pinned,
// by rename, right after every attach of a new program).
//
// Restart without a window: Load() adopts the pinned maps (same type,
// key/value size, flags and capacity checks as the sock_lb loader), so
// conntrack, identities, policy and endpoint ids survive; Attach() swaps the
// program of every pinned tcx link of the adopted endpoints in place
// (BPF_LINK_UPDATE: atomic, there is no moment without a program), then
// re-pins the programs. A link whose interface went away is defunct
// (ENOLINK) and is replaced. An older agent's cls_bpf filter (clsact, handle
// kTcHandle, priority kTcPriority) is removed once the tcx link is in.
//
// Apply order (no intermediate state denies a flow that the old and the new
// config both allow, except across an address changing identity):
//   1 policy entries upserted   2 identity entries upserted
//   3 endpoints upserted (enforcement switches on only after its entries)
//   4 tcx links attached on interfaces whose endpoint now enforces a direction,
//     detached from those that enforce neither
//   5 tcx links detached from interfaces whose workload is gone, their endpoint
//     entries deleted   6 stale policy entries deleted
//   7 stale identity entries deleted   8 weft_policy_rev bumped (if anything
//     changed), so established flows are evaluated again (and cut if denied)
//   9 <state-dir>/<node>/names.json written (tmp + rename).
//
// Threads: everything runs on the agent's main thread except
// ReadPolicyCounters (metrics thread), which reads only map fds and a
// names snapshot swapped under a mutex.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/metrics.hpp"
#include "agent/policy/desired.hpp"
#include "weft/status.hpp"
#include "weft/unique_fd.hpp"

struct tc_policy;  // generated skeleton (weft/tc_policy.skel.h)

namespace weft::datapath {
class AbiMigration;
}

namespace weft::policy {

// The cls_bpf filter identity older agents used (both directions); removed
// wherever found once our tcx links are attached.
inline constexpr uint32_t kTcHandle = 0x77656674;  // "weft"
inline constexpr uint32_t kTcPriority = 0x7766;

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

struct EndpointStatus {
  std::string workload;
  uint32_t ifindex = 0;
  std::string ifname;
  uint32_t ep_id = 0;
};

class PolicyDatapath : public agent::PolicyCountersSource {
 public:
  static Result<std::unique_ptr<PolicyDatapath>> Load(const PolicyOptions& opts);
  ~PolicyDatapath() override;
  PolicyDatapath(const PolicyDatapath&) = delete;
  PolicyDatapath& operator=(const PolicyDatapath&) = delete;

  // Attaches (or atomically replaces) the programs on every interface the
  // adopted weft_endpoints map names whose endpoint enforces a direction
  // (and removes any from those that enforce neither), then pins the
  // programs. Call once after Load, before the first Apply (which attaches
  // new interfaces itself).
  Status Attach();

  // Entry points for the config stream. version: the controller's config
  // version, recorded in names.json. Apply takes a full snapshot; ApplyDelta
  // applies a delta onto the last config given to Apply/ApplyDelta (on
  // failure that config is kept: call it again or send a snapshot).
  Status Apply(const v1::NodeConfig& config, uint64_t version);
  Status ApplyDelta(const v1::NodeConfigDelta& delta, uint64_t version);
  // Re-applies the last successfully applied state: re-resolves the
  // interfaces of workloads that had none (their veth did not exist yet) or
  // moved (no-op when nothing changed), and rolls the maps back to that state
  // after a failed Apply/ApplyDelta (NACK).
  Status Refresh();
  bool has_unplaced() const { return !unplaced_.empty(); }
  // Local workloads with no interface on this node (no route to their first
  // address, or not through a veth): not enforced; Refresh() retries them.
  size_t unplaced_count() const;
  // Their addresses, less those a placed endpoint holds: a backend at one of
  // them is not served by this node (the agent withholds it from its load
  // balancing until the workload is placed).
  std::set<IpAddr> unplaced_addresses() const;

  // The lower level: program a desired state.
  Status ApplyDesired(const PolicyDesired& desired, uint64_t version);

  // For the metrics thread.
  Result<agent::PolicyCounters> ReadPolicyCounters() const override;

  tc_policy& skel() { return *skel_; }
  const std::vector<EndpointStatus>& endpoints() const { return endpoints_; }
  uint32_t policy_revision() const;
  std::string prog_pin(bool from_pod) const;
  const std::string& maps_dir() const { return maps_dir_; }

 private:
  explicit PolicyDatapath(PolicyOptions opts);
  Status ReadLive();
  // ApplyDelta's fast path for a delta that changes only identity-cache
  // entries (a pod came or went elsewhere in the mesh: the common case): the
  // same writes, order and revision bump as the full path, without rebuilding
  // the whole desired state (100,000 entries at scale).
  Status ApplyIdentityCacheDelta(const v1::NodeConfigDelta& delta, uint64_t version);
  // weft_tc_from_pod on tcx ingress (updated in place or attached), and
  // weft_tc_to_pod on tcx egress when `to_pod` (else its link removed).
  Status AttachInterface(uint32_t ifindex, bool to_pod);
  Status DetachInterface(uint32_t ifindex);
  Status PinPrograms();
  Status WriteNames(const PolicyDesired& desired, uint64_t version);

  PolicyOptions opts_;
  std::string node_dir_, maps_dir_, progs_dir_, links_dir_;
  UniqueFd lock_;
  tc_policy* skel_ = nullptr;
  KernelPolicy live_;                  // mirror of the maps
  std::map<uint32_t, bool> attached_;  // interfaces we attached (or replaced) in this run -> to_pod too
  std::unique_ptr<datapath::AbiMigration> abi_;
  std::optional<PolicyConfig> config_;  // last config given (for deltas)
  std::optional<PolicyDesired> desired_;
  uint64_t version_ = 0;
  std::map<std::string, Placement> placement_;
  struct Unplaced {
    bool no_interface = false;  // false: its interface serves another workload
    std::string why;            // as logged (once while it lasts)
  };
  std::map<std::string, Unplaced> unplaced_;  // by workload
  std::map<std::string, std::string> notes_;  // other conditions reported once while they last
  std::atomic<uint64_t> unplaced_gauge_{0};   // unplaced_count(), for the metrics thread
  std::vector<EndpointStatus> endpoints_;
  std::string last_names_;  // names.json as last written

  mutable std::mutex names_mu_;
  std::shared_ptr<const PolicyDesired> names_;  // for metrics labels
};

struct PolicyCleanupReport {
  std::vector<std::string> removed;  // filters ("ifindex N ingress") and pins
};
// Detaches our tcx links (and any older agent's cls_bpf filters at our
// handle/priority whose program is a weft_tc_* one, with the clsact qdisc once
// no filter is left on it) from every interface in the pinned weft_endpoints
// map, unpins every link in R/N/tc_links and the programs, and removes both
// directories. Maps are left to datapath::Cleanup. Run it in the agent's
// network namespace. Idempotent.
Result<PolicyCleanupReport> CleanupPolicy(const std::string& pin_root, const std::string& node);

}  // namespace weft::policy
