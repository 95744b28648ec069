#include "agent/node_state.hpp"

#include <cstring>
#include <map>
#include <optional>

namespace weft::agent {
namespace {

// The address of a host entry (/32 or /128) of the identity cache; nullopt for a wider prefix.
std::optional<IpAddr> HostOf(const v1::IdentityCacheEntry& e) {
  auto a = AddrFromBytes(e.prefix());
  if (!a || e.prefix_len() != (a->is_v4() ? 32u : 128u)) return std::nullopt;
  return a;
}

// "service ns/name port p" of an LB entry named "ns/name:p".
std::string EntryLabel(const lb::ServiceEntry& e) {
  auto colon = e.name.rfind(':');
  return "service " + e.name.substr(0, colon) + " port " + e.name.substr(colon + 1);
}

}  // namespace

VipRanges VipRanges::Defaults() {
  VipRanges r;
  for (const char* c : {"10.96.0.0/16", "fd00:96::/112", "240.240.0.0/16", "2001:2::/48"})
    r.prefixes.push_back(*IpPrefix::Parse(c));
  return r;
}

Result<VipRanges> VipRanges::Parse(const std::vector<std::string>& cidrs) {
  if (cidrs.empty()) return Defaults();
  VipRanges r;
  for (const auto& c : cidrs) {
    auto p = IpPrefix::Parse(c);
    if (!p) return Status::Error("VIP range \"" + c + "\": expected a CIDR", EINVAL);
    r.prefixes.push_back(*p);
  }
  return r;
}

bool VipRanges::Contains(const IpAddr& ip) const {
  for (const auto& p : prefixes)
    if (p.addr.is_v4() == ip.is_v4() && p.Contains(ip)) return true;
  return false;
}

std::string VipRanges::ToString() const {
  std::string out;
  for (const auto& p : prefixes) out += (out.empty() ? "" : ", ") + p.ToString();
  return out.empty() ? "none" : out;
}

Result<NodeStateChange> NodeState::ApplySnapshot(const v1::NodeConfig& snapshot, uint64_t version) {
  auto keys = services_.ApplySnapshot(snapshot);
  if (!keys.ok()) return keys.status();
  auto policy = policy_.ApplySnapshot(snapshot);
  if (!policy.ok()) {
    services_.Revert();
    return policy.status().Wrap("policy config");
  }
  if (Status st = CheckVips(*keys, nullptr); !st.ok()) {
    Revert();
    return st;
  }
  version_ = version;
  return NodeStateChange{std::move(*policy)};
}

Result<NodeStateChange> NodeState::ApplyDelta(const v1::NodeConfigDelta& delta, uint64_t version) {
  auto keys = services_.ApplyDelta(delta);
  if (!keys.ok()) return keys.status();
  auto policy = policy_.ApplyDelta(delta);
  if (!policy.ok()) {
    services_.Revert();
    return policy.status().Wrap("policy config delta");
  }
  if (Status st = CheckVips(*keys, &delta); !st.ok()) {
    Revert();
    return st;
  }
  version_ = version;
  return NodeStateChange{std::move(*policy)};
}

NodeStateChange NodeState::ReplaceServices(lb::DesiredState services) {
  services_.Replace(std::move(services));
  return NodeStateChange{};
}

void NodeState::Commit() {
  services_.Commit();
  policy_.Commit();
  good_version_ = version_;
  has_good_ = true;
}

void NodeState::Revert() {
  services_.Revert();
  policy_.Revert();
  version_ = good_version_;
}

Status NodeState::CheckVips(const std::vector<weft_svc_key>& changed, const v1::NodeConfigDelta* delta) const {
  const policy::PolicyDesired& pol = policy_.desired();
  const auto& svcs = services_.desired().services;
  // Local workloads' addresses (the first by name owns an address).
  std::map<IpAddr, std::string> local;
  for (const auto& [name, e] : pol.endpoints)
    for (const auto& a : e.addresses) local.emplace(a, name);
  // An identity is a workload's unless it is known to be CIDR-only.
  auto is_workload_id = [&](uint32_t id) {
    auto it = pol.identities.find(id);
    return it == pol.identities.end() || !it->second.spiffe_id.empty();
  };
  // "" if `ip` is no workload's address, else whose it is.
  auto workload_at = [&](const IpAddr& ip) -> std::string {
    if (auto it = local.find(ip); it != local.end()) return "local workload " + it->second;
    auto host = pol.identity.find(policy::IpcacheKey(ip, ip.is_v4() ? 32 : 128));
    if (host != pol.identity.end() && is_workload_id(host->second.identity))
      return "a workload of the mesh (identity " + std::to_string(host->second.identity) + " in the identity cache)";
    return "";
  };
  const std::string refuse = ": refusing the push, nothing changed";
  auto check_vip = [&](const weft_svc_key& key, const lb::ServiceEntry& e) -> Status {
    IpAddr ip = IpAddr::FromBytes(key.addr);
    if (!ranges_.Contains(ip))
      return Status::Error(EntryLabel(e) + ": VIP " + ip.ToString() + " is outside this node's VIP ranges (" +
                               ranges_.ToString() +
                               "; weft-agent --service-cidr, --service-entry-cidr and their -v6)" + refuse,
                           EINVAL);
    if (std::string w = workload_at(ip); !w.empty())
      return Status::Error(EntryLabel(e) + ": VIP " + ip.ToString() + " is the address of " + w + refuse, EINVAL);
    return Status::Ok();
  };
  // Services the push adds or changes (a snapshot: all of them).
  for (const auto& key : changed) WEFT_RETURN_IF_ERROR(check_vip(key, svcs.at(key)));
  if (!delta) return Status::Ok();
  // Workload addresses the delta adds, against every VIP after it.
  auto vip_entry = [&](const IpAddr& ip) -> const std::pair<const weft_svc_key, lb::ServiceEntry>* {
    weft_svc_key probe{};
    ip.CopyTo(probe.addr);
    auto it = svcs.lower_bound(probe);
    if (it == svcs.end() || std::memcmp(it->first.addr, probe.addr, 16) != 0) return nullptr;
    return &*it;
  };
  std::vector<IpAddr> added;
  for (const auto& w : delta->upserted_workloads())
    for (const auto& a : w.addresses())
      if (auto ip = AddrFromBytes(a)) added.push_back(*ip);
  for (const auto& e : delta->upserted_identity_cache())
    if (auto ip = HostOf(e)) added.push_back(*ip);
  for (const auto& ip : added)
    if (const auto* v = vip_entry(ip); v && !workload_at(ip).empty()) WEFT_RETURN_IF_ERROR(check_vip(v->first, v->second));
  // An identity that became a workload's: every VIP again (rare).
  if (delta->upserted_identities_size() > 0) {
    std::optional<IpAddr> last;  // the keys of one VIP are adjacent: check each VIP once
    for (const auto& [key, e] : svcs) {
      IpAddr ip = IpAddr::FromBytes(key.addr);
      if (last == ip) continue;
      last = ip;
      WEFT_RETURN_IF_ERROR(check_vip(key, e));
    }
  }
  return Status::Ok();
}

}  // namespace weft::agent
