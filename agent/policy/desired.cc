#include "agent/policy/desired.hpp"

#include <netinet/in.h>

namespace weft::policy {

namespace {

std::string KeyOf(const v1::Workload& w) { return w.namespace_() + "/" + w.name(); }

Result<std::pair<std::string, uint32_t>> CacheKey(const v1::IdentityCacheEntry& e) {
  const std::string& p = e.prefix();
  if (p.size() != 4 && p.size() != 16)
    return Status::Error("identity cache entry: prefix has " + std::to_string(p.size()) + " bytes, expected 4 or 16");
  uint32_t max = p.size() == 4 ? 32 : 128;
  if (e.prefix_len() > max)
    return Status::Error("identity cache entry: prefix length " + std::to_string(e.prefix_len()) + " > " +
                         std::to_string(max));
  return std::make_pair(p, e.prefix_len());
}

Result<IpAddr> AddrOf(const std::string& bytes) {
  if (bytes.size() == 4) {
    uint32_t be;
    std::memcpy(&be, bytes.data(), 4);
    return IpAddr::FromV4(be);
  }
  if (bytes.size() == 16) return IpAddr::FromBytes(reinterpret_cast<const uint8_t*>(bytes.data()));
  return Status::Error("address has " + std::to_string(bytes.size()) + " bytes, expected 4 or 16");
}

const char* VerdictName(int v) { return v1::Verdict_IsValid(v) ? v1::Verdict_Name(v).c_str() : "?"; }

}  // namespace

Result<PolicyConfig> PolicyConfig::FromSnapshot(const v1::NodeConfig& snapshot) {
  PolicyConfig c;
  for (const auto& w : snapshot.local_workloads())
    if (!c.workloads.emplace(KeyOf(w), w).second) return Status::Error("workload " + KeyOf(w) + " listed twice");
  for (const auto& e : snapshot.identity_cache()) {
    auto k = CacheKey(e);
    if (!k.ok()) return k.status();
    if (!c.identity_cache.emplace(*k, e.identity()).second)
      return Status::Error("identity cache: prefix listed twice (identity " + std::to_string(e.identity()) + ")");
  }
  for (const auto& i : snapshot.identities())
    if (!c.identities.emplace(i.id(), i).second)
      return Status::Error("identity " + std::to_string(i.id()) + " listed twice");
  for (const auto& p : snapshot.policy_names())
    if (!c.policy_names.emplace(p.id(), p).second)
      return Status::Error("policy id " + std::to_string(p.id()) + " listed twice");
  return c;
}

Status PolicyConfig::ApplyDelta(const v1::NodeConfigDelta& d) {
  for (const auto& w : d.upserted_workloads()) workloads[KeyOf(w)] = w;
  for (const auto& n : d.removed_workloads()) workloads.erase(n);
  for (const auto& e : d.removed_identity_cache()) {
    auto k = CacheKey(e);
    if (!k.ok()) return k.status().Wrap("removed");
    identity_cache.erase(*k);
  }
  for (const auto& e : d.upserted_identity_cache()) {
    auto k = CacheKey(e);
    if (!k.ok()) return k.status().Wrap("upserted");
    identity_cache[*k] = e.identity();
  }
  for (uint32_t id : d.removed_identities()) identities.erase(id);
  for (const auto& i : d.upserted_identities()) identities[i.id()] = i;
  for (uint32_t id : d.removed_policy_names()) policy_names.erase(id);
  for (const auto& p : d.upserted_policy_names()) policy_names[p.id()] = p;
  return Status::Ok();
}

weft_ipcache_key IpcacheKey(const IpAddr& addr, int prefix_len) {
  weft_ipcache_key k{};
  addr.CopyTo(k.addr);
  k.prefixlen = static_cast<uint32_t>(addr.is_v4() ? prefix_len + 96 : prefix_len);
  return k;
}

namespace {
// The trie ignores host bits; the mirror must too.
weft_ipcache_key KernelKey(const IpAddr& a, int len) {
  weft_ipcache_key key = IpcacheKey(a, len);
  for (uint32_t bit = key.prefixlen; bit < 128; ++bit) key.addr[bit / 8] &= static_cast<uint8_t>(~(0x80u >> (bit % 8)));
  return key;
}
}  // namespace

Result<IdentityCacheKeys> IdentityCacheKeysOf(const v1::IdentityCacheEntry& e) {
  auto k = CacheKey(e);
  if (!k.ok()) return k.status();
  auto a = AddrOf(k->first);
  if (!a.ok()) return a.status().Wrap("identity cache");
  IdentityCacheKeys out;
  out.config_key = *k;
  out.kernel_key = KernelKey(*a, static_cast<int>(k->second));
  return out;
}

Result<PolicyDesired> BuildPolicyDesired(const PolicyConfig& config) {
  PolicyDesired d;
  for (const auto& [name, w] : config.workloads) {
    const std::string what = "workload " + name;
    EndpointDesired e;
    e.workload = name;
    for (int i = 0; i < w.addresses_size(); ++i) {
      auto a = AddrOf(w.addresses(i));
      if (!a.ok()) return a.status().Wrap(what + " address " + std::to_string(i));
      e.addresses.push_back(*a);
    }
    e.identity = w.identity();
    e.enforce_ingress = w.enforce_ingress();
    e.enforce_egress = w.enforce_egress();
    if ((e.enforce_ingress || e.enforce_egress) && e.identity < WEFT_IDENTITY_FIRST_DYNAMIC && e.identity != 0)
      return Status::Error(what + ": identity " + std::to_string(e.identity) + " is reserved");
    for (int i = 0; i < w.policy_size(); ++i) {
      const auto& p = w.policy(i);
      const std::string where = what + " policy entry " + std::to_string(i);
      weft_policy_key k{};
      k.peer_identity = p.peer_identity();
      if (p.port() > 65535) return Status::Error(where + ": port " + std::to_string(p.port()) + " > 65535");
      k.port = static_cast<uint16_t>(p.port());
      switch (p.protocol()) {
        case v1::TCP: k.proto = IPPROTO_TCP; break;
        case v1::UDP: k.proto = IPPROTO_UDP; break;
        default: return Status::Error(where + ": protocol must be TCP or UDP");
      }
      switch (p.direction()) {
        case v1::INGRESS: k.direction = WEFT_DIR_INGRESS; break;
        case v1::EGRESS: k.direction = WEFT_DIR_EGRESS; break;
        default: return Status::Error(where + ": unknown direction " + std::to_string(p.direction()));
      }
      weft_policy_val v{};
      switch (p.verdict()) {
        case v1::ALLOW: v.verdict = WEFT_VERDICT_ALLOW; break;
        case v1::DENY: v.verdict = WEFT_VERDICT_DENY; break;
        case v1::STEER: v.verdict = WEFT_VERDICT_STEER; break;
        default: return Status::Error(where + ": verdict " + std::string(VerdictName(p.verdict())));
      }
      v.policy_id = p.policy_id();
      if (v.verdict == WEFT_VERDICT_DENY) {
        if (p.reason() >= WEFT_DROP_MAX) return Status::Error(where + ": unknown drop reason " + std::to_string(p.reason()));
        v.reason = static_cast<uint8_t>(p.reason());
      }
      auto [it, inserted] = e.entries.emplace(k, v);
      if (!inserted && !PodEq(it->second, v))
        return Status::Error(where + ": same (peer " + std::to_string(k.peer_identity) + ", port " +
                             std::to_string(k.port) + ") as an earlier entry with another verdict or policy");
    }
    e.policies.assign(w.policies().begin(), w.policies().end());
    d.endpoints.emplace(name, std::move(e));
  }
  for (const auto& [k, id] : config.identity_cache) {
    auto a = AddrOf(k.first);
    if (!a.ok()) return a.status().Wrap("identity cache");
    IpPrefix pfx{*a, static_cast<int>(k.second)};
    if (id == WEFT_IDENTITY_ANY)
      return Status::Error("identity cache entry " + pfx.ToString() + ": identity 0 (ANY) is not an identity");
    d.identity[KernelKey(*a, static_cast<int>(k.second))] = weft_ipcache_val{id, 0};
  }
  for (const auto& [id, i] : config.identities) {
    IdentityName n{id, i.spiffe_id(), i.namespace_(), i.service_account(), {}};
    n.cidrs.assign(i.cidrs().begin(), i.cidrs().end());
    d.identities.emplace(id, std::move(n));
  }
  for (const auto& [id, p] : config.policy_names) d.policy_names.emplace(id, PolicyNameInfo{id, p.name(), p.action()});
  return d;
}

KernelPolicy ToKernel(const PolicyDesired& desired, const std::map<std::string, Placement>& placement) {
  KernelPolicy k;
  k.identity = desired.identity;
  for (const auto& [name, e] : desired.endpoints) {
    auto it = placement.find(name);
    if (it == placement.end() || it->second.ifindex == 0 || it->second.ep_id == 0) continue;
    weft_endpoint ep{};
    ep.ep_id = it->second.ep_id;
    ep.identity = e.identity;
    ep.enforce_ingress = e.enforce_ingress;
    ep.enforce_egress = e.enforce_egress;
    for (const IpAddr& a : it->second.addresses) {
      if (ep.n_addrs == WEFT_EP_MAX_ADDRS) break;
      a.CopyTo(ep.addrs[ep.n_addrs++]);
    }
    k.endpoints[it->second.ifindex] = ep;
    for (const auto& [key0, val] : e.entries) {
      weft_policy_key key = key0;
      key.ep_id = it->second.ep_id;
      k.policy[key] = val;
    }
  }
  return k;
}

bool SameEndpoint(const EndpointDesired& a, const EndpointDesired& b) {
  if (a.identity != b.identity || a.enforce_ingress != b.enforce_ingress || a.enforce_egress != b.enforce_egress ||
      a.entries.size() != b.entries.size())
    return false;
  for (auto i = a.entries.begin(), j = b.entries.begin(); i != a.entries.end(); ++i, ++j)
    if (!PodEq(i->first, j->first) || !PodEq(i->second, j->second)) return false;
  return true;
}

}  // namespace weft::policy
