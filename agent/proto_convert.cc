#include "agent/proto_convert.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <limits>
#include <set>
#include <utility>

#include "weft/ip.hpp"

namespace weft::agent {

std::optional<IpAddr> AddrFromBytes(const std::string& b) {
  if (b.size() == 4) {
    uint32_t v4 = 0;
    std::memcpy(&v4, b.data(), 4);
    return IpAddr::FromV4(v4);
  }
  if (b.size() == 16) return IpAddr::FromBytes(reinterpret_cast<const uint8_t*>(b.data()));
  return std::nullopt;
}

namespace {

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

}  // namespace

std::string KeyOf(const v1::Service& s) { return s.namespace_() + "/" + s.name(); }
std::string KeyOf(const v1::Workload& w) { return w.namespace_() + "/" + w.name(); }

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

namespace {

std::string ClaimConflict(const weft_svc_key& key, const std::string& owner, const lb::ServiceEntry& entry) {
  auto colon = entry.name.rfind(':');
  return Endpoint(key) + " is claimed by both " + owner + " and " + entry.name.substr(0, colon) + " port " +
         entry.name.substr(colon + 1);
}

// "port p" of an LB entry named "ns/name:p".
std::string PortOf(const lb::ServiceEntry& e) { return " port " + e.name.substr(e.name.rfind(':') + 1); }

}  // namespace

Result<lb::DesiredState> ToDesiredState(const v1::NodeConfig& config) {
  ServiceState s;
  auto keys = s.ApplySnapshot(config);
  if (!keys.ok()) return keys.status();
  return s.desired();
}

Result<std::vector<weft_svc_key>> ServiceState::ApplySnapshot(const v1::NodeConfig& snapshot) {
  std::map<std::string, const v1::Service*> services;  // converted in name order
  for (const auto& s : snapshot.services())
    if (!services.emplace(KeyOf(s), &s).second)
      return Status::Error("snapshot lists service " + KeyOf(s) + " twice", EINVAL);
  Tables t;
  std::vector<weft_svc_key> keys;
  for (const auto& [name, svc] : services) {
    auto entries = ConvertService(name, *svc);
    if (!entries.ok()) return entries.status();
    auto& mine = t.keys_of[name];
    for (auto& [key, entry] : *entries) {
      auto [it, inserted] = t.owner.emplace(key, name);
      if (!inserted)
        return Status::Error(ClaimConflict(key, it->second + PortOf(t.desired.services.at(key)), entry), EINVAL);
      mine.push_back(key);
      keys.push_back(key);
      t.desired.services.emplace(key, std::move(entry));
    }
    if (mine.empty()) t.keys_of.erase(name);
  }
  // The predecessor is kept until Commit (the committed one: a pending delta is undone first).
  if (!replaced_) {
    Revert();
    replaced_ = Tables{std::move(desired_), std::move(owner_), std::move(keys_of_)};
  }
  desired_ = std::move(t.desired);
  owner_ = std::move(t.owner);
  keys_of_ = std::move(t.keys_of);
  return keys;
}

Result<std::vector<weft_svc_key>> ServiceState::ApplyDelta(const v1::NodeConfigDelta& delta) {
  std::vector<weft_svc_key> changed;
  if (Status st = ApplyDeltaInPlace(delta, &changed); !st.ok()) {
    Revert();
    return st;
  }
  return changed;
}

Status ServiceState::ApplyDeltaInPlace(const v1::NodeConfigDelta& delta, std::vector<weft_svc_key>* changed) {
  // Removals, then upserts (the last upsert of a name wins).
  std::map<std::string, const v1::Service*> upserts;
  for (const auto& s : delta.upserted_services()) upserts[KeyOf(s)] = &s;
  std::set<std::string> touched(delta.removed_services().begin(), delta.removed_services().end());
  for (const auto& [name, svc] : upserts) touched.insert(name);
  for (const auto& name : touched) {
    auto it = keys_of_.find(name);
    if (it == keys_of_.end()) continue;
    for (const auto& key : it->second) {
      services_undo_.Save(desired_.services, key);
      owner_undo_.Save(owner_, key);
      desired_.services.erase(key);
      owner_.erase(key);
    }
    keys_undo_.Save(keys_of_, name);
    keys_of_.erase(it);
  }
  std::map<weft_svc_key, std::string, lb::ServiceKeyLess> claimed;  // keys (re)claimed by this delta
  for (const auto& [name, svc] : upserts) {
    auto entries = ConvertService(name, *svc);
    if (!entries.ok()) return entries.status();
    std::vector<weft_svc_key> mine;
    for (auto& [key, entry] : *entries) {
      if (auto c = claimed.find(key); c != claimed.end())
        return Status::Error(ClaimConflict(key, c->second + PortOf(desired_.services.at(key)), entry), EINVAL);
      if (auto o = owner_.find(key); o != owner_.end())  // owned by a service this delta does not touch
        return Status::Error(ClaimConflict(key, o->second + PortOf(desired_.services.at(key)), entry), EINVAL);
      claimed.emplace(key, name);
      mine.push_back(key);
      changed->push_back(key);
      services_undo_.Save(desired_.services, key);
      owner_undo_.Save(owner_, key);
      desired_.services.emplace(key, std::move(entry));
      owner_.emplace(key, name);
    }
    if (!mine.empty()) {
      keys_undo_.Save(keys_of_, name);
      keys_of_[name] = std::move(mine);
    }
  }
  return Status::Ok();
}

void ServiceState::Replace(lb::DesiredState desired) {
  if (!replaced_) {
    Revert();
    replaced_ = Tables{std::move(desired_), std::move(owner_), std::move(keys_of_)};
  }
  desired_ = std::move(desired);
  owner_.clear();
  keys_of_.clear();
}

void ServiceState::Commit() {
  replaced_.reset();
  services_undo_.Clear();
  owner_undo_.Clear();
  keys_undo_.Clear();
}

void ServiceState::Revert() {
  if (replaced_) {
    desired_ = std::move(replaced_->desired);
    owner_ = std::move(replaced_->owner);
    keys_of_ = std::move(replaced_->keys_of);
    Commit();
    return;
  }
  services_undo_.Revert(desired_.services);
  owner_undo_.Revert(owner_);
  keys_undo_.Revert(keys_of_);
}

}  // namespace weft::agent
