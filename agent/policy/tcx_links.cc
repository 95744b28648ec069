#include "agent/policy/tcx_links.hpp"

#include "weft/node/paths.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>

#include "agent/datapath/loader.hpp"
#include "agent/policy/kernel_policy_writer.hpp"
#include "agent/policy/netlink.hpp"
#include "weft/tc_policy.skel.h"
#include "weft/unique_fd.hpp"

namespace fs = std::filesystem;

namespace weft::policy {
namespace {

bool Exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

bool IsOurProgram(uint32_t prog_id) {
  UniqueFd fd(bpf_prog_get_fd_by_id(prog_id));
  if (!fd) return false;
  bpf_prog_info info{};
  __u32 len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) return false;
  return std::strncmp(info.name, "weft_tc_", 8) == 0;
}

// Removes our filter (handle/priority, weft_tc_* program) from one hook of
// an interface. True if one was removed. A missing interface or filter is
// not an error.
Result<bool> DetachHook(uint32_t ifindex, bpf_tc_attach_point point) {
  bpf_tc_hook hook{};
  hook.sz = sizeof(hook);
  hook.ifindex = static_cast<int>(ifindex);
  hook.attach_point = point;
  bpf_tc_opts q{};
  q.sz = sizeof(q);
  q.handle = kTcHandle;
  q.priority = kTcPriority;
  libbpf_print_fn_t prev = libbpf_set_print(nullptr);
  int err = bpf_tc_query(&hook, &q);
  libbpf_set_print(prev);
  const std::string where = std::string(point == BPF_TC_INGRESS ? "ingress" : "egress") + " of ifindex " +
                            std::to_string(ifindex);
  if (err == -ENOENT || err == -ENODEV || err == -EINVAL) return false;
  if (err != 0) return Status::Errno("query tc filter on " + where, -err);
  if (!IsOurProgram(q.prog_id)) {
    spdlog::warn("tc filter {:#x}/{:#x} on {} runs a program that is not ours (id {}): left in place", kTcHandle,
                 kTcPriority, where, q.prog_id);
    return false;
  }
  bpf_tc_opts d{};
  d.sz = sizeof(d);
  d.handle = kTcHandle;
  d.priority = kTcPriority;
  err = bpf_tc_detach(&hook, &d);
  if (err != 0 && err != -ENOENT && err != -ENODEV) return Status::Errno("detach tc filter from " + where, -err);
  return true;
}

// Removes the clsact qdisc of an interface once no filter is left on it.
void RemoveEmptyClsact(uint32_t ifindex) {
  auto in = CountTcFilters(ifindex, false), eg = CountTcFilters(ifindex, true);
  if (!in.ok() || !eg.ok() || *in != 0 || *eg != 0) return;
  bpf_tc_hook hook{};
  hook.sz = sizeof(hook);
  hook.ifindex = static_cast<int>(ifindex);
  hook.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
  libbpf_print_fn_t prev = libbpf_set_print(nullptr);
  bpf_tc_hook_destroy(&hook);
  libbpf_set_print(prev);
}

// tcx hooks (kernel >= 6.6). The attach types by number: the build host's
// uapi headers may predate them.
constexpr int kBpfTcxIngress = 46;  // BPF_TCX_INGRESS
constexpr int kBpfTcxEgress = 47;   // BPF_TCX_EGRESS

// A tcx link's pin: R/N/tc_links/tcx_<ifindex>_{ingress,egress} (weft/node/paths.hpp).
std::string LinkPin(const std::string& links_dir, uint32_t ifindex, bool ingress) {
  return links_dir + "/" + node::TcxLinkName(ifindex, ingress);
}

// Detaches the tcx link pinned at `path` and removes the pin. False if there
// was none. A link whose interface is gone (ENOLINK) is only unpinned.
Result<bool> RemoveLinkPin(const std::string& path) {
  UniqueFd fd(bpf_obj_get(path.c_str()));
  if (!fd) {
    if (errno == ENOENT) return false;
    return Status::Errno("open pinned link " + path, errno);
  }
  if (bpf_link_detach(fd.get()) != 0 && errno != ENOLINK) return Status::Errno("detach tcx link " + path, errno);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return Status::Errno("unpin " + path, errno);
  return true;
}

// Removes an older agent's cls_bpf filters (clsact, our handle and priority)
// from an interface, and the clsact qdisc once no filter is left on it.
Status RemoveLegacyFilters(uint32_t ifindex, std::vector<std::string>* removed) {
  bool any = false;
  for (auto point : {BPF_TC_INGRESS, BPF_TC_EGRESS}) {
    auto r = DetachHook(ifindex, point);
    if (!r.ok()) return r.status();
    if (*r && removed)
      removed->push_back("tc filter on " + std::string(point == BPF_TC_INGRESS ? "ingress" : "egress") +
                         " of ifindex " + std::to_string(ifindex));
    any |= *r;
  }
  if (any) RemoveEmptyClsact(ifindex);
  return Status::Ok();
}

// Pins `fd` at `pin` by pin-to-<pin>_new + rename (bpffs refuses names with a dot).
Status PinByRename(int fd, const std::string& pin, const char* what) {
  const std::string tmp = pin + "_new";
  ::unlink(tmp.c_str());
  if (bpf_obj_pin(fd, tmp.c_str()) != 0) return Status::Errno(std::string("pin ") + what + " at " + tmp, errno);
  if (::rename(tmp.c_str(), pin.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Status::Errno("rename " + tmp + " to " + pin, err);
  }
  return Status::Ok();
}

}  // namespace

TcxLinks::TcxLinks(tc_policy& skel, const std::string& node_dir)
    : skel_(skel), links_dir_(node_dir + "/tc_links"), progs_dir_(node_dir + "/progs") {}

std::string TcxLinks::prog_pin(bool from_pod) const {
  return progs_dir_ + "/" + (from_pod ? node::kProgFromPod : node::kProgToPod);
}

Status TcxLinks::Attach(uint32_t ifindex, bool to_pod) {
  for (bool ingress : {true, false}) {
    if (!ingress && !to_pod) {
      // Leaving the pod is always checked (source validation); entering it
      // only where a direction is enforced.
      auto r = RemoveLinkPin(LinkPin(links_dir_, ifindex, false));
      if (!r.ok()) return r.status();
      continue;
    }
    bpf_program* prog = ingress ? skel_.progs.weft_tc_from_pod : skel_.progs.weft_tc_to_pod;
    const std::string where =
        std::string(ingress ? "tcx ingress" : "tcx egress") + " of ifindex " + std::to_string(ifindex);
    const std::string pin = LinkPin(links_dir_, ifindex, ingress);
    UniqueFd link(bpf_obj_get(pin.c_str()));
    if (link) {
      // Our link is there (an earlier run): the kernel swaps its program
      // atomically; there is no moment without one.
      if (bpf_link_update(link.get(), bpf_program__fd(prog), nullptr) == 0) continue;
      const int err = errno;
      // ENOLINK: that interface went away and took the link with it; this
      // ifindex is a new interface. Anything else is an error.
      if (err != ENOLINK) return Status::Errno("update tcx link " + pin + " (" + where + ")", err);
      spdlog::info("policy: {}: pinned link {} is defunct (its interface went away): attaching anew", where, pin);
      link.reset();
      if (::unlink(pin.c_str()) != 0 && errno != ENOENT) return Status::Errno("unpin " + pin, errno);
    } else if (errno != ENOENT) {
      return Status::Errno("open pinned link " + pin, errno);
    }
    int fd = bpf_link_create(bpf_program__fd(prog), static_cast<int>(ifindex),
                             static_cast<bpf_attach_type>(ingress ? kBpfTcxIngress : kBpfTcxEgress), nullptr);
    if (fd < 0) return Status::Errno(std::string("attach ") + bpf_program__name(prog) + " to " + where, -fd);
    UniqueFd fresh(fd);
    WEFT_RETURN_IF_ERROR(PinByRename(fresh.get(), pin, "tcx link"));
  }
  // An older agent's cls_bpf filters go once the tcx links are in.
  return RemoveLegacyFilters(ifindex, nullptr);
}

Status TcxLinks::Detach(uint32_t ifindex) {
  for (bool ingress : {true, false}) {
    auto r = RemoveLinkPin(LinkPin(links_dir_, ifindex, ingress));
    if (!r.ok()) return r.status();
  }
  return RemoveLegacyFilters(ifindex, nullptr);
}

Status TcxLinks::PinPrograms() {
  for (bool from : {true, false}) {
    bpf_program* p = from ? skel_.progs.weft_tc_from_pod : skel_.progs.weft_tc_to_pod;
    WEFT_RETURN_IF_ERROR(PinByRename(bpf_program__fd(p), prog_pin(from), "program"));
  }
  return Status::Ok();
}

Result<PolicyCleanupReport> CleanupPolicy(const std::string& pin_root, const std::string& node) {
  if (node.empty() || node.find('/') != std::string::npos || node == "." || node == "..")
    return Status::Error("node name '" + node + "': must be non-empty and contain no '/'");
  PolicyCleanupReport report;
  datapath::NodePaths paths(pin_root, node);
  if (!Exists(pin_root)) return report;
  WEFT_RETURN_IF_ERROR(datapath::SecurePinRoot(pin_root, false).Wrap("cleanup policy of node " + node));
  if (!Exists(paths.node_dir)) return report;
  auto lock = datapath::LockNode(paths);
  if (!lock.ok()) return lock.status().Wrap("cleanup policy of node " + node);
  const std::string ep_pin = paths.maps_dir + "/" WEFT_MAP_ENDPOINTS;
  if (Exists(ep_pin)) {
    UniqueFd fd(bpf_obj_get(ep_pin.c_str()));
    if (!fd) return Status::Errno("open pinned map " + ep_pin, errno);
    std::map<uint32_t, weft_endpoint> eps;
    WEFT_RETURN_IF_ERROR(ReadEndpoints(fd.get(), ep_pin, &eps));
    for (const auto& [ifx, ep] : eps) {
      for (bool ingress : {true, false}) {
        const std::string pin = paths.TcxLink(ifx, ingress);
        auto r = RemoveLinkPin(pin);
        if (!r.ok()) return r.status();
        if (*r) report.removed.push_back(pin);
      }
      WEFT_RETURN_IF_ERROR(RemoveLegacyFilters(ifx, &report.removed));
      // The entry goes too: a later agent must not re-attach to it.
      bpf_map_delete_elem(fd.get(), &ifx);
    }
  }
  // Links whose endpoint entry is gone (a crash between the two). (R/N/links
  // is sock_lb's: not touched here.)
  const std::string& links = paths.tc_links_dir;
  if (Exists(links)) {
    std::error_code ec;
    std::vector<std::string> pins;
    for (const auto& e : fs::directory_iterator(links, ec)) pins.push_back(e.path().string());
    for (const auto& pin : pins) {
      auto r = RemoveLinkPin(pin);
      if (!r.ok()) return r.status();
      if (*r) report.removed.push_back(pin);
    }
    if (::rmdir(links.c_str()) != 0 && errno != ENOENT) return Status::Errno("remove " + links, errno);
    report.removed.push_back(links);
  }
  const std::string& progs = paths.progs_dir;
  if (Exists(progs)) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(progs, ec)) {
      if (::unlink(e.path().c_str()) != 0 && errno != ENOENT) return Status::Errno("unpin " + e.path().string(), errno);
      report.removed.push_back(e.path().string());
    }
    if (::rmdir(progs.c_str()) != 0 && errno != ENOENT) return Status::Errno("remove " + progs, errno);
    report.removed.push_back(progs);
  }
  return report;
}

}  // namespace weft::policy
