#include "authz/identity.hpp"

#include <algorithm>
#include <tuple>

#include "weft/bpf_abi.h"

namespace weft::authz {
namespace {

std::set<std::string> CidrsContaining(const std::vector<IpPrefix>& cidrs, const IpAddr& ip) {
  std::set<std::string> out;
  for (const auto& c : cidrs) {
    if (c.Contains(ip)) out.insert(CanonicalCidr(c));
  }
  return out;
}

// Policy CIDRs that contain prefix p (p itself included).
std::set<std::string> CidrsCovering(const std::vector<IpPrefix>& cidrs, const IpPrefix& p) {
  std::set<std::string> out;
  for (const auto& c : cidrs) {
    if (c.addr.is_v4() == p.addr.is_v4() && c.len <= p.len && c.Contains(p.addr)) out.insert(CanonicalCidr(c));
  }
  return out;
}

bool PrefixLess(const IpPrefix& a, const IpPrefix& b) {
  return std::make_tuple(!a.addr.is_v4(), a.len, a.addr) < std::make_tuple(!b.addr.is_v4(), b.len, b.addr);
}

}  // namespace

std::string IdentityKey::ToString() const {
  std::string s = cidr_only() ? "cidr" : ns + "/" + sa;
  if (!cidrs.empty() || cidr_only()) {
    s += "[";
    bool first = true;
    for (const auto& c : cidrs) {
      s += (first ? "" : ",") + c;
      first = false;
    }
    s += "]";
  }
  return s;
}

IdentityInfo IdentityInfo::Of(uint32_t id, const IdentityKey& k, std::string_view trust_domain) {
  IdentityInfo info;
  info.id = id;
  info.ns = k.ns;
  info.sa = k.sa;
  info.cidrs = k.cidrs;
  if (!k.cidr_only()) info.spiffe_id = SpiffeId(trust_domain, k.ns, k.sa);
  return info;
}

Peer IdentityInfo::AsPeer() const {
  Peer p;
  if (!spiffe_id.empty()) {
    p.spiffe_id = spiffe_id;
    p.ns = ns;
  }
  p.cidrs = cidrs;
  return p;
}

uint32_t IdentityTable::Resolve(const IpAddr& ip) const {
  const IdentityCacheEntry* best = nullptr;
  for (const auto& e : cache) {
    if (e.prefix.Contains(ip) && (!best || e.prefix.len > best->prefix.len)) best = &e;
  }
  return best ? best->identity : static_cast<uint32_t>(WEFT_IDENTITY_UNKNOWN);
}

const IdentityInfo* IdentityTable::Find(uint32_t id) const {
  auto it = by_id.find(id);
  return it == by_id.end() ? nullptr : &it->second;
}

IdentityTable IdentityAllocator::Allocate(const std::vector<Workload>& workloads,
                                          const std::vector<Policy>& policies,
                                          const std::map<IdentityKey, uint32_t>& previous) const {
  const std::vector<IpPrefix> cidrs = SourceCidrs(policies);

  // Keys in use, and which prefix maps to which key.
  std::set<IdentityKey> keys;
  std::map<std::string, std::pair<IpPrefix, IdentityKey>> prefix_key;  // canonical prefix -> key
  for (const auto& c : cidrs) {
    IdentityKey k{"", "", CidrsCovering(cidrs, c)};
    keys.insert(k);
    prefix_key.insert_or_assign(CanonicalCidr(c), std::make_pair(c, k));
  }
  // Workloads after CIDRs: a workload's host entry replaces an equal policy prefix.
  std::vector<const Workload*> sorted;
  for (const auto& w : workloads) sorted.push_back(&w);
  std::sort(sorted.begin(), sorted.end(), [](const Workload* a, const Workload* b) {
    return std::tie(a->ns, a->name) < std::tie(b->ns, b->name);
  });
  for (const Workload* w : sorted) {
    keys.insert(IdentityKey{w->ns, w->sa(), {}});
    for (const auto& ip : w->addresses) {
      IdentityKey k{w->ns, w->sa(), CidrsContaining(cidrs, ip)};
      keys.insert(k);
      IpPrefix host{ip, ip.is_v4() ? 32 : 128};
      auto canon = CanonicalCidr(host);
      auto it = prefix_key.find(canon);
      // Two workloads claiming one address: the first by ns/name keeps it.
      if (it != prefix_key.end() && !it->second.second.cidr_only()) continue;
      prefix_key.insert_or_assign(canon, std::make_pair(host, k));
    }
  }

  IdentityTable t;
  uint32_t next = WEFT_IDENTITY_FIRST_DYNAMIC;
  for (const auto& [k, id] : previous) next = std::max(next, id + 1);
  for (const auto& k : keys) {
    auto it = previous.find(k);
    if (it != previous.end() && it->second >= WEFT_IDENTITY_FIRST_DYNAMIC) t.ids[k] = it->second;
  }
  for (const auto& k : keys) {
    if (!t.ids.contains(k)) t.ids[k] = next++;
  }
  for (const auto& [k, id] : t.ids) {
    t.by_id[id] = IdentityInfo::Of(id, k, trust_domain_);
  }
  for (const auto& [canon, pk] : prefix_key) {
    t.cache.push_back(IdentityCacheEntry{Canonical(pk.first), t.ids.at(pk.second)});
  }
  std::sort(t.cache.begin(), t.cache.end(),
            [](const IdentityCacheEntry& a, const IdentityCacheEntry& b) { return PrefixLess(a.prefix, b.prefix); });
  return t;
}

}  // namespace weft::authz
