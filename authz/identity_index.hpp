// IdentityAllocator (identity.hpp), incrementally: the controller keeps one
// IdentityIndex for the whole mesh and feeds it workload and policy-CIDR
// changes; Commit() assigns numbers to new keys and says which identity-cache
// prefixes and which identities changed. After every Commit the result equals
// IdentityAllocator::Allocate(workloads, policies, known()) (same keys in use,
// same numbers, same cache), which tests/authz/identity_index_test.cc checks.
//
// Numbers are never reused: known() keeps every key ever numbered (persist it,
// Seed() it back after a restart), so a key that comes back gets its old
// number and a stale conntrack/flow record never names another identity.
//
// Cost: a workload change touches only its own keys and host prefixes
// (O(addresses x policy CIDRs)); a change of the policy CIDR set re-keys every
// workload (O(workloads x CIDRs)) and then reports only what differs.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "authz/identity.hpp"

namespace weft::authz {

// Canonical prefix, ordered as IdentityTable::cache is: IPv4 first, then by
// length, then by address.
struct PrefixKey {
  bool v6 = false;
  int len = 0;
  IpAddr addr;
  auto operator<=>(const PrefixKey&) const = default;
  static PrefixKey Of(const IpPrefix& p);
  IpPrefix prefix() const { return IpPrefix{addr, len}; }
};

class IdentityIndex {
 public:
  explicit IdentityIndex(std::string trust_domain = std::string(kDefaultTrustDomain))
      : trust_domain_(std::move(trust_domain)) {}

  // Numbers from a previous life (keys -> numbers); call before the first Commit.
  void Seed(const std::map<IdentityKey, uint32_t>& known);
  // SourceCidrs(all policies). A different set re-keys every workload.
  // Returns whether the set changed.
  bool SetCidrs(const std::vector<IpPrefix>& cidrs);
  void Upsert(const Workload& w);
  void Remove(const std::string& ns, const std::string& name);
  // Every workload and CIDR out (numbers and the last output stay, so the
  // next Commit after re-adding reports only differences).
  void RemoveAll();

  struct Changes {
    std::set<PrefixKey> cache;        // identity-cache prefixes added, changed or removed
    std::set<uint32_t> identities;    // identities that appeared or disappeared (in use)
    std::map<IdentityKey, uint32_t> numbered;  // keys numbered by this Commit (persist these)
    // Workloads (ns, name) whose address keys moved with the CIDR set (their
    // own identity may have changed).
    std::set<std::pair<std::string, std::string>> rekeyed;
    bool empty() const { return cache.empty() && identities.empty(); }
  };
  Changes Commit();

  // After Commit: the identities in use (ids, by_id; `cache` is left empty,
  // see cache()), the identity cache, and every key ever numbered.
  const IdentityTable& table() const { return table_; }
  const std::map<PrefixKey, uint32_t>& cache() const { return cache_; }
  const std::map<IdentityKey, uint32_t>& known() const { return known_; }
  uint32_t Resolve(const IpAddr& ip) const;  // longest prefix match over cache(); UNKNOWN on a miss
  // A workload's own identity: the key of its first address (the one peers
  // see), or (ns, sa) without addresses; 0 before its Commit.
  uint32_t IdentityOf(const Workload& w) const;

 private:
  struct Entry {
    std::string sa;
    std::vector<IpAddr> addresses;
  };
  using WorkloadId = std::pair<std::string, std::string>;  // (ns, name): claim order

  std::set<std::string> CidrsContaining(const IpAddr& ip) const;
  IdentityKey AddressKey(const std::string& ns, const Entry& e, const IpAddr& ip) const;
  void AddKey(const IdentityKey& k);
  void DropKey(const IdentityKey& k);
  void AddWorkload(const WorkloadId& id, const Entry& e);
  void RemoveWorkload(const WorkloadId& id, const Entry& e);
  void AddCidrs();
  void RemoveCidrs();
  uint32_t Number(const IdentityKey& k);

  std::string trust_domain_;
  std::vector<IpPrefix> cidrs_;
  std::map<WorkloadId, Entry> workloads_;
  std::map<IdentityKey, uint32_t> refs_;                  // keys in use -> references
  std::map<PrefixKey, std::set<WorkloadId>> claims_;      // host prefix -> workloads with that address
  std::map<PrefixKey, IdentityKey> cidr_keys_;            // policy CIDR -> its CIDR-only key
  std::set<PrefixKey> dirty_prefixes_;
  std::set<IdentityKey> dirty_keys_;
  std::set<WorkloadId> rekeyed_;

  std::map<IdentityKey, uint32_t> known_;
  uint32_t next_ = 0;  // 0: not yet computed
  IdentityTable table_;
  std::map<PrefixKey, uint32_t> cache_;
};

}  // namespace weft::authz
