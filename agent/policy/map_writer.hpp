// The seam between the policy reconciler (policy/reconcile.hpp) and the
// kernel, as datapath/map_state.hpp is for the LB maps: the TC policy maps'
// contents as plain values (KernelPolicy, desired.hpp), the PolicyMapWriter
// that reads and writes them, and PolicyLinks, which puts the programs on an
// interface. KernelPolicyWriter (kernel_policy_writer.hpp) and TcxLinks
// (tcx_links.hpp) talk to the kernel; tests use FakePolicyWriter
// (tests/unit/fake_policy_writer.hpp) and run without one.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "agent/policy/desired.hpp"
#include "weft/bpf_abi.h"
#include "weft/status.hpp"

namespace weft::policy {

// Every write call writes its elements one at a time, in the order given (the
// reconciler's order is what keeps each intermediate state safe), and stops at
// the first failure with an error naming the map and the key: the elements
// before it stay written.
class PolicyMapWriter {
 public:
  virtual ~PolicyMapWriter() = default;
  virtual Result<KernelPolicy> ReadAll() = 0;

  virtual Status UpsertPolicy(const std::vector<std::pair<weft_policy_key, weft_policy_val>>& kv) = 0;
  virtual Status DeletePolicy(const std::vector<weft_policy_key>& keys) = 0;
  virtual Status UpsertIdentity(const std::vector<std::pair<weft_ipcache_key, weft_ipcache_val>>& kv) = 0;
  virtual Status DeleteIdentity(const std::vector<weft_ipcache_key>& keys) = 0;
  virtual Status UpsertEndpoints(const std::vector<std::pair<uint32_t, weft_endpoint>>& kv) = 0;
  virtual Status DeleteEndpoints(const std::vector<uint32_t>& ifindexes) = 0;
  // weft_policy_rev + 1 (established flows are evaluated again); the new revision.
  virtual Result<uint32_t> BumpRevision() = 0;
};

// The programs on a pod's host-side interface: weft_tc_from_pod on its way
// out of the pod (tcx ingress) always, weft_tc_to_pod on its way in (tcx
// egress) only where `to_pod`. A link already there gets the program swapped
// in place (no moment without one).
class PolicyLinks {
 public:
  virtual ~PolicyLinks() = default;
  virtual Status Attach(uint32_t ifindex, bool to_pod) = 0;
  virtual Status Detach(uint32_t ifindex) = 0;
};

}  // namespace weft::policy
