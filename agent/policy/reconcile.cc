#include "agent/policy/reconcile.hpp"

#include <cerrno>
#include <set>

namespace weft::policy {
namespace {

bool Enforces(const weft_endpoint& ep) { return ep.enforce_ingress != 0 || ep.enforce_egress != 0; }
bool Denies(const weft_policy_val& v) { return v.verdict == WEFT_VERDICT_DENY; }

}  // namespace

size_t PolicyWrites::map_writes() const {
  return policy_upserted + policy_deleted + identity_upserted + identity_deleted + endpoints_upserted +
         endpoints_deleted;
}

// Everything one Apply writes, in the order it is written.
struct PolicyReconciler::Plan {
  std::vector<std::pair<weft_policy_key, weft_policy_val>> policy_upserts;
  std::vector<std::pair<weft_ipcache_key, weft_ipcache_val>> identity_upserts;
  std::vector<std::pair<uint32_t, weft_endpoint>> endpoint_upserts;
  std::vector<std::pair<uint32_t, bool>> attach;  // ifindex, weft_tc_to_pod too
  std::vector<uint32_t> gone;                     // detached, then their entry deleted
  std::vector<weft_policy_key> policy_deletes;
  std::vector<weft_ipcache_key> identity_deletes;
};

Status PolicyReconciler::Adopt() {
  auto live = maps_.ReadAll();
  if (!live.ok()) return live.status().Wrap("read the policy maps");
  live_ = std::move(*live);
  adopted_ = true;
  return Status::Ok();
}

Result<PolicyReconciler::AttachReport> PolicyReconciler::AttachAdopted() {
  if (!adopted_) WEFT_RETURN_IF_ERROR(Adopt());
  AttachReport r;
  for (const auto& [ifindex, ep] : live_.endpoints) {
    Status st = links_.Attach(ifindex, Enforces(ep));
    if (!st.ok()) {
      if (st.err() == ENODEV || st.err() == ENOENT || st.err() == EINVAL) {
        r.skipped.emplace_back(ifindex, st.message());
        continue;
      }
      return st;
    }
    attached_[ifindex] = Enforces(ep);
    ++(Enforces(ep) ? r.enforcing : r.idle);
  }
  return r;
}

Result<PolicyWrites> PolicyReconciler::Apply(const KernelPolicy& want) {
  if (!adopted_) WEFT_RETURN_IF_ERROR(Adopt());
  Plan p;
  // 1: entries that pass before those that deny.
  std::vector<std::pair<weft_policy_key, weft_policy_val>> deny_upserts;
  for (const auto& [k, v] : want.policy) {
    auto it = live_.policy.find(k);
    if (it != live_.policy.end() && PodEq(it->second, v)) continue;
    (Denies(v) ? deny_upserts : p.policy_upserts).emplace_back(k, v);
  }
  p.policy_upserts.insert(p.policy_upserts.end(), deny_upserts.begin(), deny_upserts.end());
  // 2, 3
  for (const auto& [k, v] : want.identity) {
    auto it = live_.identity.find(k);
    if (it == live_.identity.end() || !PodEq(it->second, v)) p.identity_upserts.emplace_back(k, v);
  }
  for (const auto& [ifx, ep] : want.endpoints) {
    auto it = live_.endpoints.find(ifx);
    if (it == live_.endpoints.end() || !PodEq(it->second, ep)) p.endpoint_upserts.emplace_back(ifx, ep);
  }
  // 4: weft_tc_from_pod on every endpoint (source validation: the pod's own
  // addresses are in its entry since step 3), weft_tc_to_pod only where
  // policy applies: on an endpoint that enforces neither direction it would
  // only find that out and pass, at a cost on every packet entering the pod.
  for (const auto& [ifx, ep] : want.endpoints) {
    auto it = attached_.find(ifx);
    if (it == attached_.end() || it->second != Enforces(ep)) p.attach.emplace_back(ifx, Enforces(ep));
  }
  // 5
  for (const auto& [ifx, ep] : live_.endpoints)
    if (!want.endpoints.count(ifx)) p.gone.push_back(ifx);
  // 6: entries that deny before those that pass.
  std::vector<weft_policy_key> pass_deletes;
  for (const auto& [k, v] : live_.policy)
    if (!want.policy.count(k)) (Denies(v) ? p.policy_deletes : pass_deletes).push_back(k);
  p.policy_deletes.insert(p.policy_deletes.end(), pass_deletes.begin(), pass_deletes.end());
  // 7
  for (const auto& [k, v] : live_.identity)
    if (!want.identity.count(k)) p.identity_deletes.push_back(k);

  PolicyWrites w;
  WEFT_RETURN_IF_ERROR(Execute(p, w));
  return w;
}

Result<PolicyWrites> PolicyReconciler::ApplyIdentity(const std::vector<weft_ipcache_key>& keys,
                                                     const IdentityMap& want) {
  if (!adopted_) WEFT_RETURN_IF_ERROR(Adopt());
  Plan p;
  std::set<weft_ipcache_key, PodLess<weft_ipcache_key>> seen;
  for (const auto& k : keys) {
    if (!seen.insert(k).second) continue;
    auto w = want.find(k);
    auto l = live_.identity.find(k);
    if (w != want.end()) {
      if (l == live_.identity.end() || !PodEq(l->second, w->second)) p.identity_upserts.emplace_back(k, w->second);
    } else if (l != live_.identity.end()) {
      p.identity_deletes.push_back(k);
    }
  }
  PolicyWrites w;
  WEFT_RETURN_IF_ERROR(Execute(p, w));
  return w;
}

Status PolicyReconciler::Execute(const Plan& p, PolicyWrites& w) {
  // A failed map write may have written part of its call: the mirror is read
  // again before the next Apply.
  auto failed = [&](const Status& st) {
    adopted_ = false;
    return st;
  };
  if (!p.policy_upserts.empty()) {
    if (Status st = maps_.UpsertPolicy(p.policy_upserts); !st.ok()) return failed(st);
    for (const auto& [k, v] : p.policy_upserts) live_.policy[k] = v;
    w.policy_upserted += p.policy_upserts.size();
  }
  if (!p.identity_upserts.empty()) {
    if (Status st = maps_.UpsertIdentity(p.identity_upserts); !st.ok()) return failed(st);
    for (const auto& [k, v] : p.identity_upserts) live_.identity[k] = v;
    w.identity_upserted += p.identity_upserts.size();
  }
  if (!p.endpoint_upserts.empty()) {
    if (Status st = maps_.UpsertEndpoints(p.endpoint_upserts); !st.ok()) return failed(st);
    for (const auto& [k, v] : p.endpoint_upserts) live_.endpoints[k] = v;
    w.endpoints_upserted += p.endpoint_upserts.size();
  }
  for (const auto& [ifx, to_pod] : p.attach) {
    WEFT_RETURN_IF_ERROR(links_.Attach(ifx, to_pod));
    attached_[ifx] = to_pod;
    ++w.links_attached;
  }
  for (uint32_t ifx : p.gone) {
    WEFT_RETURN_IF_ERROR(links_.Detach(ifx));
    attached_.erase(ifx);
    ++w.links_detached;
    if (Status st = maps_.DeleteEndpoints({ifx}); !st.ok()) return failed(st);
    live_.endpoints.erase(ifx);
    ++w.endpoints_deleted;
  }
  if (!p.policy_deletes.empty()) {
    if (Status st = maps_.DeletePolicy(p.policy_deletes); !st.ok()) return failed(st);
    for (const auto& k : p.policy_deletes) live_.policy.erase(k);
    w.policy_deleted += p.policy_deletes.size();
  }
  if (!p.identity_deletes.empty()) {
    if (Status st = maps_.DeleteIdentity(p.identity_deletes); !st.ok()) return failed(st);
    for (const auto& k : p.identity_deletes) live_.identity.erase(k);
    w.identity_deleted += p.identity_deletes.size();
  }
  // 8: established flows are evaluated again under the new revision.
  if (w.map_writes() > 0) {
    auto rev = maps_.BumpRevision();
    if (!rev.ok()) return rev.status();
    w.revision = *rev;
  }
  return Status::Ok();
}

}  // namespace weft::policy
