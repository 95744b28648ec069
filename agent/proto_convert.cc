#include "agent/proto_convert.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <limits>
#include <utility>

#include "weft/ip.hpp"

namespace weft::agent {
namespace {

// 4 bytes (IPv4, network order) or 16 (IPv6) -> IpAddr; nullopt otherwise.
std::optional<IpAddr> AddrFromBytes(const std::string& b) {
  if (b.size() == 4) {
    uint32_t v4 = 0;
    std::memcpy(&v4, b.data(), 4);
    return IpAddr::FromV4(v4);
  }
  if (b.size() == 16) return IpAddr::FromBytes(reinterpret_cast<const uint8_t*>(b.data()));
  return std::nullopt;
}

std::string PortLabel(const v1::ServicePort& p) { return p.name().empty() ? std::to_string(p.port()) : p.name(); }

std::string Where(const std::string& svc, const v1::ServicePort& p) {
  return "service " + svc + " port " + PortLabel(p);
}

std::string Endpoint(const weft_svc_key& key) {
  IpAddr vip = IpAddr::FromBytes(key.addr);
  std::string host = vip.is_v4() ? vip.ToString() : "[" + vip.ToString() + "]";
  return host + ":" + std::to_string(ntohs(key.port)) + "/" + (key.proto == IPPROTO_UDP ? "UDP" : "TCP");
}

Result<lb::ServiceEntry> ConvertPort(const std::string& svc, const v1::ServicePort& p, const IpAddr& vip) {
  lb::ServiceEntry e;
  e.name = svc + ":" + PortLabel(p);
  switch (p.algorithm()) {
    case v1::LB_RANDOM:
      e.algo = WEFT_LB_RANDOM;
      break;
    case v1::LB_MAGLEV:
      e.algo = WEFT_LB_MAGLEV;
      break;
    default:
      return Status::Error(Where(svc, p) + ": unknown LB algorithm " + std::to_string(p.algorithm()), EINVAL);
  }
  if (p.maglev_table_size() != 0) {
    if (p.maglev_table_size() > WEFT_MAGLEV_MAX_SIZE)
      return Status::Error(Where(svc, p) + ": Maglev table size " + std::to_string(p.maglev_table_size()) +
                               " exceeds " + std::to_string(WEFT_MAGLEV_MAX_SIZE),
                           EINVAL);
    e.maglev_table_size = static_cast<uint16_t>(p.maglev_table_size());
  }
  // needs_l7: WEFT_SVC_F_STEER_PROXY stays clear until the node proxy exists
  // (see the header); the service keeps kernel L4 load balancing.
  e.flags = 0;

  std::map<std::pair<IpAddr, uint16_t>, uint64_t> weights;  // sorted by (addr, port), as Compile does
  for (int i = 0; i < p.backends_size(); ++i) {
    const v1::Backend& b = p.backends(i);
    std::string which = Where(svc, p) + " backend #" + std::to_string(i) +
                        (b.workload().empty() ? "" : " (" + b.workload() + ")");
    auto addr = AddrFromBytes(b.address());
    if (!addr)
      return Status::Error(which + ": address has " + std::to_string(b.address().size()) +
                               " bytes, expected 4 or 16",
                           EINVAL);
    if (addr->is_v4() != vip.is_v4())
      return Status::Error(which + ": address " + addr->ToString() + " is not of the VIP's family (" +
                               vip.ToString() + ")",
                           EINVAL);
    if (b.port() == 0 || b.port() > 65535)
      return Status::Error(which + ": port " + std::to_string(b.port()) + " is out of range (1-65535)", EINVAL);
    if (b.weight() == 0) continue;
    weights[{*addr, static_cast<uint16_t>(b.port())}] += b.weight();
  }
  for (const auto& [ep, w] : weights)
    e.backends.push_back(
        {ep.first, ep.second, static_cast<uint32_t>(std::min<uint64_t>(w, std::numeric_limits<uint32_t>::max()))});
  return e;
}

}  // namespace

std::string KeyOf(const v1::Service& s) { return s.namespace_() + "/" + s.name(); }
std::string KeyOf(const v1::Workload& w) { return w.namespace_() + "/" + w.name(); }

Result<NodeConfigState> NodeConfigState::FromSnapshot(const v1::NodeConfig& snapshot) {
  NodeConfigState st;
  for (const auto& s : snapshot.services())
    if (!st.services.emplace(KeyOf(s), s).second)
      return Status::Error("snapshot lists service " + KeyOf(s) + " twice", EINVAL);
  for (const auto& w : snapshot.local_workloads())
    if (!st.workloads.emplace(KeyOf(w), w).second)
      return Status::Error("snapshot lists workload " + KeyOf(w) + " twice", EINVAL);
  return st;
}

Status NodeConfigState::ApplyDelta(const v1::NodeConfigDelta& delta) {
  // Removals first, then upserts: a delta that removes and re-adds a name
  // (a rename round trip) ends with the object present.
  for (const auto& name : delta.removed_services()) services.erase(name);
  for (const auto& name : delta.removed_workloads()) workloads.erase(name);
  for (const auto& s : delta.upserted_services()) services[KeyOf(s)] = s;
  for (const auto& w : delta.upserted_workloads()) workloads[KeyOf(w)] = w;
  return Status::Ok();
}

Result<lb::DesiredState> ToDesiredState(const NodeConfigState& state) {
  lb::DesiredState out;
  std::map<weft_svc_key, std::string, lb::ServiceKeyLess> owner;  // for the "claimed twice" error
  for (const auto& [name, svc] : state.services) {
    if (svc.name().empty()) return Status::Error("service " + name + ": empty name", EINVAL);
    for (const auto& p : svc.ports()) {
      auto vip = AddrFromBytes(p.vip());
      if (!vip)
        return Status::Error(Where(name, p) + ": vip has " + std::to_string(p.vip().size()) +
                                 " bytes, expected 4 or 16",
                             EINVAL);
      if (p.port() == 0 || p.port() > 65535)
        return Status::Error(Where(name, p) + ": port " + std::to_string(p.port()) + " is out of range (1-65535)",
                             EINVAL);
      uint8_t proto;
      switch (p.protocol()) {
        case v1::PROTOCOL_UNSPECIFIED:
        case v1::TCP:
          proto = IPPROTO_TCP;
          break;
        case v1::UDP:
          proto = IPPROTO_UDP;
          break;
        default:
          return Status::Error(Where(name, p) + ": unknown protocol " + std::to_string(p.protocol()), EINVAL);
      }
      weft_svc_key key = lb::MakeServiceKey(*vip, static_cast<uint16_t>(p.port()), proto);
      auto entry = ConvertPort(name, p, *vip);
      if (!entry.ok()) return entry.status();
      auto [it, inserted] = owner.emplace(key, name + " port " + PortLabel(p));
      if (!inserted)
        return Status::Error(Endpoint(key) + " is claimed by both " + it->second + " and " + name + " port " +
                                 PortLabel(p),
                             EINVAL);
      out.services.emplace(key, std::move(*entry));
    }
  }
  return out;
}

}  // namespace weft::agent
