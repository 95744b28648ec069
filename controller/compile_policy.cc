#include "controller/compile_policy.hpp"

#include <algorithm>
#include <charconv>
#include <tuple>

#include "weft/bpf_abi.h"

namespace weft::controller::compile {
namespace {

constexpr std::string_view kIdentityPrefix = "authz/identity/";
constexpr std::string_view kPolicyPrefix = "authz/policy/";

std::string Bytes(const IpAddr& ip) {
  const auto& b = ip.bytes();
  if (ip.is_v4()) return std::string(reinterpret_cast<const char*>(b.data() + 12), 4);
  return std::string(reinterpret_cast<const char*>(b.data()), 16);
}

std::optional<uint32_t> ParseU32(std::string_view s) {
  uint32_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string IdentityRecord(const authz::IdentityKey& k) {
  nlohmann::json cidrs = nlohmann::json::array();
  for (const auto& c : k.cidrs) cidrs.push_back(c);
  return std::string(kIdentityPrefix) + nlohmann::json::array({k.ns, k.sa, cidrs}).dump();
}

std::optional<authz::IdentityKey> ParseIdentityRecord(std::string_view key) {
  auto j = nlohmann::json::parse(key.substr(kIdentityPrefix.size()), nullptr, /*allow_exceptions=*/false);
  if (!j.is_array() || j.size() != 3 || !j[0].is_string() || !j[1].is_string() || !j[2].is_array()) return std::nullopt;
  authz::IdentityKey k{j[0].get<std::string>(), j[1].get<std::string>(), {}};
  for (const auto& c : j[2]) {
    if (!c.is_string()) return std::nullopt;
    k.cidrs.insert(c.get<std::string>());
  }
  return k;
}

const char* ActionName(authz::Action a) {
  switch (a) {
    case authz::Action::kAllow: return "ALLOW";
    case authz::Action::kDeny: return "DENY";
    case authz::Action::kAudit: return "AUDIT";
    case authz::Action::kCustom: return "CUSTOM";
  }
  return "";
}

bool TestsDestinationIp(const authz::Policy& p) {
  for (const auto& r : p.rules) {
    for (const auto& c : r.when) {
      if (c.key == authz::Condition::Key::kDestinationIp) return true;
    }
  }
  return false;
}

authz::Workload AuthzWorkload(const config::WorkloadEntry& w) {
  authz::Workload out;
  out.ns = w.ns;
  out.name = w.name;
  out.labels = w.labels;
  out.service_account = w.service_account;
  out.addresses = w.addresses;
  return out;
}

}  // namespace

bool DeltaEmpty(const v1::NodeConfigDelta& d) {
  return d.upserted_services_size() == 0 && d.removed_services_size() == 0 && d.upserted_workloads_size() == 0 &&
         d.removed_workloads_size() == 0 && d.upserted_identity_cache_size() == 0 &&
         d.removed_identity_cache_size() == 0 && d.upserted_identities_size() == 0 &&
         d.removed_identities_size() == 0 && d.upserted_policy_names_size() == 0 &&
         d.removed_policy_names_size() == 0;
}

PolicyCompiler::PolicyCompiler(std::string trust_domain, std::string root_namespace, StateStore* state)
    : trust_domain_(trust_domain), state_(state), index_(std::move(trust_domain)) {
  eval_.root_namespace = std::move(root_namespace);
}

// --- sources ---------------------------------------------------------------------

void PolicyCompiler::UpsertPolicy(authz::Policy p) {
  std::string key = p.key();
  dirty_policy_keys_.insert(key);
  policies_dirty_ = true;
  policies_.insert_or_assign(std::move(key), std::move(p));
}

void PolicyCompiler::RemovePolicy(const std::string& key) {
  if (policies_.erase(key) == 0) return;
  dirty_policy_keys_.insert(key);
  policies_dirty_ = true;
}

const authz::Policy* PolicyCompiler::FindPolicy(const std::string& key) const {
  auto it = policies_.find(key);
  return it == policies_.end() ? nullptr : &it->second;
}

void PolicyCompiler::UpsertWorkload(const config::WorkloadEntry& w) { index_.Upsert(AuthzWorkload(w)); }

void PolicyCompiler::RemoveWorkload(const std::string& ns, const std::string& name) {
  index_.Remove(ns, name);
  Leave(ns + "/" + name);
}

void PolicyCompiler::Leave(const std::string& workload_key) {
  auto it = group_of_.find(workload_key);
  if (it == group_of_.end()) return;
  // An emptied group stays until the next Commit: a workload that is
  // updated (removed and added) joins it again without a new lowering.
  if (auto g = groups_.find(it->second); g != groups_.end()) g->second->members.erase(workload_key);
  group_of_.erase(it);
}

void PolicyCompiler::Clear() {
  for (const auto& [key, p] : policies_) dirty_policy_keys_.insert(key);
  policies_.clear();
  policies_dirty_ = true;
  index_.RemoveAll();
  groups_.clear();
  group_of_.clear();
  relowered_.clear();
}

// --- persistence -------------------------------------------------------------------

Status PolicyCompiler::Load() {
  loaded_ = true;
  if (!state_) return Status::Ok();
  auto ids = state_->LoadState(std::string(kIdentityPrefix));
  if (!ids.ok()) return ids.status();
  std::map<authz::IdentityKey, uint32_t> known;
  for (const auto& [k, v] : *ids) {
    auto key = ParseIdentityRecord(k);
    auto id = ParseU32(v);
    if (key && id) known[*key] = *id;
  }
  index_.Seed(known);
  auto pids = state_->LoadState(std::string(kPolicyPrefix));
  if (!pids.ok()) return pids.status();
  for (const auto& [k, v] : *pids) {
    auto id = ParseU32(v);
    if (!id || *id == 0) continue;
    policy_ids_[k.substr(kPolicyPrefix.size())] = *id;
    next_policy_id_ = std::max(next_policy_id_, *id + 1);
  }
  return Status::Ok();
}

void PolicyCompiler::Persist(std::map<std::string, std::optional<std::string>> records) {
  for (auto& [k, v] : records) unsaved_.insert_or_assign(k, std::move(v));
  if (!state_ || unsaved_.empty()) {
    unsaved_.clear();
    return;
  }
  // On failure the numbers stay valid in memory and are retried next time;
  // a restart before that may renumber (agents then get a consistent snapshot).
  persist_status_ = state_->WriteState(unsaved_);
  if (persist_status_.ok()) unsaved_.clear();
}

// --- commit ------------------------------------------------------------------------

PolicyTableChanges PolicyCompiler::Commit() {
  PolicyTableChanges out;
  if (!loaded_) {
    if (Status st = Load(); !st.ok()) persist_status_ = st;
  }
  std::map<std::string, std::optional<std::string>> records;
  std::erase_if(groups_, [](const auto& g) { return g.second->members.empty(); });

  if (policies_dirty_) {
    by_ns_.clear();
    std::vector<authz::Policy> all;
    all.reserve(policies_.size());
    for (const auto& [key, p] : policies_) {
      by_ns_[p.ns].push_back(p);
      all.push_back(p);
    }
    index_.SetCidrs(authz::SourceCidrs(all));
    for (const auto& key : dirty_policy_keys_) {
      auto it = policies_.find(key);
      if (it == policies_.end()) {
        if (auto id = policy_ids_.find(key); id != policy_ids_.end() && names_.erase(id->second))
          out.policy_names.insert(id->second);
        continue;
      }
      auto id = policy_ids_.find(key);
      if (id == policy_ids_.end()) {
        id = policy_ids_.emplace(key, next_policy_id_++).first;
        records[std::string(kPolicyPrefix) + key] = std::to_string(id->second);
      }
      v1::PolicyName name;
      name.set_id(id->second);
      name.set_name(key);
      name.set_action(ActionName(it->second.action));
      auto old = names_.find(id->second);
      if (old == names_.end() || old->second.action() != name.action()) {
        names_[id->second] = std::move(name);
        out.policy_names.insert(id->second);
      }
    }
    // Groups with a changed policy go; their members are in the changed
    // policies' scope, which the compiler marks, and form new groups.
    for (auto it = groups_.begin(); it != groups_.end();) {
      bool stale = std::any_of(it->second->policy_keys.begin(), it->second->policy_keys.end(),
                               [&](const std::string& k) { return dirty_policy_keys_.contains(k); });
      it = stale ? groups_.erase(it) : std::next(it);
    }
    dirty_policy_keys_.clear();
    policies_dirty_ = false;
  }

  authz::IdentityIndex::Changes ids = index_.Commit();
  for (const auto& [k, id] : ids.numbered) records[IdentityRecord(k)] = std::to_string(id);
  for (const auto& [ns, name] : ids.rekeyed) out.rekeyed_workloads.insert(ns + "/" + name);
  out.identity_cache = std::move(ids.cache);
  out.identities = std::move(ids.identities);
  if (!out.identities.empty()) {
    // Peers appeared or went: each group adds or drops those peers' entries only.
    const auto& by_id = index_.table().by_id;
    for (auto& [key, g] : groups_) {
      bool changed = false;
      for (uint32_t id : out.identities) {
        auto info = by_id.find(id);
        if (info == by_id.end()) {
          changed |= g->peers.erase(id) > 0;
          continue;
        }
        auto entries = Convert(g->lowering->PeerEntries(id, info->second));
        if (entries.empty()) {
          changed |= g->peers.erase(id) > 0;
        } else {
          g->peers[id] = std::move(entries);
          changed = true;
        }
      }
      if (changed) {
        Rebuild(*g);
        relowered_.insert(g->members.begin(), g->members.end());
      }
    }
  }
  Persist(std::move(records));
  return out;
}

// --- lowering ------------------------------------------------------------------------

std::vector<v1::PolicyEntry> PolicyCompiler::Convert(const std::vector<authz::PolicyEntry>& entries) const {
  std::vector<v1::PolicyEntry> out;
  out.reserve(entries.size());
  for (const auto& e : entries) {
    v1::PolicyEntry pe;
    pe.set_peer_identity(e.peer_identity);
    pe.set_port(e.port);
    pe.set_protocol(e.proto == authz::kProtoTcp   ? v1::TCP
                    : e.proto == authz::kProtoUdp ? v1::UDP
                                                  : v1::PROTOCOL_UNSPECIFIED);
    pe.set_direction(e.direction == WEFT_DIR_INGRESS ? v1::INGRESS : v1::EGRESS);
    pe.set_verdict(e.decision.verdict == authz::Verdict::kAllow ? v1::ALLOW : v1::DENY);
    pe.set_reason(authz::DropReasonOf(e.decision));
    if (!e.decision.policy.empty()) {
      auto id = policy_ids_.find(e.decision.policy);
      pe.set_policy_id(id == policy_ids_.end() ? 0 : id->second);
    }
    out.push_back(std::move(pe));
  }
  return out;
}

void PolicyCompiler::Rebuild(Group& g) const {
  auto out = std::make_shared<Lowered>();
  out->enforce = g.lowering->enforced();
  out->policies = g.lowering->policies();
  out->entries = g.any;
  for (const auto& [id, entries] : g.peers) out->entries.insert(out->entries.end(), entries.begin(), entries.end());
  std::sort(out->entries.begin(), out->entries.end(), [](const v1::PolicyEntry& a, const v1::PolicyEntry& b) {
    return std::make_tuple(a.direction(), a.protocol(), a.peer_identity(), a.port()) <
           std::make_tuple(b.direction(), b.protocol(), b.peer_identity(), b.port());
  });
  g.result = std::move(out);
}

PolicyCompiler::Group* PolicyCompiler::GroupFor(const authz::Workload& w) {
  // Only policies of the workload's namespace and the root namespace can apply.
  std::vector<const authz::Policy*> applicable;
  const std::string* namespaces[] = {&w.ns, &eval_.root_namespace};
  for (const std::string* ns : namespaces) {
    if (ns != &w.ns && *ns == w.ns) break;
    auto it = by_ns_.find(*ns);
    if (it == by_ns_.end()) continue;
    auto some = authz::ApplicablePolicies(it->second, w, eval_);
    applicable.insert(applicable.end(), some.begin(), some.end());
  }
  if (applicable.empty()) return nullptr;
  std::sort(applicable.begin(), applicable.end(), [](const authz::Policy* a, const authz::Policy* b) {
    return std::tie(a->ns, a->name) < std::tie(b->ns, b->name);
  });
  // The lowering depends on the workload only through the applicable
  // policies, and through its addresses when one tests destination.ip.
  std::string key;
  bool by_address = false;
  for (const authz::Policy* p : applicable) {
    key.append(p->key()).push_back('\n');
    by_address |= TestsDestinationIp(*p);
  }
  if (by_address) {
    for (const auto& a : w.addresses) key.append("@").append(a.ToString());
  }
  if (auto it = groups_.find(key); it != groups_.end()) return it->second.get();

  auto g = std::make_unique<Group>();
  g->key = key;
  for (const authz::Policy* p : applicable) {
    g->policy_keys.insert(p->key());
    g->policies.push_back(*p);
  }
  g->representative = w;
  g->lowering = std::make_unique<authz::PeerLowering>(g->policies, g->representative, eval_);
  g->any = Convert(g->lowering->AnyEntries());
  if (g->lowering->enforced()) g->any.push_back(Convert({authz::PeerLowering::UdpEntry()}).front());
  for (const auto& [id, info] : index_.table().by_id) {
    auto entries = Convert(g->lowering->PeerEntries(id, info));
    if (!entries.empty()) g->peers.emplace(id, std::move(entries));
  }
  Rebuild(*g);
  return groups_.emplace(std::move(key), std::move(g)).first->second.get();
}

void PolicyCompiler::Fill(const config::WorkloadEntry& w, v1::Workload* out) {
  static const Lowered kNone;
  authz::Workload aw = AuthzWorkload(w);
  out->set_identity(index_.IdentityOf(aw));
  Group* g = GroupFor(aw);
  const std::string key = w.key();
  if (auto it = group_of_.find(key); it != group_of_.end()) {
    auto cur = groups_.find(it->second);
    if (!g || cur == groups_.end() || cur->second.get() != g) Leave(key);
  }
  if (g) {
    g->members.insert(key);
    group_of_[key] = g->key;
  }
  const Lowered& lp = g ? *g->result : kNone;
  out->set_enforce_ingress(lp.enforce);
  out->set_enforce_egress(false);  // AuthorizationPolicy is destination-side
  out->clear_policy();
  for (const auto& e : lp.entries) *out->add_policy() = e;
  out->clear_policies();
  for (const auto& p : lp.policies) out->add_policies(p);
}

// --- output --------------------------------------------------------------------------

namespace {

void SetCacheEntry(const authz::PrefixKey& pk, uint32_t id, v1::IdentityCacheEntry* out) {
  IpPrefix p = pk.prefix();
  out->set_prefix(Bytes(p.addr));
  out->set_prefix_len(static_cast<uint32_t>(p.len));
  out->set_identity(id);
}

void SetInfo(const authz::IdentityInfo& info, v1::IdentityInfo* out) {
  out->set_id(info.id);
  out->set_spiffe_id(info.spiffe_id);
  out->set_namespace_(info.ns);
  out->set_service_account(info.sa);
  for (const auto& c : info.cidrs) out->add_cidrs(c);
}

}  // namespace

void PolicyCompiler::FillTables(v1::NodeConfig* out) const {
  for (const auto& [pk, id] : index_.cache()) SetCacheEntry(pk, id, out->add_identity_cache());
  for (const auto& [id, info] : index_.table().by_id) SetInfo(info, out->add_identities());
  for (const auto& [id, name] : names_) *out->add_policy_names() = name;
}

void PolicyCompiler::FillDelta(const PolicyTableChanges& changes, v1::NodeConfigDelta* out) const {
  const auto& cache = index_.cache();
  for (const auto& pk : changes.identity_cache) {
    auto it = cache.find(pk);
    if (it != cache.end()) {
      SetCacheEntry(pk, it->second, out->add_upserted_identity_cache());
    } else {
      SetCacheEntry(pk, 0, out->add_removed_identity_cache());
    }
  }
  const auto& by_id = index_.table().by_id;
  for (uint32_t id : changes.identities) {
    if (auto it = by_id.find(id); it != by_id.end()) {
      SetInfo(it->second, out->add_upserted_identities());
    } else {
      out->add_removed_identities(id);
    }
  }
  for (uint32_t id : changes.policy_names) {
    if (auto it = names_.find(id); it != names_.end()) {
      *out->add_upserted_policy_names() = it->second;
    } else {
      out->add_removed_policy_names(id);
    }
  }
}

}  // namespace weft::controller::compile
