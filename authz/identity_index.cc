#include "authz/identity_index.hpp"

#include <algorithm>

#include "weft/bpf_abi.h"

namespace weft::authz {

PrefixKey PrefixKey::Of(const IpPrefix& p) {
  IpPrefix c = Canonical(p);
  return PrefixKey{!c.addr.is_v4(), c.len, c.addr};
}

void IdentityIndex::Seed(const std::map<IdentityKey, uint32_t>& known) {
  for (const auto& [k, id] : known) {
    if (id >= WEFT_IDENTITY_FIRST_DYNAMIC) known_[k] = id;
  }
  next_ = 0;
}

std::set<std::string> IdentityIndex::CidrsContaining(const IpAddr& ip) const {
  std::set<std::string> out;
  for (const auto& c : cidrs_) {
    if (c.Contains(ip)) out.insert(CanonicalCidr(c));
  }
  return out;
}

IdentityKey IdentityIndex::AddressKey(const std::string& ns, const Entry& e, const IpAddr& ip) const {
  return IdentityKey{ns, e.sa, CidrsContaining(ip)};
}

void IdentityIndex::AddKey(const IdentityKey& k) {
  if (++refs_[k] == 1) dirty_keys_.insert(k);
}

void IdentityIndex::DropKey(const IdentityKey& k) {
  auto it = refs_.find(k);
  if (it == refs_.end()) return;
  if (--it->second == 0) {
    refs_.erase(it);
    dirty_keys_.insert(k);
  }
}

void IdentityIndex::AddWorkload(const WorkloadId& id, const Entry& e) {
  AddKey(IdentityKey{id.first, e.sa, {}});
  for (const auto& ip : e.addresses) {
    AddKey(AddressKey(id.first, e, ip));
    PrefixKey pk = PrefixKey::Of(IpPrefix{ip, ip.is_v4() ? 32 : 128});
    claims_[pk].insert(id);
    dirty_prefixes_.insert(pk);
  }
}

void IdentityIndex::RemoveWorkload(const WorkloadId& id, const Entry& e) {
  DropKey(IdentityKey{id.first, e.sa, {}});
  for (const auto& ip : e.addresses) {
    DropKey(AddressKey(id.first, e, ip));
    PrefixKey pk = PrefixKey::Of(IpPrefix{ip, ip.is_v4() ? 32 : 128});
    if (auto it = claims_.find(pk); it != claims_.end()) {
      it->second.erase(id);
      if (it->second.empty()) claims_.erase(it);
    }
    dirty_prefixes_.insert(pk);
  }
}

void IdentityIndex::AddCidrs() {
  for (const auto& c : cidrs_) {
    std::set<std::string> covering;
    for (const auto& o : cidrs_) {
      if (o.addr.is_v4() == c.addr.is_v4() && o.len <= c.len && o.Contains(c.addr)) covering.insert(CanonicalCidr(o));
    }
    IdentityKey k{"", "", std::move(covering)};
    AddKey(k);
    PrefixKey pk = PrefixKey::Of(c);
    cidr_keys_[pk] = std::move(k);
    dirty_prefixes_.insert(pk);
  }
}

void IdentityIndex::RemoveCidrs() {
  for (const auto& [pk, k] : cidr_keys_) {
    DropKey(k);
    dirty_prefixes_.insert(pk);
  }
  cidr_keys_.clear();
}

bool IdentityIndex::SetCidrs(const std::vector<IpPrefix>& cidrs) {
  std::vector<IpPrefix> canon;
  for (const auto& c : cidrs) canon.push_back(Canonical(c));
  std::sort(canon.begin(), canon.end(), [](const IpPrefix& a, const IpPrefix& b) {
    return PrefixKey::Of(a) < PrefixKey::Of(b);
  });
  canon.erase(std::unique(canon.begin(), canon.end(),
                          [](const IpPrefix& a, const IpPrefix& b) { return PrefixKey::Of(a) == PrefixKey::Of(b); }),
              canon.end());
  auto same = [](const std::vector<IpPrefix>& a, const std::vector<IpPrefix>& b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                      [](const IpPrefix& x, const IpPrefix& y) { return PrefixKey::Of(x) == PrefixKey::Of(y); });
  };
  if (same(canon, cidrs_)) return false;
  // A workload's keys change iff one of its addresses is in a CIDR that came or went.
  std::vector<IpPrefix> moved;
  auto less = [](const IpPrefix& a, const IpPrefix& b) { return PrefixKey::Of(a) < PrefixKey::Of(b); };
  std::set_symmetric_difference(cidrs_.begin(), cidrs_.end(), canon.begin(), canon.end(), std::back_inserter(moved),
                                less);
  for (const auto& [id, e] : workloads_) {
    bool hit = std::any_of(e.addresses.begin(), e.addresses.end(), [&](const IpAddr& ip) {
      return std::any_of(moved.begin(), moved.end(), [&](const IpPrefix& c) { return c.Contains(ip); });
    });
    if (hit) rekeyed_.insert(id);
  }
  // Every workload's address keys depend on the CIDR set: take them all out
  // under the old set and put them back under the new one.
  RemoveCidrs();
  for (const auto& [id, e] : workloads_) RemoveWorkload(id, e);
  cidrs_ = std::move(canon);
  AddCidrs();
  for (const auto& [id, e] : workloads_) AddWorkload(id, e);
  return true;
}

void IdentityIndex::RemoveAll() {
  for (const auto& [id, e] : workloads_) RemoveWorkload(id, e);
  workloads_.clear();
  RemoveCidrs();
  cidrs_.clear();
}

uint32_t IdentityIndex::IdentityOf(const Workload& w) const {
  IdentityKey k{w.ns, w.sa(), {}};
  if (!w.addresses.empty()) k.cidrs = CidrsContaining(w.addresses.front());
  auto it = table_.ids.find(k);
  return it == table_.ids.end() ? 0 : it->second;
}

void IdentityIndex::Upsert(const Workload& w) {
  WorkloadId id{w.ns, w.name};
  Entry e{w.sa(), w.addresses};
  auto it = workloads_.find(id);
  if (it != workloads_.end()) {
    if (it->second.sa == e.sa && it->second.addresses == e.addresses) return;  // labels do not matter here
    RemoveWorkload(id, it->second);
    it->second = std::move(e);
    AddWorkload(id, it->second);
    return;
  }
  AddWorkload(id, workloads_.emplace(id, std::move(e)).first->second);
}

void IdentityIndex::Remove(const std::string& ns, const std::string& name) {
  auto it = workloads_.find(WorkloadId{ns, name});
  if (it == workloads_.end()) return;
  rekeyed_.erase(it->first);
  RemoveWorkload(it->first, it->second);
  workloads_.erase(it);
}

uint32_t IdentityIndex::Number(const IdentityKey& k) {
  if (auto it = known_.find(k); it != known_.end()) return it->second;
  if (next_ == 0) {
    next_ = WEFT_IDENTITY_FIRST_DYNAMIC;
    for (const auto& [key, id] : known_) next_ = std::max(next_, id + 1);
  }
  uint32_t id = next_++;
  known_.emplace(k, id);
  return id;
}

IdentityIndex::Changes IdentityIndex::Commit() {
  Changes out;
  // Identities: dirty_keys_ is in key order, so new keys are numbered in key order (as Allocate does).
  for (const auto& k : dirty_keys_) {
    bool in_use = refs_.contains(k);
    auto it = table_.ids.find(k);
    if (in_use && it == table_.ids.end()) {
      bool fresh = !known_.contains(k);
      uint32_t id = Number(k);
      if (fresh) out.numbered.emplace(k, id);
      table_.ids.emplace(k, id);
      table_.by_id[id] = IdentityInfo::Of(id, k, trust_domain_);
      out.identities.insert(id);
    } else if (!in_use && it != table_.ids.end()) {
      table_.by_id.erase(it->second);
      out.identities.insert(it->second);
      table_.ids.erase(it);
    }
  }
  dirty_keys_.clear();
  // Cache: the host entry of the first workload (by ns/name) with that
  // address, else the policy CIDR's own entry.
  for (const auto& pk : dirty_prefixes_) {
    uint32_t id = 0;
    if (auto c = claims_.find(pk); c != claims_.end()) {
      const WorkloadId& winner = *c->second.begin();
      id = table_.ids.at(AddressKey(winner.first, workloads_.at(winner), pk.addr));
    } else if (auto k = cidr_keys_.find(pk); k != cidr_keys_.end()) {
      id = table_.ids.at(k->second);
    }
    auto it = cache_.find(pk);
    if (id == 0) {
      if (it != cache_.end()) {
        cache_.erase(it);
        out.cache.insert(pk);
      }
    } else if (it == cache_.end() || it->second != id) {
      cache_[pk] = id;
      out.cache.insert(pk);
    }
  }
  dirty_prefixes_.clear();
  out.rekeyed = std::move(rekeyed_);
  rekeyed_.clear();
  return out;
}

uint32_t IdentityIndex::Resolve(const IpAddr& ip) const {
  for (int len = ip.is_v4() ? 32 : 128; len >= 0; --len) {
    if (auto it = cache_.find(PrefixKey::Of(IpPrefix{ip, len})); it != cache_.end()) return it->second;
  }
  return WEFT_IDENTITY_UNKNOWN;
}

}  // namespace weft::authz
