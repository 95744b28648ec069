#include "agent/proto_convert.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <limits>
#include <set>
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
  // needs_l7 does not steer until the node proxy exists (see the header);
  // only the Service's own weft.io/steer-to-proxy annotation sets the flag.
  e.flags = p.steer_to_proxy() ? WEFT_SVC_F_STEER_PROXY : 0;

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

// The address of a host entry (/32 or /128) of the identity cache; nullopt for a wider prefix.
std::optional<IpAddr> HostOf(const v1::IdentityCacheEntry& e) {
  auto a = AddrFromBytes(e.prefix());
  if (!a || e.prefix_len() != (a->is_v4() ? 32u : 128u)) return std::nullopt;
  return a;
}

// "ns/name port p" of an LB entry named "ns/name:p".
std::string EntryLabel(const lb::ServiceEntry& e) {
  auto colon = e.name.rfind(':');
  return "service " + e.name.substr(0, colon) + " port " + e.name.substr(colon + 1);
}

}  // namespace

VipRanges VipRanges::Defaults() {
  VipRanges r;
  for (const char* c : {"10.96.0.0/16", "fd00:96::/112", "240.240.0.0/16", "2001:2::/48"})
    r.prefixes.push_back(*IpPrefix::Parse(c));
  return r;
}

bool VipRanges::Contains(const IpAddr& ip) const {
  for (const auto& p : prefixes)
    if (p.addr.is_v4() == ip.is_v4() && p.Contains(ip)) return true;
  return false;
}

std::string VipRanges::ToString() const {
  std::string out;
  for (const auto& p : prefixes) out += (out.empty() ? "" : ", ") + p.ToString();
  return out.empty() ? "none" : out;
}

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

Result<std::vector<std::pair<weft_svc_key, lb::ServiceEntry>>> ConvertService(const std::string& name,
                                                                                const v1::Service& svc) {
  std::vector<std::pair<weft_svc_key, lb::ServiceEntry>> out;
  if (svc.name().empty()) return Status::Error("service " + name + ": empty name", EINVAL);
  for (const auto& p : svc.ports()) {
    auto vip = AddrFromBytes(p.vip());
    if (!vip)
      return Status::Error(Where(name, p) + ": vip has " + std::to_string(p.vip().size()) + " bytes, expected 4 or 16",
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
    for (const auto& [k, e] : out)
      if (datapath::BytesEqual(k, key))
        return Status::Error(Endpoint(key) + " is claimed by both " + e.name.substr(0, e.name.rfind(':')) + " port " +
                                 e.name.substr(e.name.rfind(':') + 1) + " and " + name + " port " + PortLabel(p),
                             EINVAL);
    out.emplace_back(key, std::move(*entry));
  }
  return out;
}

static std::string ClaimConflict(const weft_svc_key& key, const std::string& owner, const lb::ServiceEntry& entry) {
  auto colon = entry.name.rfind(':');
  return Endpoint(key) + " is claimed by both " + owner + " and " + entry.name.substr(0, colon) + " port " +
         entry.name.substr(colon + 1);
}

Result<lb::DesiredState> ToDesiredState(const NodeConfigState& state) {
  lb::DesiredState out;
  std::map<weft_svc_key, std::string, lb::ServiceKeyLess> owner;  // for the "claimed twice" error
  for (const auto& [name, svc] : state.services) {
    auto entries = ConvertService(name, svc);
    if (!entries.ok()) return entries.status();
    for (auto& [key, entry] : *entries) {
      auto colon = entry.name.rfind(':');
      auto [it, inserted] = owner.emplace(key, name + " port " + entry.name.substr(colon + 1));
      if (!inserted) return Status::Error(ClaimConflict(key, it->second, entry), EINVAL);
      out.services.emplace(key, std::move(entry));
    }
  }
  return out;
}

Result<ConvertedConfig::Pending> ConvertedConfig::PrepareSnapshot(const v1::NodeConfig& snapshot) const {
  auto st = NodeConfigState::FromSnapshot(snapshot);
  if (!st.ok()) return st.status();
  Pending p;
  std::map<weft_svc_key, std::string, lb::ServiceKeyLess> owner;
  for (const auto& [name, svc] : st->services) {
    auto entries = ConvertService(name, svc);
    if (!entries.ok()) return entries.status();
    auto& keys = p.keys[name];
    for (auto& [key, entry] : *entries) {
      auto [it, inserted] = owner.emplace(key, name);
      if (!inserted) {
        const auto& other = p.desired.services.at(key);
        return Status::Error(ClaimConflict(key, it->second + " port " + other.name.substr(other.name.rfind(':') + 1),
                                           entry),
                             EINVAL);
      }
      keys.push_back(key);
      p.entries.emplace_back(key, entry);
      p.desired.services.emplace(key, std::move(entry));
    }
  }
  p.snapshot = std::move(*st);
  for (const auto& e : snapshot.identity_cache())
    if (auto host = HostOf(e)) p.hosts[*host] = e.identity();
  for (const auto& i : snapshot.identities()) p.workload_ids[i.id()] = !i.spiffe_id().empty();
  WEFT_RETURN_IF_ERROR(CheckVips(p, /*snapshot=*/true));
  return p;
}

Result<ConvertedConfig::Pending> ConvertedConfig::PrepareDelta(const v1::NodeConfigDelta& delta) const {
  Pending p;
  p.delta = delta;
  // As NodeConfigState::ApplyDelta: removals, then upserts (the last upsert of a name wins).
  std::map<std::string, const v1::Service*> upserts;
  for (const auto& s : delta.upserted_services()) upserts[KeyOf(s)] = &s;
  for (const auto& name : delta.removed_services()) p.keys[name];
  for (const auto& [name, svc] : upserts) p.keys[name];
  p.desired = desired_;
  for (const auto& [name, unused] : p.keys)
    if (auto it = keys_of_.find(name); it != keys_of_.end())
      for (const auto& key : it->second) p.desired.services.erase(key);
  std::map<weft_svc_key, std::string, lb::ServiceKeyLess> claimed;  // keys (re)claimed by this delta
  for (const auto& [name, svc] : upserts) {
    auto entries = ConvertService(name, *svc);
    if (!entries.ok()) return entries.status();
    auto& keys = p.keys[name];
    for (auto& [key, entry] : *entries) {
      if (auto c = claimed.find(key); c != claimed.end()) {
        const auto& other = p.desired.services.at(key);
        return Status::Error(
            ClaimConflict(key, c->second + " port " + other.name.substr(other.name.rfind(':') + 1), entry), EINVAL);
      }
      if (p.desired.services.count(key)) {  // owned by a service this delta does not touch
        const auto& other = p.desired.services.at(key);
        return Status::Error(
            ClaimConflict(key, owner_.at(key) + " port " + other.name.substr(other.name.rfind(':') + 1), entry),
            EINVAL);
      }
      claimed.emplace(key, name);
      keys.push_back(key);
      p.entries.emplace_back(key, entry);
      p.desired.services.emplace(key, std::move(entry));
    }
  }
  WEFT_RETURN_IF_ERROR(CheckVips(p, /*snapshot=*/false));
  return p;
}

Status ConvertedConfig::CheckVips(const Pending& p, bool snapshot) const {
  // The identity tables after the push: a delta's changes over the committed ones.
  std::map<IpAddr, std::optional<uint32_t>> delta_hosts;  // nullopt: removed
  std::map<uint32_t, std::optional<bool>> delta_ids;      // nullopt: removed
  if (!snapshot) {
    for (const auto& e : p.delta.removed_identity_cache())
      if (auto host = HostOf(e)) delta_hosts[*host] = std::nullopt;
    for (const auto& e : p.delta.upserted_identity_cache())
      if (auto host = HostOf(e)) delta_hosts[*host] = e.identity();
    for (uint32_t id : p.delta.removed_identities()) delta_ids[id] = std::nullopt;
    for (const auto& i : p.delta.upserted_identities()) delta_ids[i.id()] = !i.spiffe_id().empty();
  }
  const auto& hosts = snapshot ? p.hosts : hosts_;
  const auto& ids = snapshot ? p.workload_ids : workload_ids_;
  // An identity is a workload's unless it is known to be CIDR-only.
  auto is_workload_id = [&](uint32_t id) {
    if (auto d = delta_ids.find(id); d != delta_ids.end()) return !d->second || *d->second;
    auto it = ids.find(id);
    return it == ids.end() || it->second;
  };
  auto host_identity = [&](const IpAddr& ip) -> std::optional<uint32_t> {
    if (auto d = delta_hosts.find(ip); d != delta_hosts.end()) return d->second;
    auto it = hosts.find(ip);
    if (it == hosts.end()) return std::nullopt;
    return it->second;
  };
  // Local workloads after the push.
  std::map<IpAddr, std::string> local;
  auto add_local = [&](const v1::Workload& w) {
    for (const auto& a : w.addresses())
      if (auto ip = AddrFromBytes(a)) local.emplace(*ip, KeyOf(w));
  };
  if (snapshot) {
    for (const auto& [name, w] : p.snapshot->workloads) add_local(w);
  } else {
    std::set<std::string> replaced(p.delta.removed_workloads().begin(), p.delta.removed_workloads().end());
    for (const auto& w : p.delta.upserted_workloads()) replaced.insert(KeyOf(w));
    for (const auto& [name, w] : state_.workloads)
      if (!replaced.count(name)) add_local(w);
    for (const auto& w : p.delta.upserted_workloads()) add_local(w);
  }
  // "" if `ip` is no workload's address after the push, else whose it is.
  auto workload_at = [&](const IpAddr& ip) -> std::string {
    if (auto it = local.find(ip); it != local.end()) return "local workload " + it->second;
    if (auto id = host_identity(ip); id && is_workload_id(*id))
      return "a workload of the mesh (identity " + std::to_string(*id) + " in the identity cache)";
    return "";
  };
  const std::string refuse = ": refusing the push, nothing changed";
  auto check_vip = [&](const weft_svc_key& key, const lb::ServiceEntry& e) -> Status {
    IpAddr ip = IpAddr::FromBytes(key.addr);
    if (!ranges_.Contains(ip))
      return Status::Error(EntryLabel(e) + ": VIP " + ip.ToString() + " is outside this node's VIP ranges (" +
                               ranges_.ToString() +
                               "; weft-agent --service-cidr, --service-entry-cidr and their -v6)" + refuse,
                           EINVAL);
    if (std::string w = workload_at(ip); !w.empty())
      return Status::Error(EntryLabel(e) + ": VIP " + ip.ToString() + " is the address of " + w + refuse, EINVAL);
    return Status::Ok();
  };
  // Services the push adds or changes (a snapshot: all of them).
  for (const auto& [key, e] : p.entries) WEFT_RETURN_IF_ERROR(check_vip(key, e));
  if (snapshot) return Status::Ok();
  // Workload addresses the delta adds, against every VIP after it.
  auto vip_entry = [&](const IpAddr& ip) -> const std::pair<const weft_svc_key, lb::ServiceEntry>* {
    weft_svc_key probe{};
    ip.CopyTo(probe.addr);
    auto it = p.desired.services.lower_bound(probe);
    if (it == p.desired.services.end() || std::memcmp(it->first.addr, probe.addr, 16) != 0) return nullptr;
    return &*it;
  };
  std::vector<IpAddr> added;
  for (const auto& w : p.delta.upserted_workloads())
    for (const auto& a : w.addresses())
      if (auto ip = AddrFromBytes(a)) added.push_back(*ip);
  for (const auto& [ip, id] : delta_hosts)
    if (id) added.push_back(ip);
  for (const auto& ip : added)
    if (const auto* v = vip_entry(ip); v && !workload_at(ip).empty())
      WEFT_RETURN_IF_ERROR(check_vip(v->first, v->second));
  // An identity that became a workload's: every VIP again (rare).
  if (p.delta.upserted_identities_size() > 0) {
    std::optional<IpAddr> last;  // the keys of one VIP are adjacent: check each VIP once
    for (const auto& [key, e] : p.desired.services) {
      IpAddr ip = IpAddr::FromBytes(key.addr);
      if (last == ip) continue;
      last = ip;
      WEFT_RETURN_IF_ERROR(check_vip(key, e));
    }
  }
  return Status::Ok();
}

void ConvertedConfig::Commit(Pending&& p) {
  if (p.snapshot) {
    state_ = std::move(*p.snapshot);
    keys_of_.clear();
    owner_.clear();
    desired_.services.clear();
    hosts_ = std::move(p.hosts);
    workload_ids_ = std::move(p.workload_ids);
  } else {
    (void)state_.ApplyDelta(p.delta);
    for (const auto& e : p.delta.removed_identity_cache())
      if (auto host = HostOf(e)) hosts_.erase(*host);
    for (const auto& e : p.delta.upserted_identity_cache())
      if (auto host = HostOf(e)) hosts_[*host] = e.identity();
    for (uint32_t id : p.delta.removed_identities()) workload_ids_.erase(id);
    for (const auto& i : p.delta.upserted_identities()) workload_ids_[i.id()] = !i.spiffe_id().empty();
    for (const auto& [name, keys] : p.keys)
      if (auto it = keys_of_.find(name); it != keys_of_.end()) {
        for (const auto& key : it->second) {
          owner_.erase(key);
          desired_.services.erase(key);
        }
        keys_of_.erase(it);
      }
  }
  for (auto& [key, entry] : p.entries) desired_.services.insert_or_assign(key, std::move(entry));
  for (auto& [name, keys] : p.keys) {
    if (keys.empty()) continue;
    for (const auto& key : keys) owner_[key] = name;
    keys_of_[name] = std::move(keys);
  }
}

}  // namespace weft::agent
