#include "controller/vip_allocator.hpp"

#include <cerrno>
#include <vector>

namespace weft::controller {
namespace {

using nlohmann::json;

enum class Family { kV4, kV6 };
const char* FamilyName(Family f) { return f == Family::kV4 ? "IPv4" : "IPv6"; }

std::string Owner(const config::ResourceKey& k) { return "Service " + k.ns + "/" + k.name; }

// The VIP strings of a stored Service: spec.clusterIPs, else spec.clusterIP.
std::vector<std::string> VipStrings(const json& obj) {
  std::vector<std::string> out;
  auto spec = obj.find("spec");
  if (spec == obj.end() || !spec->is_object()) return out;
  if (auto ips = spec->find("clusterIPs"); ips != spec->end() && ips->is_array()) {
    for (const auto& ip : *ips)
      if (ip.is_string()) out.push_back(ip.get<std::string>());
  }
  if (out.empty())
    if (auto ip = spec->find("clusterIP"); ip != spec->end() && ip->is_string()) out.push_back(ip->get<std::string>());
  return out;
}

// The low 64 bits of an address as an integer, and back.
uint64_t Low64(const IpAddr& a) {
  uint64_t v = 0;
  for (int i = 8; i < 16; ++i) v = (v << 8) | a.bytes()[i];
  return v;
}
IpAddr WithLow64(const IpAddr& base, uint64_t v) {
  uint8_t b[16];
  base.CopyTo(b);
  for (int i = 15; i >= 8; --i) {
    b[i] = static_cast<uint8_t>(v & 0xff);
    v >>= 8;
  }
  return IpAddr::FromBytes(b);
}

}  // namespace

void IndexServiceVips(const config::Resource& svc, VipIndex& index, bool remove) {
  if (svc.key.kind != "Service") return;
  for (const auto& s : VipStrings(svc.object)) {
    auto ip = IpAddr::Parse(s);
    if (!ip) continue;  // "None" (headless) or garbage: holds nothing
    if (remove) {
      auto it = index.find(*ip);
      if (it != index.end() && it->second == svc.key) index.erase(it);
    } else {
      index.emplace(*ip, svc.key);
    }
  }
}

namespace {
bool Overlap(const IpPrefix& a, const IpPrefix& b) {
  return a.addr.is_v4() == b.addr.is_v4() && (a.Contains(b.addr) || b.Contains(a.addr));
}
}  // namespace

Result<VipAllocator> VipAllocator::Create(const std::string& cidr_v4, const std::string& cidr_v6,
                                          const std::string& se_cidr_v4, const std::string& se_cidr_v6) {
  VipAllocator a;
  auto se4 = IpPrefix::Parse(se_cidr_v4);
  if (!se4 || !se4->addr.is_v4())
    return Status::Error("--service-entry-cidr \"" + se_cidr_v4 + "\": expected an IPv4 CIDR", EINVAL);
  auto se6 = IpPrefix::Parse(se_cidr_v6);
  if (!se6 || se6->addr.is_v4())
    return Status::Error("--service-entry-cidr-v6 \"" + se_cidr_v6 + "\": expected an IPv6 CIDR", EINVAL);
  a.se_v4_ = *se4;
  a.se_v6_ = *se6;
  auto v4 = IpPrefix::Parse(cidr_v4);
  if (!v4 || !v4->addr.is_v4() || v4->len > 30)
    return Status::Error("--service-cidr \"" + cidr_v4 + "\": expected an IPv4 CIDR of at most /30", EINVAL);
  auto v6 = IpPrefix::Parse(cidr_v6);
  if (!v6 || v6->addr.is_v4() || v6->len > 126 || v6->len < 64)
    return Status::Error("--service-cidr-v6 \"" + cidr_v6 + "\": expected an IPv6 CIDR between /64 and /126", EINVAL);
  a.v4_ = *v4;
  a.v6_ = *v6;
  if (Overlap(a.v4_, a.se_v4_) || Overlap(a.v6_, a.se_v6_))
    return Status::Error("the ServiceEntry CIDRs (" + a.se_v4_.ToString() + ", " + a.se_v6_.ToString() +
                             ") overlap the service CIDRs (" + a.v4_.ToString() + ", " + a.v6_.ToString() + ")",
                         EINVAL);
  return a;
}

Status VipAllocator::CheckServiceEntry(const config::Resource& se) const {
  const json& obj = se.object;
  auto spec = obj.find("spec");
  if (spec == obj.end() || !spec->is_object() || spec->value("resolution", "") != "STATIC") return Status::Ok();
  auto addrs = spec->find("addresses");
  if (addrs == spec->end() || !addrs->is_array()) return Status::Ok();
  for (size_t i = 0; i < addrs->size(); ++i) {
    const json& a = (*addrs)[i];
    if (!a.is_string()) continue;
    auto ip = IpAddr::Parse(a.get<std::string>());
    if (!ip) continue;  // a CIDR: the compiler makes no VIP of it
    const IpPrefix& range = ip->is_v4() ? se_v4_ : se_v6_;
    if (!range.Contains(*ip))
      return Status::Error("ServiceEntry " + se.key.ns + "/" + se.key.name + ": spec.addresses[" + std::to_string(i) +
                               "]: " + ip->ToString() + " is outside the ServiceEntry CIDR " + range.ToString() +
                               " (--service-entry-cidr" + (ip->is_v4() ? "" : "-v6") +
                               "): Weft load-balances a ServiceEntry address as a VIP, and agents refuse VIPs "
                               "outside their ranges. Use an address in " + range.ToString() +
                               " (as Istio's auto-allocation does), or a CIDR (no VIP)",
                           EINVAL);
  }
  return Status::Ok();
}

Result<IpAddr> VipAllocator::Allocate(const IpPrefix& cidr, const config::ResourceKey& key,
                                      const VipIndex& index) const {
  const int host_bits = (cidr.addr.is_v4() ? 32 : 128) - cidr.len;
  const uint64_t size = host_bits >= 63 ? (uint64_t{1} << 63) : (uint64_t{1} << host_bits);
  const uint64_t base = Low64(cidr.addr) & ~(size - 1);
  // Usable: base+1 .. base+size-1 (IPv4 also skips the broadcast address).
  const uint64_t first = base + 1;
  const uint64_t last = base + size - (cidr.addr.is_v4() ? 2 : 1);
  uint64_t want = first;
  for (auto it = index.lower_bound(WithLow64(cidr.addr, first)); it != index.end() && want <= last; ++it) {
    if (!cidr.Contains(it->first) || it->first.is_v4() != cidr.addr.is_v4()) break;
    uint64_t used = Low64(it->first);
    if (used > want) break;  // a gap at `want`
    if (used == want) ++want;
  }
  if (want > last)
    return Status::Error("allocate a clusterIP for " + Owner(key) + ": service CIDR " + cidr.ToString() +
                             " is exhausted",
                         ENOSPC);
  return WithLow64(cidr.addr, want);
}

Status VipAllocator::Assign(config::Resource& svc, const config::Resource* prior, VipIndex& index) const {
  if (svc.key.kind == "ServiceEntry") return CheckServiceEntry(svc);
  if (svc.key.kind != "Service") return Status::Ok();
  json& obj = svc.object;
  if (!obj.contains("spec") || !obj["spec"].is_object()) obj["spec"] = json::object();
  json& spec = obj["spec"];
  const std::string where = Owner(svc.key);
  if (spec.value("type", "") == "ExternalName") return Status::Ok();
  std::string cluster_ip = spec.contains("clusterIP") && spec["clusterIP"].is_string() ? spec["clusterIP"].get<std::string>() : "";
  if (cluster_ip == "None") return Status::Ok();  // headless

  // The user's VIPs, in order.
  std::vector<IpAddr> given;
  for (const auto& s : VipStrings(obj)) {
    if (s.empty()) continue;
    auto ip = IpAddr::Parse(s);
    if (!ip) return Status::Error(where + ": spec.clusterIP: \"" + s + "\" is not an IP address", EINVAL);
    given.push_back(*ip);
  }
  // The families: ipFamilies, else those of the given VIPs, else IPv4;
  // completed to both by a dual-stack policy.
  std::vector<Family> families;
  if (auto f = spec.find("ipFamilies"); f != spec.end() && f->is_array() && !f->empty()) {
    for (const auto& x : *f) {
      std::string n = x.is_string() ? x.get<std::string>() : "";
      if (n == "IPv4") families.push_back(Family::kV4);
      else if (n == "IPv6") families.push_back(Family::kV6);
      else return Status::Error(where + ": spec.ipFamilies: \"" + n + "\" is not IPv4 or IPv6", EINVAL);
    }
  } else if (!given.empty()) {
    for (const auto& ip : given) families.push_back(ip.is_v4() ? Family::kV4 : Family::kV6);
  } else {
    families.push_back(Family::kV4);
  }
  const std::string policy = spec.value("ipFamilyPolicy", "SingleStack");
  if ((policy == "PreferDualStack" || policy == "RequireDualStack") && families.size() == 1)
    families.push_back(families[0] == Family::kV4 ? Family::kV6 : Family::kV4);
  if (families.size() > 2 || (families.size() == 2 && families[0] == families[1]))
    return Status::Error(where + ": spec.ipFamilies: at most one IPv4 and one IPv6", EINVAL);
  if (given.size() > families.size())
    return Status::Error(where + ": spec.clusterIPs: more addresses than ipFamilies", EINVAL);

  std::vector<IpAddr> prior_ips;
  if (prior)
    for (const auto& s : VipStrings(prior->object))
      if (auto ip = IpAddr::Parse(s)) prior_ips.push_back(*ip);

  std::vector<IpAddr> vips;
  // Families are distinct, so this Service's own VIPs never collide with each
  // other; `index` is only written once every family succeeded.
  for (size_t i = 0; i < families.size(); ++i) {
    const Family fam = families[i];
    const bool v4 = fam == Family::kV4;
    if (i < given.size()) {
      const IpAddr& ip = given[i];
      if (ip.is_v4() != v4)
        return Status::Error(where + ": spec.clusterIPs[" + std::to_string(i) + "]: " + ip.ToString() +
                                 " is not " + FamilyName(fam) + " as spec.ipFamilies says",
                             EINVAL);
      const IpPrefix& cidr = v4 ? v4_ : v6_;
      if (!cidr.Contains(ip))
        return Status::Error(where + ": spec.clusterIPs[" + std::to_string(i) + "]: " + ip.ToString() +
                                 " is not in the service CIDR " + cidr.ToString() + " (--service-cidr" +
                                 (v4 ? "" : "-v6") + "); agents refuse VIPs outside it",
                             EINVAL);
      if (auto it = index.find(ip); it != index.end() && it->second != svc.key)
        return Status::Error("spec.clusterIP " + ip.ToString() + " of " + where + " is already allocated to " +
                                 Owner(it->second),
                             EEXIST);
      vips.push_back(ip);
    } else {
      std::optional<IpAddr> keep;
      for (const auto& ip : prior_ips) {
        if (ip.is_v4() != v4) continue;
        auto it = index.find(ip);
        if (it == index.end() || it->second == svc.key) keep = ip;
        break;
      }
      if (!keep) {
        auto r = Allocate(v4 ? v4_ : v6_, svc.key, index);
        if (!r.ok()) return r.status();
        keep = *r;
      }
      vips.push_back(*keep);
    }
  }
  json ips = json::array(), fams = json::array();
  for (size_t i = 0; i < vips.size(); ++i) {
    ips.push_back(vips[i].ToString());
    fams.push_back(FamilyName(families[i]));
  }
  spec["clusterIP"] = ips[0];
  spec["clusterIPs"] = ips;
  spec["ipFamilies"] = fams;
  for (const auto& ip : vips) index[ip] = svc.key;
  return Status::Ok();
}

}  // namespace weft::controller
