#include "agent/policy/policy_datapath.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <filesystem>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "agent/datapath/abi.hpp"
#include "agent/datapath/loader.hpp"
#include "agent/policy/netlink.hpp"
#include "weft/flow_aggregates.hpp"
#include "weft/node/enum_names.hpp"
#include "weft/node/paths.hpp"
#include "weft/sys.hpp"
#include "weft/tc_policy.skel.h"

namespace fs = std::filesystem;

namespace weft::policy {

namespace {

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

}  // namespace

PolicyDatapath::PolicyDatapath(PolicyOptions opts) : opts_(std::move(opts)) {
  const node::PinPaths p(opts_.pin_root, opts_.node);  // the node-local layout
  node_dir_ = p.node_dir;
  maps_dir_ = p.maps_dir;
}

PolicyDatapath::~PolicyDatapath() {
  applier_.reset();
  links_.reset();
  writer_.reset();
  if (skel_) tc_policy__destroy(skel_);  // pins keep maps and links keep programs
}

Result<std::unique_ptr<PolicyDatapath>> PolicyDatapath::Load(const PolicyOptions& opts) {
  if (opts.node.empty() || opts.node.find('/') != std::string::npos || opts.node == "." || opts.node == "..")
    return Status::Error("node name '" + opts.node + "': must be non-empty and contain no '/'");
  std::unique_ptr<PolicyDatapath> dp(new PolicyDatapath(opts));
  if (opts.pin_root == "/sys/fs/bpf" || opts.pin_root.rfind("/sys/fs/bpf/", 0) == 0)
    WEFT_RETURN_IF_ERROR(sys::EnsureBpffs("/sys/fs/bpf"));
  WEFT_RETURN_IF_ERROR(datapath::SecurePinRoot(opts.pin_root, true));
  WEFT_RETURN_IF_ERROR(MakeDirs(dp->maps_dir_));
  const node::PinPaths paths(opts.pin_root, opts.node);
  WEFT_RETURN_IF_ERROR(MakeDirs(paths.progs_dir));
  WEFT_RETURN_IF_ERROR(MakeDirs(paths.tc_links_dir));
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
  dp->writer_ = std::make_unique<KernelPolicyWriter>(*dp->skel_);
  dp->links_ = std::make_unique<TcxLinks>(*dp->skel_, dp->node_dir_);
  dp->applier_ = std::make_unique<PolicyApplier>(*dp->writer_, *dp->links_, RouteToInterface,
                                                 NamesFile(opts.state_dir, opts.node));
  WEFT_RETURN_IF_ERROR(dp->applier_->reconciler().Adopt());
  const KernelPolicy& live = dp->applier_->reconciler().live();
  spdlog::info("policy datapath: {} endpoints, {} policy entries, {} identity entries adopted from {}",
               live.endpoints.size(), live.policy.size(), live.identity.size(), dp->maps_dir_);
  return dp;
}

uint32_t PolicyDatapath::policy_revision() const { return writer_->revision(); }

Status PolicyDatapath::Attach() {
  auto r = applier_->reconciler().AttachAdopted();
  if (!r.ok()) return r.status();
  // The interface is gone (its pod with it): the next Apply removes the entry.
  for (const auto& [ifindex, why] : r->skipped) spdlog::warn("policy: adopted endpoint ifindex {}: {}", ifindex, why);
  WEFT_RETURN_IF_ERROR(links_->PinPrograms());
  spdlog::info("policy: programs attached (in place) on {} adopted interfaces ({} enforce nothing: source "
               "validation only), pinned under {}",
               r->enforcing, r->idle, links_->progs_dir());
  // Every link runs the new programs: migrated maps replace the old pins
  // (last), then the node is stamped with this ABI (the agent attaches the
  // policy datapath after sock_lb: this is its last step).
  WEFT_RETURN_IF_ERROR(abi_->Finish());
  return datapath::StampAbi(bpf_map__fd(skel_->maps.weft_meta), maps_dir_);
}

Status PolicyDatapath::Apply(const PolicyDesired& desired, const PolicyChange& change, uint64_t version) {
  return applier_->Apply(desired, change, version);
}

Status PolicyDatapath::Apply(const v1::NodeConfig& config, uint64_t version) {
  auto d = PolicyState::Convert(config);
  if (!d.ok()) return d.status().Wrap("policy config");
  return Apply(*d, PolicyChange{}, version);
}

Status PolicyDatapath::Refresh(const PolicyDesired& desired) { return applier_->Refresh(desired); }

Result<agent::PolicyCounters> PolicyDatapath::ReadPolicyCounters() const {
  std::shared_ptr<const PolicyNames> names = applier_->names();
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
  out.unplaced_workloads = applier_->unplaced_gauge();
  uint32_t lost = WEFT_EVSTAT_LOST, full = WEFT_EVSTAT_FLOWS_FULL;
  if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.weft_ev_stats), &lost, c.data()) == 0)
    for (auto x : c) out.events_lost += x;
  if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.weft_ev_stats), &full, c.data()) == 0)
    for (auto x : c) out.flows_uncounted += x;
  return out;
}

}  // namespace weft::policy
