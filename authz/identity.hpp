// Numeric identities for the kernel's identity cache (weft_identity, LPM:
// prefix -> identity) and the identity table the lowering reads.
//
// Cilium-style: an identity is (namespace, service account, CIDR set), where
// the CIDR set is every policy source CIDR (policy.hpp SourceCidrs: ipBlocks,
// notIpBlocks, `when` source.ip) that contains the address.
//  - A workload address gets the identity (ns, sa, CIDRs containing it): one
//    host-prefix entry (/32, /128) per address.
//  - A policy CIDR P gets a CIDR-only identity ("", "", CIDRs containing P)
//    and the entry P -> it. Policy CIDRs containing one address form a chain,
//    so the longest match P gives exactly the CIDRs containing the address.
//    A workload address equal to P wins (the host entry is the workload's).
//  - Every other address misses: WEFT_IDENTITY_UNKNOWN.
// Numbers: >= WEFT_IDENTITY_FIRST_DYNAMIC, a key keeps its number from
// `previous` (durable across restarts when the caller persists `ids`); new keys
// get, in key order, numbers above every number in `previous` and in use, so a
// number never moves to another key within one Allocate. Deterministic.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "authz/policy.hpp"
#include "weft/ip.hpp"

namespace weft::authz {

struct IdentityKey {
  std::string ns;              // "" for a CIDR-only identity
  std::string sa;              // "" for a CIDR-only identity
  std::set<std::string> cidrs; // canonical CIDRs (CanonicalCidr)
  auto operator<=>(const IdentityKey&) const = default;
  bool cidr_only() const { return ns.empty(); }
  std::string ToString() const;  // "default/bookinfo-reviews[10.0.0.0/8]", "cidr[10.0.0.0/8]"
};

struct IdentityInfo {
  uint32_t id = 0;
  std::string spiffe_id;  // "" for CIDR-only identities
  std::string ns;
  std::string sa;
  std::set<std::string> cidrs;
  // The evaluator's view of any address that has this identity.
  Peer AsPeer() const;
  // Identity `id` of key `k` (a SPIFFE id unless CIDR-only).
  static IdentityInfo Of(uint32_t id, const IdentityKey& k, std::string_view trust_domain);
};

struct IdentityCacheEntry {
  IpPrefix prefix;  // canonical
  uint32_t identity = 0;
  // weft_ipcache_key.prefixlen: bits of the 16-byte v4-mapped address.
  uint32_t AbiPrefixLen() const { return prefix.addr.is_v4() ? 96u + prefix.len : prefix.len; }
};

struct IdentityTable {
  std::map<IdentityKey, uint32_t> ids;      // persist this; feed it back as `previous`
  std::map<uint32_t, IdentityInfo> by_id;
  std::vector<IdentityCacheEntry> cache;    // sorted by (family, prefix length, address)
  // Longest-prefix match over `cache`, as the kernel does; WEFT_IDENTITY_UNKNOWN on a miss.
  uint32_t Resolve(const IpAddr& ip) const;
  const IdentityInfo* Find(uint32_t id) const;
};

class IdentityAllocator {
 public:
  explicit IdentityAllocator(std::string trust_domain = std::string(kDefaultTrustDomain))
      : trust_domain_(std::move(trust_domain)) {}
  IdentityTable Allocate(const std::vector<Workload>& workloads, const std::vector<Policy>& policies,
                         const std::map<IdentityKey, uint32_t>& previous = {}) const;

 private:
  std::string trust_domain_;
};

}  // namespace weft::authz
