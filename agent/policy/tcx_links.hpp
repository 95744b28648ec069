// The tc programs on the pods' host-side interfaces, as pinned tcx links
// (BPF_LINK_CREATE, kernel >= 6.6; no clsact qdisc and no cls_bpf classifier
// in the packet path): policy::PolicyLinks for the kernel, plus the program
// pins weftctl trace runs and the cleanup of all of it.
//
// Pinned paths, for pin root R and node N:
//   R/N/tc_links/tcx_<ifindex>_{ingress,egress}  one link per hook
//   R/N/progs/weft_tc_from_pod, weft_tc_to_pod   the programs that are attached
//
// A link already pinned for an interface gets its program swapped in place
// (BPF_LINK_UPDATE: atomic, no moment without a program); one whose interface
// went away is defunct (ENOLINK) and is replaced. An older agent's cls_bpf
// filter (clsact, handle kTcHandle, priority kTcPriority, a weft_tc_*
// program) is removed once the tcx link is in (tcx runs first and its verdict
// ends the hook: the old filter already no longer ran), with the clsact qdisc
// once no filter is left on it; a filter at that handle running another
// program is left in place (warned). Run in the pods' network namespace.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "agent/policy/map_writer.hpp"
#include "weft/status.hpp"

struct tc_policy;  // generated skeleton (weft/tc_policy.skel.h)

namespace weft::policy {

// The cls_bpf filter identity older agents used (both directions).
inline constexpr uint32_t kTcHandle = 0x77656674;  // "weft"
inline constexpr uint32_t kTcPriority = 0x7766;

class TcxLinks : public PolicyLinks {
 public:
  // `node_dir`: R/N.
  TcxLinks(tc_policy& skel, const std::string& node_dir);

  Status Attach(uint32_t ifindex, bool to_pod) override;
  Status Detach(uint32_t ifindex) override;

  // Pins the programs under R/N/progs by pin-to-<name>_new + rename (the
  // pins always name attached programs): after every attach of new programs.
  Status PinPrograms();
  std::string prog_pin(bool from_pod) const;
  const std::string& progs_dir() const { return progs_dir_; }

 private:
  tc_policy& skel_;
  std::string links_dir_, progs_dir_;
};

struct PolicyCleanupReport {
  std::vector<std::string> removed;  // filters ("tc filter on ingress of ifindex N") and pins
};
// Detaches our tcx links (and any older agent's cls_bpf filters at our
// handle/priority whose program is a weft_tc_* one, with the clsact qdisc once
// no filter is left on it) from every interface in the pinned weft_endpoints
// map, unpins every link in R/N/tc_links and the programs, and removes both
// directories. Maps are left to datapath::Cleanup. Run it in the agent's
// network namespace. Idempotent.
Result<PolicyCleanupReport> CleanupPolicy(const std::string& pin_root, const std::string& node);

}  // namespace weft::policy
