#include "agent/policy/policy_datapath.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "agent/datapath/abi.hpp"
#include "agent/datapath/loader.hpp"
#include "agent/policy/netlink.hpp"
#include "weft/flow_aggregates.hpp"
#include "weft/node/enum_names.hpp"
#include "weft/node/names_file.hpp"
#include "weft/node/paths.hpp"
#include "weft/sys.hpp"
#include "weft/tc_policy.skel.h"

namespace fs = std::filesystem;

namespace weft::policy {

namespace {

bool Exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

Status MakeDirs(const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) return Status::Error("create directory " + path + ": " + ec.message(), ec.value());
  return Status::Ok();
}

std::optional<uint32_t> RequestedCapacity(tc_policy& skel, const bpf_map* map, const PolicyCapacities& c) {
  if (map == skel.maps.weft_identity) return c.identity;
  if (map == skel.maps.weft_policy) return c.policy;
  if (map == skel.maps.weft_ct) return c.ct;
  if (map == skel.maps.weft_flows || map == skel.maps.weft_flow_ctr) return c.flows;
  return std::nullopt;
}

// tc_policy's maps over the node's pins (datapath::PrepareMapsForPins).
Status PrepareMaps(tc_policy& skel, const PolicyCapacities& caps, const std::string& node) {
  return datapath::PrepareMapsForPins(
      skel.obj, [&](const bpf_map* m) { return RequestedCapacity(skel, m, caps); },
      ": run `weft-agent cleanup --node " + node + "` first (this drops the node's policy and conntrack state)");
}

template <typename K, typename V, typename M>
Status ReadHash(int fd, const std::string& name, M* out) {
  K key{}, next{};
  void* prev = nullptr;
  for (;;) {
    if (bpf_map_get_next_key(fd, prev, &next) != 0) {
      if (errno == ENOENT) return Status::Ok();
      return Status::Errno("iterate map " + name, errno);
    }
    V v{};
    if (bpf_map_lookup_elem(fd, &next, &v) == 0) (*out)[next] = v;
    key = next;
    prev = &key;
  }
}

template <typename K, typename V>
Status Put(int fd, const std::string& name, const K& k, const V& v, const std::string& what) {
  if (bpf_map_update_elem(fd, &k, &v, BPF_ANY) != 0) return Status::Errno("write " + name + " " + what, errno);
  return Status::Ok();
}
template <typename K>
Status Del(int fd, const std::string& name, const K& k, const std::string& what) {
  if (bpf_map_delete_elem(fd, &k) != 0 && errno != ENOENT) return Status::Errno("delete " + name + " " + what, errno);
  return Status::Ok();
}

std::string Describe(const weft_policy_key& k) {
  return "(ep " + std::to_string(k.ep_id) + ", peer " + std::to_string(k.peer_identity) + ", port " +
         std::to_string(k.port) + "/" + (k.proto == IPPROTO_UDP ? "udp" : "tcp") + ", " +
         (k.direction == WEFT_DIR_EGRESS ? "egress" : "ingress") + ")";
}
std::string Describe(const weft_ipcache_key& k) {
  IpAddr a = IpAddr::FromBytes(k.addr);
  int len = static_cast<int>(k.prefixlen) - (a.is_v4() ? 96 : 0);
  return a.ToString() + "/" + std::to_string(len);
}

// Silences libbpf while creating a clsact hook that may exist (EEXIST is fine).
int CreateHook(bpf_tc_hook* hook) {
  libbpf_print_fn_t prev = libbpf_set_print(nullptr);
  int err = bpf_tc_hook_create(hook);
  libbpf_set_print(prev);
  return err == -EEXIST ? 0 : err;
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
  if (bpf_link_detach(fd.get()) != 0 && errno != ENOLINK)
    return Status::Errno("detach tcx link " + path, errno);
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

bool Enforces(const weft_endpoint& ep) { return ep.enforce_ingress != 0 || ep.enforce_egress != 0; }

}  // namespace

PolicyDatapath::PolicyDatapath(PolicyOptions opts) : opts_(std::move(opts)) {
  const node::PinPaths p(opts_.pin_root, opts_.node);  // the node-local layout
  node_dir_ = p.node_dir;
  maps_dir_ = p.maps_dir;
  progs_dir_ = p.progs_dir;
  links_dir_ = p.tc_links_dir;
}

PolicyDatapath::~PolicyDatapath() {
  if (skel_) tc_policy__destroy(skel_);  // pins keep maps and filters keep programs
}

Result<std::unique_ptr<PolicyDatapath>> PolicyDatapath::Load(const PolicyOptions& opts) {
  if (opts.node.empty() || opts.node.find('/') != std::string::npos || opts.node == "." || opts.node == "..")
    return Status::Error("node name '" + opts.node + "': must be non-empty and contain no '/'");
  std::unique_ptr<PolicyDatapath> dp(new PolicyDatapath(opts));
  if (opts.pin_root == "/sys/fs/bpf" || opts.pin_root.rfind("/sys/fs/bpf/", 0) == 0)
    WEFT_RETURN_IF_ERROR(sys::EnsureBpffs("/sys/fs/bpf"));
  WEFT_RETURN_IF_ERROR(datapath::SecurePinRoot(opts.pin_root, true));
  WEFT_RETURN_IF_ERROR(MakeDirs(dp->maps_dir_));
  WEFT_RETURN_IF_ERROR(MakeDirs(dp->progs_dir_));
  WEFT_RETURN_IF_ERROR(MakeDirs(dp->links_dir_));
  if (opts.lock_node) {
    auto lock = datapath::LockNode(datapath::NodePaths(opts.pin_root, opts.node));
    if (!lock.ok()) return lock.status();
    dp->lock_ = std::move(*lock);
  }
  bpf_object_open_opts oo{};
  oo.sz = sizeof(oo);
  oo.pin_root_path = dp->maps_dir_.c_str();
  dp->skel_ = tc_policy__open_opts(&oo);
  if (!dp->skel_) return Status::Errno("open BPF object tc_policy", errno);
  // The ABI version of the pins first: refused if newer or unknown; an older
  // one is migrated (datapath/abi.hpp): its changed maps are staged here,
  // filled after the load, and replace the old pins once Attach swapped the links.
  auto abi = datapath::AbiMigration::Prepare(
      dp->skel_->obj, dp->maps_dir_,
      ": run `weft-agent cleanup --node " + opts.node + "` first (this drops the node's policy and conntrack state)");
  if (!abi.ok()) return abi.status().Wrap("adopt the policy pins of node " + opts.node);
  dp->abi_ = std::move(*abi);
  WEFT_RETURN_IF_ERROR(PrepareMaps(*dp->skel_, opts.capacities, opts.node));
  if (int err = tc_policy__load(dp->skel_); err != 0)
    return Status::Errno("load BPF object tc_policy (maps pinned under " + dp->maps_dir_ + ")", -err);
  WEFT_RETURN_IF_ERROR(dp->abi_->Fill());
  WEFT_RETURN_IF_ERROR(dp->ReadLive());
  spdlog::info("policy datapath: {} endpoints, {} policy entries, {} identity entries adopted from {}",
               dp->live_.endpoints.size(), dp->live_.policy.size(), dp->live_.identity.size(), dp->maps_dir_);
  return dp;
}

Status PolicyDatapath::ReadLive() {
  live_ = {};
  WEFT_RETURN_IF_ERROR((ReadHash<uint32_t, weft_endpoint>(bpf_map__fd(skel_->maps.weft_endpoints),
                                                          WEFT_MAP_ENDPOINTS, &live_.endpoints)));
  WEFT_RETURN_IF_ERROR((ReadHash<weft_policy_key, weft_policy_val>(bpf_map__fd(skel_->maps.weft_policy),
                                                                   WEFT_MAP_POLICY, &live_.policy)));
  WEFT_RETURN_IF_ERROR((ReadHash<weft_ipcache_key, weft_ipcache_val>(bpf_map__fd(skel_->maps.weft_identity),
                                                                     WEFT_MAP_IDENTITY, &live_.identity)));
  return Status::Ok();
}

std::string PolicyDatapath::prog_pin(bool from_pod) const {
  return progs_dir_ + "/" + (from_pod ? node::kProgFromPod : node::kProgToPod);
}

uint32_t PolicyDatapath::policy_revision() const {
  uint32_t zero = 0, v = 0;
  bpf_map_lookup_elem(bpf_map__fd(skel_->maps.weft_policy_rev), &zero, &v);
  return v;
}

Status PolicyDatapath::AttachInterface(uint32_t ifindex, bool to_pod) {
  for (bool ingress : {true, false}) {
    if (!ingress && !to_pod) {
      // Leaving the pod is always checked (source validation); entering it
      // only where a direction is enforced.
      auto r = RemoveLinkPin(LinkPin(links_dir_, ifindex, false));
      if (!r.ok()) return r.status();
      continue;
    }
    bpf_program* prog = ingress ? skel_->progs.weft_tc_from_pod : skel_->progs.weft_tc_to_pod;
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
    const std::string tmp = pin + "_new";  // bpffs refuses names with a dot
    ::unlink(tmp.c_str());
    if (bpf_obj_pin(fresh.get(), tmp.c_str()) != 0) return Status::Errno("pin tcx link at " + tmp, errno);
    if (::rename(tmp.c_str(), pin.c_str()) != 0) {
      int err = errno;
      ::unlink(tmp.c_str());
      return Status::Errno("rename " + tmp + " to " + pin, err);
    }
  }
  // An older agent's cls_bpf filters go once the tcx links are in (tcx runs
  // first and its verdict ends the hook: the old filter no longer ran).
  WEFT_RETURN_IF_ERROR(RemoveLegacyFilters(ifindex, nullptr));
  attached_[ifindex] = to_pod;
  return Status::Ok();
}

Status PolicyDatapath::DetachInterface(uint32_t ifindex) {
  for (bool ingress : {true, false}) {
    auto r = RemoveLinkPin(LinkPin(links_dir_, ifindex, ingress));
    if (!r.ok()) return r.status();
  }
  WEFT_RETURN_IF_ERROR(RemoveLegacyFilters(ifindex, nullptr));
  attached_.erase(ifindex);
  return Status::Ok();
}

Status PolicyDatapath::PinPrograms() {
  for (bool from : {true, false}) {
    bpf_program* p = from ? skel_->progs.weft_tc_from_pod : skel_->progs.weft_tc_to_pod;
    const std::string pin = prog_pin(from), tmp = pin + "_new";  // bpffs refuses names with a dot
    ::unlink(tmp.c_str());
    if (bpf_obj_pin(bpf_program__fd(p), tmp.c_str()) != 0) return Status::Errno("pin program at " + tmp, errno);
    if (::rename(tmp.c_str(), pin.c_str()) != 0) {
      int err = errno;
      ::unlink(tmp.c_str());
      return Status::Errno("rename " + tmp + " to " + pin, err);
    }
  }
  return Status::Ok();
}

Status PolicyDatapath::Attach() {
  size_t replaced = 0, idle = 0;
  for (const auto& [ifindex, ep] : live_.endpoints) {
    // weft_tc_from_pod everywhere, weft_tc_to_pod where policy applies (see
    // ApplyDesired, step 4).
    Status st = AttachInterface(ifindex, Enforces(ep));
    if (!st.ok()) {
      if (st.err() == ENODEV || st.err() == ENOENT || st.err() == EINVAL) {
        // The interface is gone (its pod with it): Apply removes the entry.
        spdlog::warn("policy: adopted endpoint ifindex {} (ep {}): {}", ifindex, ep.ep_id, st.message());
        continue;
      }
      return st;
    }
    ++(Enforces(ep) ? replaced : idle);
  }
  WEFT_RETURN_IF_ERROR(PinPrograms());
  spdlog::info("policy: programs attached (in place) on {} adopted interfaces ({} enforce nothing: source "
               "validation only), pinned under {}",
               replaced, idle, progs_dir_);
  // Every link runs the new programs: migrated maps replace the old pins
  // (last), then the node is stamped with this ABI (the agent attaches the
  // policy datapath after sock_lb: this is its last step).
  WEFT_RETURN_IF_ERROR(abi_->Finish());
  return datapath::StampAbi(bpf_map__fd(skel_->maps.weft_meta), maps_dir_);
}

Status PolicyDatapath::Apply(const v1::NodeConfig& config, uint64_t version) {
  auto c = PolicyConfig::FromSnapshot(config);
  if (!c.ok()) return c.status().Wrap("policy config");
  auto d = BuildPolicyDesired(*c);
  if (!d.ok()) return d.status().Wrap("policy config");
  WEFT_RETURN_IF_ERROR(ApplyDesired(*d, version));
  config_ = std::move(*c);
  return Status::Ok();
}

Status PolicyDatapath::ApplyDelta(const v1::NodeConfigDelta& delta, uint64_t version) {
  const bool cache_only = delta.upserted_workloads_size() == 0 && delta.removed_workloads_size() == 0 &&
                          delta.upserted_identities_size() == 0 && delta.removed_identities_size() == 0 &&
                          delta.upserted_policy_names_size() == 0 && delta.removed_policy_names_size() == 0;
  if (cache_only && config_ && desired_ && unplaced_.empty()) return ApplyIdentityCacheDelta(delta, version);
  PolicyConfig c = config_ ? *config_ : PolicyConfig{};
  WEFT_RETURN_IF_ERROR(c.ApplyDelta(delta).Wrap("policy config delta"));
  auto d = BuildPolicyDesired(c);
  if (!d.ok()) return d.status().Wrap("policy config delta");
  WEFT_RETURN_IF_ERROR(ApplyDesired(*d, version));
  config_ = std::move(c);
  return Status::Ok();
}

Status PolicyDatapath::ApplyIdentityCacheDelta(const v1::NodeConfigDelta& delta, uint64_t version) {
  // Everything is checked before anything is written (as the full path).
  struct Up {
    IdentityCacheKeys keys;
    uint32_t identity;
  };
  std::vector<Up> ups;
  std::vector<IdentityCacheKeys> dels;
  for (const auto& e : delta.removed_identity_cache()) {
    auto k = IdentityCacheKeysOf(e);
    if (!k.ok()) return k.status().Wrap("policy config delta: removed");
    dels.push_back(*k);
  }
  for (const auto& e : delta.upserted_identity_cache()) {
    auto k = IdentityCacheKeysOf(e);
    if (!k.ok()) return k.status().Wrap("policy config delta: upserted");
    if (e.identity() == WEFT_IDENTITY_ANY)
      return Status::Error("policy config delta: identity cache entry with identity 0 (ANY) is not an identity");
    ups.push_back({*k, e.identity()});
  }
  // PolicyConfig::ApplyDelta applies removals, then upserts: an entry both
  // removed and upserted ends up upserted. The same here.
  std::set<std::pair<std::string, uint32_t>> upserted;
  for (const auto& u : ups) upserted.insert(u.keys.config_key);
  const int id_fd = bpf_map__fd(skel_->maps.weft_identity);
  size_t writes = 0;
  // Upserts before deletes (the full path's order 2 then 7). Only live_ (the
  // kernel's mirror) changes while writing; config_ and desired_ take the
  // delta once every write succeeded, so after a failure Refresh() converges
  // back to the last good state, as after a failed full apply.
  std::vector<const IdentityCacheKeys*> gone;
  for (const auto& u : ups) {
    const weft_ipcache_val v{u.identity, 0};
    auto it = live_.identity.find(u.keys.kernel_key);
    if (it != live_.identity.end() && PodEq(it->second, v)) continue;
    WEFT_RETURN_IF_ERROR(Put(id_fd, WEFT_MAP_IDENTITY, u.keys.kernel_key, v, Describe(u.keys.kernel_key)));
    live_.identity[u.keys.kernel_key] = v;
    ++writes;
  }
  for (const auto& d : dels) {
    if (upserted.count(d.config_key)) continue;
    gone.push_back(&d);
    // Two config prefixes can share a kernel key only if they differ in host
    // bits; keep the kernel entry while another config entry still maps to it.
    bool still_wanted = false;
    for (const auto& u : ups) still_wanted |= std::memcmp(&u.keys.kernel_key, &d.kernel_key, sizeof(d.kernel_key)) == 0;
    if (still_wanted || !live_.identity.count(d.kernel_key)) continue;
    WEFT_RETURN_IF_ERROR(Del(id_fd, WEFT_MAP_IDENTITY, d.kernel_key, Describe(d.kernel_key)));
    live_.identity.erase(d.kernel_key);
    ++writes;
  }
  if (writes > 0) {
    uint32_t zero = 0, rev = policy_revision() + 1;
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.weft_policy_rev), &zero, &rev, BPF_ANY) != 0)
      return Status::Errno("bump " WEFT_MAP_POLICY_REV, errno);
  }
  for (const auto* d : gone) {
    config_->identity_cache.erase(d->config_key);
    desired_->identity.erase(d->kernel_key);
  }
  for (const auto& u : ups) {
    config_->identity_cache[u.keys.config_key] = u.identity;
    desired_->identity[u.keys.kernel_key] = weft_ipcache_val{u.identity, 0};
  }
  version_ = version;
  // Names (identities, policies, endpoints) did not change: names.json and the
  // metrics' names stay as they are.
  spdlog::debug("policy: applied version {} (identity cache only): +{} -{}; {} map writes", version, ups.size(),
                dels.size(), writes);
  return Status::Ok();
}

size_t PolicyDatapath::unplaced_count() const {
  size_t n = 0;
  for (const auto& [name, u] : unplaced_) n += u.no_interface ? 1 : 0;
  return n;
}

std::set<IpAddr> PolicyDatapath::unplaced_addresses() const {
  std::set<IpAddr> out, placed;
  if (!desired_) return out;
  for (const auto& [name, p] : placement_) placed.insert(p.addresses.begin(), p.addresses.end());
  for (const auto& [name, u] : unplaced_) {
    if (!u.no_interface) continue;
    auto it = desired_->endpoints.find(name);
    if (it == desired_->endpoints.end()) continue;
    for (const IpAddr& a : it->second.addresses)
      if (!placed.count(a)) out.insert(a);
  }
  return out;
}

Status PolicyDatapath::Refresh() {
  if (!desired_) return Status::Ok();
  PolicyDesired d = *desired_;
  return ApplyDesired(d, version_);
}

Status PolicyDatapath::ApplyDesired(const PolicyDesired& desired, uint64_t version) {
  // Placement. A workload's interface: the route to its first address (an
  // on-link veth). Its source addresses: those of its addresses that the node
  // routes to that interface (so no WorkloadEntry can make another pod's
  // address its own source). Workloads on one interface are one endpoint when
  // they are the same endpoint (SameEndpoint: a dual-stack pod as two
  // WorkloadEntries), with the union of their addresses; otherwise the first
  // by name keeps it. Endpoint ids (per interface): adopted by ifindex, kept
  // from the last apply, else the smallest free one. What cannot be placed is
  // reported once while it lasts (Refresh retries it every second, silently).
  std::map<std::string, Unplaced> unplaced;
  std::map<std::string, std::string> notes;  // condition -> message, reported once while it lasts
  std::map<uint32_t, Placement> by_if;       // ifindex -> the endpoint's placement
  std::map<uint32_t, std::string> owner;     // ifindex -> the workload placed there first
  std::map<uint32_t, std::string> ifname;
  std::map<std::string, uint32_t> iface_of;  // workload -> ifindex
  for (const auto& [name, e] : desired.endpoints) {
    if (e.addresses.empty()) continue;  // nothing to route to: never placed
    auto iface = RouteToInterface(e.addresses.front());
    if (!iface.ok()) {
      unplaced[name] = {true, iface.status().message() + "; not enforced until its interface appears"};
      continue;
    }
    if (iface->kind != "veth") {
      unplaced[name] = {true, "route to " + e.addresses.front().ToString() + " leaves through " + iface->name +
                                  " (kind '" + iface->kind + "'), not a veth: not attaching"};
      continue;
    }
    std::vector<IpAddr> own{e.addresses.front()};
    for (size_t i = 1; i < e.addresses.size(); ++i) {
      auto r = RouteToInterface(e.addresses[i]);
      if (r.ok() && r->ifindex == iface->ifindex) {
        own.push_back(e.addresses[i]);
        continue;
      }
      const std::string a = e.addresses[i].ToString();
      notes["route " + name + " " + a] = "workload " + name + ": address " + a + " is not routed to its interface " +
                                         iface->name + ": not one of its source addresses";
    }
    auto [it, first] = owner.emplace(iface->ifindex, name);
    if (!first && !SameEndpoint(desired.endpoints.at(it->second), e)) {
      unplaced[name] = {false, "interface " + iface->name + " already serves workload " + it->second +
                                   " with another identity or policy: skipped"};
      continue;
    }
    Placement& p = by_if[iface->ifindex];
    p.ifindex = iface->ifindex;
    for (const IpAddr& a : own)
      if (std::find(p.addresses.begin(), p.addresses.end(), a) == p.addresses.end()) p.addresses.push_back(a);
    ifname[iface->ifindex] = iface->name;
    iface_of[name] = iface->ifindex;
  }
  for (auto& [ifx, p] : by_if) {
    if (p.addresses.size() <= WEFT_EP_MAX_ADDRS) continue;
    std::string dropped;
    for (size_t i = WEFT_EP_MAX_ADDRS; i < p.addresses.size(); ++i) dropped += " " + p.addresses[i].ToString();
    notes["cap " + owner[ifx]] = "workload " + owner[ifx] + ": interface " + ifname[ifx] + " has " +
                                 std::to_string(p.addresses.size()) + " addresses, an endpoint holds " +
                                 std::to_string(WEFT_EP_MAX_ADDRS) + ": not allowed as sources:" + dropped;
    p.addresses.resize(WEFT_EP_MAX_ADDRS);
  }
  // Ids: an id already used by an adopted endpoint of another interface is
  // not reused in the same apply (its stale entries are deleted only at the end).
  std::set<uint32_t> used_ids, claimed;
  for (const auto& [ifx, ep] : live_.endpoints) used_ids.insert(ep.ep_id);
  for (auto& [ifx, p] : by_if) {
    if (auto it = live_.endpoints.find(ifx); it != live_.endpoints.end() && claimed.insert(it->second.ep_id).second)
      p.ep_id = it->second.ep_id;
  }
  for (auto& [ifx, p] : by_if) {
    if (p.ep_id != 0) continue;
    if (auto it = placement_.find(owner[ifx]); it != placement_.end() && it->second.ep_id != 0 &&
                                               !claimed.count(it->second.ep_id) && !used_ids.count(it->second.ep_id))
      p.ep_id = it->second.ep_id;
    uint32_t id = 1;
    while (p.ep_id == 0) {
      if (!claimed.count(id) && !used_ids.count(id)) p.ep_id = id;
      ++id;
    }
    claimed.insert(p.ep_id);
  }
  std::map<std::string, Placement> placement;
  std::map<std::string, EndpointStatus> status;
  for (const auto& [name, ifx] : iface_of) {
    placement[name] = by_if[ifx];
    status[name] = EndpointStatus{name, ifx, ifname[ifx], by_if[ifx].ep_id};
  }
  for (const auto& [name, u] : unplaced) {
    auto it = unplaced_.find(name);
    if (it == unplaced_.end() || it->second.why != u.why) spdlog::warn("policy: workload {}: {}", name, u.why);
  }
  for (const auto& [name, u] : unplaced_)
    if (!unplaced.count(name) && placement.count(name))
      spdlog::info("policy: workload {} is placed now (interface {})", name, status[name].ifname);
  for (const auto& [key, msg] : notes)
    if (!notes_.count(key)) spdlog::warn("policy: {}", msg);

  KernelPolicy want = ToKernel(desired, placement);
  const int pol_fd = bpf_map__fd(skel_->maps.weft_policy), id_fd = bpf_map__fd(skel_->maps.weft_identity),
            ep_fd = bpf_map__fd(skel_->maps.weft_endpoints);
  size_t writes = 0;

  // 1-3: upserts, in the order policy -> identity -> endpoints.
  for (const auto& [k, v] : want.policy) {
    auto it = live_.policy.find(k);
    if (it != live_.policy.end() && PodEq(it->second, v)) continue;
    WEFT_RETURN_IF_ERROR(Put(pol_fd, WEFT_MAP_POLICY, k, v, Describe(k)));
    live_.policy[k] = v;
    ++writes;
  }
  for (const auto& [k, v] : want.identity) {
    auto it = live_.identity.find(k);
    if (it != live_.identity.end() && PodEq(it->second, v)) continue;
    WEFT_RETURN_IF_ERROR(Put(id_fd, WEFT_MAP_IDENTITY, k, v, Describe(k)));
    live_.identity[k] = v;
    ++writes;
  }
  for (const auto& [ifx, ep] : want.endpoints) {
    auto it = live_.endpoints.find(ifx);
    if (it != live_.endpoints.end() && PodEq(it->second, ep)) continue;
    WEFT_RETURN_IF_ERROR(Put(ep_fd, WEFT_MAP_ENDPOINTS, ifx, ep, "ifindex " + std::to_string(ifx)));
    live_.endpoints[ifx] = ep;
    ++writes;
  }
  // 4: weft_tc_from_pod on every endpoint (source validation: the pod's own
  // addresses are in its entry since step 3), weft_tc_to_pod only where
  // policy applies: on an endpoint that enforces neither direction it would
  // only find that out and pass, at a cost on every packet entering the pod,
  // and leaving the pod it does no more than the source check. (Its flows
  // are not counted.)
  for (const auto& [ifx, ep] : want.endpoints) {
    const bool to_pod = Enforces(ep);
    auto it = attached_.find(ifx);
    if (it == attached_.end() || it->second != to_pod) WEFT_RETURN_IF_ERROR(AttachInterface(ifx, to_pod));
  }
  // 5: interfaces whose workload is gone.
  for (auto it = live_.endpoints.begin(); it != live_.endpoints.end();) {
    if (want.endpoints.count(it->first)) {
      ++it;
      continue;
    }
    WEFT_RETURN_IF_ERROR(DetachInterface(it->first));
    WEFT_RETURN_IF_ERROR(Del(ep_fd, WEFT_MAP_ENDPOINTS, it->first, "ifindex " + std::to_string(it->first)));
    it = live_.endpoints.erase(it);
    ++writes;
  }
  // 6-7: stale entries.
  for (auto it = live_.policy.begin(); it != live_.policy.end();) {
    if (want.policy.count(it->first)) {
      ++it;
      continue;
    }
    WEFT_RETURN_IF_ERROR(Del(pol_fd, WEFT_MAP_POLICY, it->first, Describe(it->first)));
    it = live_.policy.erase(it);
    ++writes;
  }
  for (auto it = live_.identity.begin(); it != live_.identity.end();) {
    if (want.identity.count(it->first)) {
      ++it;
      continue;
    }
    WEFT_RETURN_IF_ERROR(Del(id_fd, WEFT_MAP_IDENTITY, it->first, Describe(it->first)));
    it = live_.identity.erase(it);
    ++writes;
  }
  // 8: established flows are evaluated again under the new revision.
  if (writes > 0) {
    uint32_t zero = 0, rev = policy_revision() + 1;
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.weft_policy_rev), &zero, &rev, BPF_ANY) != 0)
      return Status::Errno("bump " WEFT_MAP_POLICY_REV, errno);
  }
  bool unplaced_changed = unplaced.size() != unplaced_.size();
  for (const auto& [name, u] : unplaced) unplaced_changed |= !unplaced_.count(name);
  placement_ = std::move(placement);
  unplaced_ = std::move(unplaced);
  unplaced_gauge_.store(unplaced_count(), std::memory_order_relaxed);
  notes_ = std::move(notes);
  endpoints_.clear();
  for (auto& [name, s] : status) endpoints_.push_back(s);
  desired_ = desired;
  version_ = version;
  {
    std::lock_guard lk(names_mu_);
    names_ = std::make_shared<const PolicyDesired>(desired);
  }
  // Logged when something changed: a Refresh that finds nothing new is silent.
  if (writes > 0 || unplaced_changed)
    spdlog::info("policy: applied version {}: {} endpoints ({} without interface), {} policy entries, {} identity "
                 "entries; {} map writes, revision {}",
                 version, live_.endpoints.size(), unplaced_.size(), live_.policy.size(), live_.identity.size(), writes,
                 policy_revision());
  // 9
  return WriteNames(desired, version);
}

Status PolicyDatapath::WriteNames(const PolicyDesired& desired, uint64_t version) {
  if (opts_.state_dir.empty()) return Status::Ok();
  // The file's schema is the node-local contract's (weft/node/names_file.hpp).
  node::NodeNames n;
  n.version = version;
  n.identities = desired.identities;
  n.policies = desired.policy_names;
  for (const auto& [name, e] : desired.endpoints) {
    node::EndpointName ep;
    ep.workload = name;
    ep.identity = e.identity;
    for (const auto& s : endpoints_)
      if (s.workload == name) {
        ep.ifindex = s.ifindex;
        ep.ifname = s.ifname;
        ep.ep_id = s.ep_id;
      }
    for (const auto& a : e.addresses) ep.addresses.push_back(a.ToString());
    ep.enforce_ingress = e.enforce_ingress;
    ep.policies = e.policies;
    n.endpoints.push_back(std::move(ep));
  }
  const std::string path = node::StatePaths(opts_.state_dir, opts_.node).names;
  std::string text = node::RenderNames(n);
  if (text == last_names_ && Exists(path)) return Status::Ok();  // unchanged (e.g. a Refresh)
  WEFT_RETURN_IF_ERROR(node::WriteNamesFile(path, text));
  last_names_ = std::move(text);
  return Status::Ok();
}

Result<agent::PolicyCounters> PolicyDatapath::ReadPolicyCounters() const {
  std::shared_ptr<const PolicyDesired> names;
  {
    std::lock_guard lk(names_mu_);
    names = names_;
  }
  auto identity = [&](uint32_t id) -> std::string {
    if (std::string r = node::ReservedIdentityName(id); !r.empty()) return r;
    if (names) {
      auto it = names->identities.find(id);
      if (it != names->identities.end()) {
        if (!it->second.spiffe_id.empty()) return it->second.spiffe_id;
        if (!it->second.cidrs.empty()) return it->second.cidrs.front();
      }
    }
    return std::to_string(id);
  };
  auto policy = [&](uint32_t id) -> std::string {
    if (id == 0) return "";
    if (names) {
      auto it = names->policy_names.find(id);
      if (it != names->policy_names.end()) return it->second.name;
    }
    return std::to_string(id);
  };
  const int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return Status::Error("count possible CPUs", -ncpu);
  agent::PolicyCounters out;
  // The flow aggregates, summed over CPUs; label sets that decode alike are merged.
  std::map<std::tuple<std::string, std::string, uint16_t, std::string, std::string, std::string, std::string,
                      std::string>,
           uint64_t>
      flows;
  auto aggs = flows::ReadAggregates(bpf_map__fd(skel_->maps.weft_flows), bpf_map__fd(skel_->maps.weft_flow_ctr));
  if (!aggs.ok()) return aggs.status();
  for (const auto& a : *aggs) {
    const auto& key = a.key;
    flows[{identity(key.src_identity), identity(key.dst_identity), key.dport, node::ProtoName(key.proto),
           node::VerdictOutcome(key.verdict), node::DropReasonName(key.reason), policy(key.policy_id),
           node::DirectionName(key.direction)}] += a.total.connections;
  }
  for (const auto& [k, n] : flows) {
    agent::PolicyCounters::Flow f;
    std::tie(f.src, f.dst, f.dport, f.proto, f.verdict, f.reason, f.policy, f.direction) = k;
    f.connections = n;
    out.flows.push_back(std::move(f));
  }
  std::vector<uint64_t> c(ncpu);
  for (uint32_t r = 1; r < WEFT_DROP_MAX; ++r) {
    uint64_t sum = 0;
    if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.weft_drop_stats), &r, c.data()) == 0)
      for (auto x : c) sum += x;
    out.drops.emplace_back(node::DropReasonName(r), sum);
  }
  out.unplaced_workloads = unplaced_gauge_.load(std::memory_order_relaxed);
  uint32_t lost = WEFT_EVSTAT_LOST, full = WEFT_EVSTAT_FLOWS_FULL;
  if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.weft_ev_stats), &lost, c.data()) == 0)
    for (auto x : c) out.events_lost += x;
  if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.weft_ev_stats), &full, c.data()) == 0)
    for (auto x : c) out.flows_uncounted += x;
  return out;
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
    WEFT_RETURN_IF_ERROR((ReadHash<uint32_t, weft_endpoint>(fd.get(), ep_pin, &eps)));
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
