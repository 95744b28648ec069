#include "agent/policy/desired.hpp"

#include <netinet/in.h>

#include <set>

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

Result<EndpointDesired> ConvertWorkload(const std::string& name, const v1::Workload& w) {
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
  return e;
}

namespace {

IdentityName NameOf(const v1::IdentityInfo& i) {
  IdentityName n{i.id(), i.spiffe_id(), i.namespace_(), i.service_account(), {}};
  n.cidrs.assign(i.cidrs().begin(), i.cidrs().end());
  return n;
}

// An identity-cache entry's keys, refusing identity 0 for an upsert.
Result<IdentityCacheKeys> UpsertKeys(const v1::IdentityCacheEntry& e) {
  auto k = IdentityCacheKeysOf(e);
  if (!k.ok()) return k.status();
  if (e.identity() == WEFT_IDENTITY_ANY) {
    auto a = AddrOf(k->config_key.first);
    IpPrefix pfx{*a, static_cast<int>(k->config_key.second)};
    return Status::Error("identity cache entry " + pfx.ToString() + ": identity 0 (ANY) is not an identity");
  }
  return k;
}

}  // namespace

Result<PolicyDesired> PolicyState::Convert(const v1::NodeConfig& snapshot) {
  PolicyState s;
  auto c = s.ApplySnapshot(snapshot);
  if (!c.ok()) return c.status();
  return std::move(s.desired_);
}

void PolicyState::SetCacheEntry(const IdentityCacheKeys& k, std::optional<uint32_t> identity) {
  cache_undo_.Save(cache_, k.kernel_key);
  identity_undo_.Save(desired_.identity, k.kernel_key);
  auto it = cache_.find(k.kernel_key);
  if (identity) {
    if (it == cache_.end()) it = cache_.emplace(k.kernel_key, CacheEntries{}).first;
    it->second[k.config_key] = *identity;
  } else if (it != cache_.end()) {
    it->second.erase(k.config_key);
  }
  if (it == cache_.end() || it->second.empty()) {
    if (it != cache_.end()) cache_.erase(it);
    desired_.identity.erase(k.kernel_key);
    return;
  }
  desired_.identity[k.kernel_key] = weft_ipcache_val{it->second.rbegin()->second, 0};
}

Result<PolicyChange> PolicyState::ApplySnapshot(const v1::NodeConfig& snapshot) {
  PolicyState next;
  auto& d = next.desired_;
  for (const auto& w : snapshot.local_workloads()) {
    const std::string name = KeyOf(w);
    if (d.endpoints.count(name)) return Status::Error("workload " + name + " listed twice");
    auto e = ConvertWorkload(name, w);
    if (!e.ok()) return e.status();
    d.endpoints.emplace(name, std::move(*e));
  }
  std::set<std::pair<std::string, uint32_t>> seen;
  for (const auto& e : snapshot.identity_cache()) {
    auto k = UpsertKeys(e);
    if (!k.ok()) return k.status();
    if (!seen.insert(k->config_key).second)
      return Status::Error("identity cache: prefix listed twice (identity " + std::to_string(e.identity()) + ")");
    next.SetCacheEntry(*k, e.identity());
  }
  for (const auto& i : snapshot.identities())
    if (!d.identities.emplace(i.id(), NameOf(i)).second)
      return Status::Error("identity " + std::to_string(i.id()) + " listed twice");
  for (const auto& p : snapshot.policy_names())
    if (!d.policy_names.emplace(p.id(), PolicyNameInfo{p.id(), p.name(), p.action()}).second)
      return Status::Error("policy id " + std::to_string(p.id()) + " listed twice");
  next.Commit();
  // The predecessor is kept until Commit (once, however many snapshots come before it).
  if (!replaced_) {
    Revert();  // a delta not yet committed is not part of the predecessor
    replaced_.emplace(std::move(desired_), std::move(cache_));
  }
  desired_ = std::move(next.desired_);
  cache_ = std::move(next.cache_);
  return PolicyChange{};
}

Result<PolicyChange> PolicyState::ApplyDelta(const v1::NodeConfigDelta& d) {
  PolicyChange change;
  change.full = d.upserted_workloads_size() != 0 || d.removed_workloads_size() != 0 ||
                d.upserted_identities_size() != 0 || d.removed_identities_size() != 0 ||
                d.upserted_policy_names_size() != 0 || d.removed_policy_names_size() != 0;
  // Converted first, so that a refused delta changes nothing.
  // The last upsert of a key wins: only it is converted.
  std::vector<IdentityCacheKeys> removed;
  std::vector<std::pair<IdentityCacheKeys, uint32_t>> upserted;
  for (const auto& e : d.removed_identity_cache()) {
    auto k = IdentityCacheKeysOf(e);
    if (!k.ok()) return k.status().Wrap("removed");
    removed.push_back(std::move(*k));
  }
  std::map<std::pair<std::string, uint32_t>, const v1::IdentityCacheEntry*> cache_upserts;
  for (const auto& e : d.upserted_identity_cache()) cache_upserts[{e.prefix(), e.prefix_len()}] = &e;
  for (const auto& [key, e] : cache_upserts) {
    auto k = UpsertKeys(*e);
    if (!k.ok()) return k.status().Wrap("upserted");
    upserted.emplace_back(std::move(*k), e->identity());
  }
  std::map<std::string, const v1::Workload*> workload_upserts;
  for (const auto& w : d.upserted_workloads()) workload_upserts[KeyOf(w)] = &w;
  std::vector<std::pair<std::string, EndpointDesired>> workloads;
  for (const auto& [name, w] : workload_upserts) {
    auto e = ConvertWorkload(name, *w);
    if (!e.ok()) return e.status();
    workloads.emplace_back(name, std::move(*e));
  }
  // Removals, then upserts (the last upsert of a name wins).
  for (const auto& name : d.removed_workloads()) {
    endpoints_undo_.Save(desired_.endpoints, name);
    desired_.endpoints.erase(name);
  }
  for (auto& [name, e] : workloads) {
    endpoints_undo_.Save(desired_.endpoints, name);
    desired_.endpoints.insert_or_assign(name, std::move(e));
  }
  for (const auto& k : removed) {
    SetCacheEntry(k, std::nullopt);
    change.identity_keys.push_back(k.kernel_key);
  }
  for (const auto& [k, identity] : upserted) {
    SetCacheEntry(k, identity);
    change.identity_keys.push_back(k.kernel_key);
  }
  for (uint32_t id : d.removed_identities()) {
    identities_undo_.Save(desired_.identities, id);
    desired_.identities.erase(id);
  }
  for (const auto& i : d.upserted_identities()) {
    identities_undo_.Save(desired_.identities, i.id());
    desired_.identities.insert_or_assign(i.id(), NameOf(i));
  }
  for (uint32_t id : d.removed_policy_names()) {
    policy_names_undo_.Save(desired_.policy_names, id);
    desired_.policy_names.erase(id);
  }
  for (const auto& p : d.upserted_policy_names()) {
    policy_names_undo_.Save(desired_.policy_names, p.id());
    desired_.policy_names.insert_or_assign(p.id(), PolicyNameInfo{p.id(), p.name(), p.action()});
  }
  return change;
}

void PolicyState::Commit() {
  replaced_.reset();
  endpoints_undo_.Clear();
  identity_undo_.Clear();
  identities_undo_.Clear();
  policy_names_undo_.Clear();
  cache_undo_.Clear();
}

void PolicyState::Revert() {
  if (replaced_) {
    desired_ = std::move(replaced_->first);
    cache_ = std::move(replaced_->second);
    Commit();
    return;
  }
  endpoints_undo_.Revert(desired_.endpoints);
  identity_undo_.Revert(desired_.identity);
  identities_undo_.Revert(desired_.identities);
  policy_names_undo_.Revert(desired_.policy_names);
  cache_undo_.Revert(cache_);
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
      // Only the directions the endpoint enforces: the program never looks
      // up another's entries, and written before the endpoint stops
      // enforcing their direction they would decide for it (reconcile.hpp).
      if (!(key0.direction == WEFT_DIR_INGRESS ? e.enforce_ingress : e.enforce_egress)) continue;
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
