// One address, one workload: the admission check that refuses a
// WorkloadEntry whose spec.address another WorkloadEntry (a VM, or a pod the
// lab registers) already holds. The kernel's identity cache maps an address to
// one identity, so a second claimant would otherwise take the first one's
// identity (or lose its own), decided silently by name order
// (authz::IdentityAllocator).
//
// The index mirrors the store's WorkloadEntries: Load once from the store,
// then Update after every write. Thread-safe (its own mutex); the Admin
// service serializes Check + write + Update under its write lock.
#pragma once

#include <map>
#include <mutex>
#include <set>
#include <vector>

#include "config/resource.hpp"
#include "controller/store.hpp"
#include "weft/ip.hpp"
#include "weft/status.hpp"

namespace weft::controller {

class WorkloadAddresses {
 public:
  // Replaces the index with the addresses of `entries` (WorkloadEntry objects).
  // Duplicates already stored (from before this check) keep the first by key.
  void Load(const std::vector<config::Resource>& entries);
  bool loaded() const;

  // EINVAL naming both workloads for every WorkloadEntry of `applied` whose
  // address another workload holds: one stored under another key (a key that
  // `applied` re-applies gives its old address up) or one earlier in `applied`.
  // "<file>:<line>:<col>: WorkloadEntry ns/b: spec.address: address 10.1.0.5
  //  is already the address of WorkloadEntry ns/a: ...", one line each.
  Status Check(const std::vector<config::Resource>& applied) const;

  // After a write: the upserted entries' addresses, the deleted keys' gone.
  void Update(const WriteResult& write);

 private:
  void Remove(const config::ResourceKey& key);   // mu_ held
  void Insert(const config::Resource& entry);    // mu_ held

  mutable std::mutex mu_;
  bool loaded_ = false;
  std::map<IpAddr, std::set<config::ResourceKey>> owners_;  // more than one only if stored before this check
  std::map<config::ResourceKey, IpAddr> address_of_;
};

}  // namespace weft::controller
