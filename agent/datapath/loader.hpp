// Lifecycle of the sock_lb BPF object on one node: open and load it over the
// node's pinned maps (adopting them when they exist), attach its cgroup
// programs through pinned bpf_links (replacing the program of an existing link
// atomically), and remove everything again (Cleanup).
//
// Pinned paths (bpffs), for pin root R and node N:
//   R/N/maps/<map name>    every map of sock_lb (LIBBPF_PIN_BY_NAME)
//   R/N/links/<prog name>  one cgroup bpf_link per program (weft_connect4 ...)
// A pinned link keeps its program attached with no process running, so the
// data plane survives the agent (SIGTERM, kill -9, upgrade).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/datapath/bpf_link.hpp"
#include "weft/node/paths.hpp"
#include "weft/status.hpp"
#include "weft/unique_fd.hpp"

struct sock_lb;  // generated skeleton (weft/sock_lb.skel.h)

namespace weft::datapath {

class AbiMigration;

// Routes libbpf's messages into the agent's log (debug lines only if verbose).
void InstallLibbpfLogging(bool verbose);

// R/N, R/N/maps, R/N/links, ... (the node-local layout: weft/node/paths.hpp).
using NodePaths = node::PinPaths;

struct Capacities {
  // Unset: keep the capacity of an adopted pinned map, else the default.
  std::optional<uint32_t> max_services;
  std::optional<uint32_t> max_backends;
  std::optional<uint32_t> max_slots;
};

struct LoaderOptions {
  std::string pin_root = "/sys/fs/bpf/weft";
  std::string node;
  std::string cgroup;  // cgroup v2 directory to attach to
  Capacities capacities;
};

struct MapSummary {
  std::string name;
  uint32_t id = 0;
  uint32_t max_entries = 0;
  bool adopted = false;  // reused an existing pin
};

struct LinkSummary {
  std::string prog;
  uint32_t link_id = 0;
  uint32_t prog_id = 0;
  bool adopted = false;  // existing pinned link, program replaced by bpf_link_update
};

// The loaded object and the node's links. Destroying it closes fds only:
// pins (and therefore attachments) stay.
class Datapath {
 public:
  // Takes the node lock (LockNode), opens the skeleton with pin_root_path =
  // R/N/maps, checks that existing pins are compatible (type, key/value
  // size, capacity), loads it and checks that existing link pins belong to
  // opts.cgroup (so a wrong --cgroup fails before the maps are touched).
  static Result<std::unique_ptr<Datapath>> Load(const LoaderOptions& opts);
  ~Datapath();
  Datapath(const Datapath&) = delete;
  Datapath& operator=(const Datapath&) = delete;

  // For each program: an existing link pin is opened, checked to be attached
  // to opts.cgroup and updated to the new program (no detach window);
  // otherwise the program is attached to the cgroup and the link pinned.
  Status Attach();

  // Capacities in force after load (requested, adopted from pins, or defaults).
  struct Effective {
    uint32_t services, svc_stats, backends, be_stats, slots;
  };
  Effective capacities() const;

  sock_lb& skel() { return *skel_; }
  const std::vector<MapSummary>& maps() const { return maps_; }
  const std::vector<LinkSummary>& links() const { return links_; }
  const NodePaths& paths() const { return paths_; }
  const LoaderOptions& options() const { return opts_; }

 private:
  Datapath(LoaderOptions opts);
  Status AttachOne(struct bpf_program* prog, int cgroup_fd, uint64_t cgroup_id);
  // Fails early (before any map write) if a pinned link is on another cgroup.
  Status CheckPinnedLinks() const;

  LoaderOptions opts_;
  NodePaths paths_;
  UniqueFd lock_;
  sock_lb* skel_ = nullptr;
  std::vector<MapSummary> maps_;
  std::vector<LinkSummary> links_;
  std::vector<BpfLink> owned_links_;
  std::unique_ptr<AbiMigration> abi_;
};

// Before an object is loaded: make its map definitions match what is pinned
// (so libbpf reuses the pins: adoption) or fail naming both sides. A capacity
// asked for (`requested`) must match the pin's; otherwise the pinned capacity
// wins (adoption never resizes). `hint` ends a mismatch error (what to run).
// Shared by sock_lb (this loader) and tc_policy (agent/policy).
Status PrepareMapsForPins(struct bpf_object* obj,
                          const std::function<std::optional<uint32_t>(const struct bpf_map*)>& requested,
                          const std::string& hint);

// The pin root must be a directory only root can change, in a parent only
// root can rename it in: bpffs is world-writable (mode 1777), so an
// unprivileged user can pre-create the root (and later rename it so that
// `weft-agent cleanup` finds nothing while the programs stay attached), or
// plant entries in it. Checks, without following a symlink:
//   - the parent is owned by root and, if others can write it, sticky (then
//     nobody but root can rename or remove root's entries in it);
//   - the root is a directory owned by root that neither group nor others can
//     write; one they may read or search (an older agent created 0755) is
//     narrowed to 0700 when `create` (logged);
//   - create: missing, it is made with mode 0700.
// A refusal names the path, its owner and its mode, and changes nothing.
// The agent and its cleanup check the same way; since only root can then
// rename anything on the path, the cleanup finds the pins where the agent
// put them.
Status SecurePinRoot(const std::string& pin_root, bool create);

// cgroup id of a cgroup v2 directory (the kernfs id: file handle, else inode).
Result<uint64_t> CgroupId(const std::string& path);

// Exclusive lock on R/N held for the agent's lifetime: one agent per node, and
// cleanup refuses to run under a live agent. Released by the kernel on exit.
Result<UniqueFd> LockNode(const NodePaths& paths);

struct CleanupReport {
  std::vector<std::string> removed;  // pins and directories removed
  bool nothing_to_do() const { return removed.empty(); }
};
// Detaches and unpins every link of the node, unpins its maps and removes its
// pin directories. Idempotent: with nothing pinned it reports nothing to do.
Result<CleanupReport> Cleanup(const std::string& pin_root, const std::string& node);

}  // namespace weft::datapath
