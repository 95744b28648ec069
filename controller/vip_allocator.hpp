// Service VIP allocation, as the Kubernetes API server does it: a Service
// without spec.clusterIP gets one from the service CIDR (and an IPv6 one from
// the v6 CIDR when it is dual-stack or IPv6), written into spec.clusterIP /
// spec.clusterIPs / spec.ipFamilies of the stored object.
//
// A clusterIP the user gives must lie in the service CIDR of its family (as
// kube-apiserver refuses one outside it): agents refuse VIPs outside their
// ranges. ServiceEntry addresses (resolution STATIC, single IPs: the ones the
// compiler turns into VIPs) must lie in the ServiceEntry CIDRs, by default
// Istio's auto-allocation ranges 240.240.0.0/16 and 2001:2::/48, which never
// overlap the service CIDRs (so they never collide with an allocated VIP).
//
// Pure and deterministic: the allocator has no state of its own; the set of
// used VIPs is derived from the stored Services (VipIndex), so allocation is
// as durable as the store. The lowest free address of the CIDR is taken
// (the network address, and for IPv4 the broadcast address, are never used).
#pragma once

#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "config/resource.hpp"
#include "weft/ip.hpp"
#include "weft/status.hpp"

namespace weft::controller {

// Every VIP in use -> the Service that holds it.
using VipIndex = std::map<IpAddr, config::ResourceKey>;

// Adds (or, with remove = true, removes) the VIPs of a stored Service object.
void IndexServiceVips(const config::Resource& svc, VipIndex& index, bool remove = false);

class VipAllocator {
 public:
  static Result<VipAllocator> Create(const std::string& cidr_v4, const std::string& cidr_v6,
                                     const std::string& se_cidr_v4 = "240.240.0.0/16",
                                     const std::string& se_cidr_v6 = "2001:2::/48");

  // Fills the VIPs of `svc` (a Service object): keeps the ones the user gave,
  // else those of `prior` (the stored object of the same key, if any) for the
  // same family, else allocates. `index` must not contain svc's own VIPs; the
  // VIPs of svc are added to it on success. Errors (Status::err()):
  // EEXIST a VIP held by another Service (names both), ENOSPC the CIDR is
  // full, EINVAL a malformed clusterIP or ipFamilies, or one outside the
  // service CIDR. A ServiceEntry is only checked (its addresses in the
  // ServiceEntry CIDRs, EINVAL otherwise); anything else is left alone.
  Status Assign(config::Resource& svc, const config::Resource* prior, VipIndex& index) const;

  const IpPrefix& v4() const { return v4_; }
  const IpPrefix& v6() const { return v6_; }
  const IpPrefix& se_v4() const { return se_v4_; }
  const IpPrefix& se_v6() const { return se_v6_; }

 private:
  Result<IpAddr> Allocate(const IpPrefix& cidr, const config::ResourceKey& key, const VipIndex& index) const;
  Status CheckServiceEntry(const config::Resource& se) const;
  IpPrefix v4_, v6_, se_v4_, se_v6_;
};

}  // namespace weft::controller
