// Compiler: resources -> per-node config, incrementally.
//
// Layout: each resource is read once, into the typed model
// (config::TypedView); compile_model.* gives the compiler's view of a service
// (a Service or a ServiceEntry host) and protocol selection, compile_routing.*
// the routing/weights logic. This file keeps the sources,
// the indexes that find what a change affects (services by host, namespace and
// selector; workloads by label), and the compiled output it diffs against.
#include "controller/compiler.hpp"

#include <google/protobuf/util/message_differencer.h>

#include <algorithm>
#include <optional>
#include <unordered_map>

#include "authz/policy.hpp"
#include "config/typed.hpp"
#include "controller/compile_model.hpp"
#include "controller/compile_policy.hpp"
#include "controller/compile_routing.hpp"

namespace weft::controller {
namespace {

using config::ResourceKey;
using namespace compile;  // NOLINT(google-build-using-namespace): the compiler's own vocabulary

std::string AddrBytes(const IpAddr& ip) {
  const auto& b = ip.bytes();
  if (ip.is_v4()) return std::string(reinterpret_cast<const char*>(b.data() + 12), 4);
  return std::string(reinterpret_cast<const char*>(b.data()), 16);
}

std::string LabelKey(std::string_view ns, std::string_view k, std::string_view v) {
  std::string out;
  out.reserve(ns.size() + k.size() + v.size() + 2);
  out.append(ns).push_back('\x1f');
  out.append(k).push_back('\x1f');
  out.append(v);
  return out;
}

// Index values may come from two sources with the same key (a Service and a
// ServiceEntry named alike), hence multisets: each source adds and removes its own.
using KeyIndex = std::unordered_map<std::string, std::multiset<std::string>>;

void IndexAdd(KeyIndex& idx, const std::string& k, const std::string& v) { idx[k].insert(v); }

void IndexRemove(KeyIndex& idx, const std::string& k, const std::string& v) {
  auto it = idx.find(k);
  if (it == idx.end()) return;
  if (auto e = it->second.find(v); e != it->second.end()) it->second.erase(e);
  if (it->second.empty()) idx.erase(it);
}

enum class Kind {
  kService,
  kServiceEntry,
  kWorkloadEntry,
  kDestinationRule,
  kVirtualService,
  kPeerAuthentication,
  kAuthorizationPolicy,
  kOther
};

Kind KindOf(const std::string& kind) {
  static const std::map<std::string, Kind, std::less<>> kKinds = {
      {"Service", Kind::kService},
      {"ServiceEntry", Kind::kServiceEntry},
      {"WorkloadEntry", Kind::kWorkloadEntry},
      {"DestinationRule", Kind::kDestinationRule},
      {"VirtualService", Kind::kVirtualService},
      {"PeerAuthentication", Kind::kPeerAuthentication},
      {"AuthorizationPolicy", Kind::kAuthorizationPolicy}};
  auto it = kKinds.find(kind);
  return it == kKinds.end() ? Kind::kOther : it->second;
}

// One endpoint of a service: a WorkloadEntry it selects or a ServiceEntry's inline endpoint.
struct Endpoint {
  const std::string* ns = nullptr;
  const Labels* labels = nullptr;
  const config::NamedPorts* ports = nullptr;
  uint32_t weight = 1;
  std::vector<IpAddr> addresses;
  std::string workload;  // "ns/name" of the WorkloadEntry, "" inline
};

// The workload port a service port reaches on an endpoint; 0 when it has none.
uint32_t TargetPort(const ServiceModel& svc, const PortModel& port, const Endpoint& ep) {
  if (svc.from_service_entry) {  // Istio: the endpoint's port of the service port's name, else targetPort
    auto it = ep.ports->find(port.name);
    return it != ep.ports->end() ? it->second : port.target_number;
  }
  if (port.target_name.empty()) return port.target_number;
  auto it = ep.ports->find(port.target_name);
  return it == ep.ports->end() ? 0 : it->second;
}

template <typename Model>
const Model* PickByNamespace(const std::set<ResourceKey>& candidates, const std::map<ResourceKey, Model>& models,
                             const std::string& ns, const std::string& root) {
  // Client-independent choice: the service's namespace, then the root
  // namespace, then any (ordered by namespace/name, for determinism).
  const Model* root_pick = nullptr;
  const Model* any = nullptr;
  for (const auto& key : candidates) {
    auto it = models.find(key);
    if (it == models.end()) continue;
    if (key.ns == ns) return &it->second;
    if (key.ns == root && !root_pick) root_pick = &it->second;
    if (!any) any = &it->second;
  }
  return root_pick ? root_pick : any;
}

}  // namespace

struct Compiler::State {
  CompilerOptions opts;

  // --- sources ----------------------------------------------------------------
  std::map<std::string, ServiceModel> services;  // v1 Services by ns/name
  std::map<ResourceKey, std::vector<ServiceModel>> service_entries;
  std::unordered_map<std::string, std::set<ResourceKey>> entries_by_key;  // output key -> ServiceEntries
  std::map<std::string, config::WorkloadEntry> workloads;
  std::map<ResourceKey, config::DestinationRule> drs;
  std::map<ResourceKey, config::VirtualService> vss;
  std::map<ResourceKey, config::PeerAuthentication> pas;
  // AuthorizationPolicies live in `policy` (PolicyCompiler::FindPolicy).

  // --- indexes ----------------------------------------------------------------
  KeyIndex svc_by_host;
  KeyIndex svc_by_ns;
  KeyIndex svc_by_selector;  // LabelKey(ns, first selector label) -> service keys
  std::unordered_map<std::string, std::set<std::string>> wl_by_label;  // LabelKey(ns, k, v) -> workload keys
  std::unordered_map<std::string, std::set<std::string>> wl_by_ns;     // ns -> workload keys (policy scope)
  std::unordered_map<std::string, std::set<ResourceKey>> dr_by_host, vs_by_host;
  std::set<ResourceKey> dr_wild, vs_wild;
  std::map<std::string, std::set<ResourceKey>> pa_by_ns;
  std::map<std::string, std::set<std::string>> ap_by_ns;  // ns -> AuthorizationPolicy keys "ns/name"

  // --- output -----------------------------------------------------------------
  struct OutWorkload {
    std::string node;
    v1::Workload proto;
  };
  std::map<std::string, v1::Service> out_services;
  std::map<std::string, OutWorkload> out_workloads;
  std::unordered_map<std::string, std::set<std::string>> node_workloads;

  // Identity policy: sources, numbers and lowering (compile_policy.hpp).
  std::unique_ptr<PolicyCompiler> policy;

  // --- pending work -------------------------------------------------------------
  std::set<std::string> dirty_services, dirty_workloads;
  bool bulk = false;  // Reset: everything is recompiled, skip the fine-grained marking

  // ---------------------------------------------------------------------------

  void MarkService(const std::string& key) {
    if (!bulk) dirty_services.insert(key);
  }

  // Services (Service or ServiceEntry workloadSelector) whose selector labels ⊆ `labels` in ns.
  void MarkSelecting(const std::string& ns, const Labels& labels) {
    if (bulk) return;
    for (const auto& [k, v] : labels) {
      auto it = svc_by_selector.find(LabelKey(ns, k, v));
      if (it == svc_by_selector.end()) continue;
      for (const auto& key : it->second) {
        if (dirty_services.count(key)) continue;
        bool selects = false;
        if (auto s = services.find(key); s != services.end()) selects |= LabelsMatch(s->second.selector, labels);
        if (auto e = entries_by_key.find(key); e != entries_by_key.end()) {
          for (const auto& rk : e->second) {
            for (const auto& m : service_entries[rk]) {
              if (m.key() == key && !m.selector.empty()) selects |= LabelsMatch(m.selector, labels);
            }
          }
        }
        if (selects) dirty_services.insert(key);
      }
    }
  }

  void MarkHost(const std::string& host) {
    if (bulk) return;
    if (!IsWildcard(host)) {
      if (auto it = svc_by_host.find(host); it != svc_by_host.end()) dirty_services.insert(it->second.begin(), it->second.end());
      return;
    }
    for (const auto& [h, keys] : svc_by_host) {
      if (HostMatches(host, h)) dirty_services.insert(keys.begin(), keys.end());
    }
  }

  void MarkAllServices() {
    if (bulk) return;
    for (const auto& [k, v] : services) dirty_services.insert(k);
    for (const auto& [k, v] : entries_by_key) dirty_services.insert(k);
  }

  // The services a PeerAuthentication/AuthorizationPolicy of (ns, selector) can reach.
  void MarkPolicyScope(const std::string& ns, const std::optional<Labels>& selector, bool selector_mesh_wide) {
    if (bulk) return;
    if (ns == opts.root_namespace && (!selector || selector_mesh_wide)) return MarkAllServices();
    if (!selector) {
      if (auto it = svc_by_ns.find(ns); it != svc_by_ns.end()) dirty_services.insert(it->second.begin(), it->second.end());
      return;
    }
    for (const config::WorkloadEntry* w : WorkloadsMatching(ns, *selector)) MarkSelecting(w->ns, w->labels);
    // ServiceEntry inline endpoints carry labels too.
    if (auto it = svc_by_ns.find(ns); it != svc_by_ns.end()) {
      for (const auto& key : it->second) {
        if (entries_by_key.count(key)) dirty_services.insert(key);
      }
    }
  }

  // The workloads an AuthorizationPolicy can apply to (evaluator.hpp step 1):
  // its namespace, or every namespace from the root namespace; all of them
  // or those its selector matches.
  void MarkPolicyWorkloads(const authz::Policy& p) {
    if (bulk) return;
    auto mark = [&](const std::set<std::string>& keys) { dirty_workloads.insert(keys.begin(), keys.end()); };
    bool all = !p.selector || p.selector->empty();
    if (p.ns == opts.root_namespace) {
      for (const auto& [ns, keys] : wl_by_ns) {
        if (all) {
          mark(keys);
        } else {
          for (const config::WorkloadEntry* w : WorkloadsMatching(ns, *p.selector)) dirty_workloads.insert(w->key());
        }
      }
      return;
    }
    if (all) {
      if (auto it = wl_by_ns.find(p.ns); it != wl_by_ns.end()) mark(it->second);
      return;
    }
    for (const config::WorkloadEntry* w : WorkloadsMatching(p.ns, *p.selector)) dirty_workloads.insert(w->key());
  }

  std::vector<const config::WorkloadEntry*> WorkloadsMatching(const std::string& ns, const Labels& selector) const {
    std::vector<const config::WorkloadEntry*> out;
    if (selector.empty()) return out;
    const std::set<std::string>* smallest = nullptr;
    for (const auto& [k, v] : selector) {
      auto it = wl_by_label.find(LabelKey(ns, k, v));
      if (it == wl_by_label.end()) return out;
      if (!smallest || it->second.size() < smallest->size()) smallest = &it->second;
    }
    for (const auto& key : *smallest) {
      const config::WorkloadEntry& w = workloads.at(key);
      if (LabelsMatch(selector, w.labels)) out.push_back(&w);
    }
    return out;
  }

  // --- sources in and out ---------------------------------------------------------

  void IndexService(const ServiceModel& m) {
    IndexAdd(svc_by_host, m.hostname, m.key());
    IndexAdd(svc_by_ns, m.ns, m.key());
    if (!m.selector.empty()) {
      const auto& [k, v] = *m.selector.begin();
      IndexAdd(svc_by_selector, LabelKey(m.ns, k, v), m.key());
    }
  }

  void UnindexService(const ServiceModel& m) {
    IndexRemove(svc_by_host, m.hostname, m.key());
    IndexRemove(svc_by_ns, m.ns, m.key());
    if (!m.selector.empty()) {
      const auto& [k, v] = *m.selector.begin();
      IndexRemove(svc_by_selector, LabelKey(m.ns, k, v), m.key());
    }
  }

  void Remove(const ResourceKey& rk) {
    std::string key = rk.ns + "/" + rk.name;
    switch (KindOf(rk.kind)) {
      case Kind::kService:
        if (auto it = services.find(key); it != services.end()) {
          UnindexService(it->second);
          services.erase(it);
          MarkService(key);
        }
        break;
      case Kind::kServiceEntry:
        if (auto it = service_entries.find(rk); it != service_entries.end()) {
          for (const auto& m : it->second) {
            UnindexService(m);
            auto& keys = entries_by_key[m.key()];
            keys.erase(rk);
            if (keys.empty()) entries_by_key.erase(m.key());
            MarkService(m.key());
          }
          service_entries.erase(it);
        }
        break;
      case Kind::kWorkloadEntry:
        if (auto it = workloads.find(key); it != workloads.end()) {
          MarkSelecting(it->second.ns, it->second.labels);
          for (const auto& [k, v] : it->second.labels) {
            auto l = wl_by_label.find(LabelKey(rk.ns, k, v));
            if (l == wl_by_label.end()) continue;
            l->second.erase(key);
            if (l->second.empty()) wl_by_label.erase(l);
          }
          if (auto n = wl_by_ns.find(rk.ns); n != wl_by_ns.end()) {
            n->second.erase(key);
            if (n->second.empty()) wl_by_ns.erase(n);
          }
          policy->RemoveWorkload(rk.ns, rk.name);
          workloads.erase(it);
          dirty_workloads.insert(key);
        }
        break;
      case Kind::kDestinationRule:
        if (auto it = drs.find(rk); it != drs.end()) {
          MarkHost(it->second.host);
          if (IsWildcard(it->second.host)) {
            dr_wild.erase(rk);
          } else if (auto h = dr_by_host.find(it->second.host); h != dr_by_host.end()) {
            h->second.erase(rk);
            if (h->second.empty()) dr_by_host.erase(h);
          }
          drs.erase(it);
        }
        break;
      case Kind::kVirtualService:
        if (auto it = vss.find(rk); it != vss.end()) {
          for (const auto& host : it->second.hosts) {
            MarkHost(host);
            if (IsWildcard(host)) continue;
            if (auto h = vs_by_host.find(host); h != vs_by_host.end()) {
              h->second.erase(rk);
              if (h->second.empty()) vs_by_host.erase(h);
            }
          }
          vs_wild.erase(rk);
          vss.erase(it);
        }
        break;
      case Kind::kPeerAuthentication:
        if (auto it = pas.find(rk); it != pas.end()) {
          MarkPolicyScope(it->second.ns, it->second.selector, false);
          pa_by_ns[rk.ns].erase(rk);
          pas.erase(it);
        }
        break;
      case Kind::kAuthorizationPolicy:
        if (const authz::Policy* old = policy->FindPolicy(key)) {
          MarkPolicyScope(old->ns, old->selector, true);
          ap_by_ns[rk.ns].erase(key);
          MarkPolicyWorkloads(*old);
          policy->RemovePolicy(key);
        }
        break;
      case Kind::kOther:
        break;
    }
  }

  // One resource in: its typed view (built here, once), indexed and marked.
  void Add(const config::Resource& r) {
    const ResourceKey& rk = r.key;
    Remove(rk);
    std::string key = rk.ns + "/" + rk.name;
    config::Typed typed = config::TypedView(r);
    if (auto* svc = std::get_if<config::Service>(&typed)) {
      ServiceModel m = FromService(std::move(*svc));
      IndexService(m);
      MarkService(key);
      services.emplace(key, std::move(m));
    } else if (auto* se = std::get_if<config::ServiceEntry>(&typed)) {
      auto models = FromServiceEntry(*se);
      for (auto& m : models) {
        IndexService(m);
        entries_by_key[m.key()].insert(rk);
        MarkService(m.key());
      }
      if (!models.empty()) service_entries.emplace(rk, std::move(models));
    } else if (auto* w = std::get_if<config::WorkloadEntry>(&typed)) {
      for (const auto& [k, v] : w->labels) wl_by_label[LabelKey(rk.ns, k, v)].insert(key);
      wl_by_ns[rk.ns].insert(key);
      MarkSelecting(w->ns, w->labels);
      dirty_workloads.insert(key);
      policy->UpsertWorkload(*w);
      workloads.emplace(key, std::move(*w));
    } else if (auto* dr = std::get_if<config::DestinationRule>(&typed)) {
      if (dr->host.empty()) return;
      if (IsWildcard(dr->host)) {
        dr_wild.insert(rk);
      } else {
        dr_by_host[dr->host].insert(rk);
      }
      MarkHost(dr->host);
      drs.emplace(rk, std::move(*dr));
    } else if (auto* vs = std::get_if<config::VirtualService>(&typed)) {
      for (const auto& host : vs->hosts) {
        if (IsWildcard(host)) {
          vs_wild.insert(rk);
        } else {
          vs_by_host[host].insert(rk);
        }
        MarkHost(host);
      }
      vss.emplace(rk, std::move(*vs));
    } else if (auto* pa = std::get_if<config::PeerAuthentication>(&typed)) {
      pa_by_ns[rk.ns].insert(rk);
      MarkPolicyScope(pa->ns, pa->selector, false);
      pas.emplace(rk, std::move(*pa));
    } else if (auto* ap = std::get_if<config::AuthorizationPolicy>(&typed)) {
      ap_by_ns[rk.ns].insert(key);
      MarkPolicyScope(ap->ns, ap->selector, true);
      MarkPolicyWorkloads(*ap);
      policy->UpsertPolicy(std::move(*ap));
    }
  }

  // --- compiling one service --------------------------------------------------

  const ServiceModel* ModelFor(const std::string& key) const {
    if (auto it = services.find(key); it != services.end()) return &it->second;
    auto e = entries_by_key.find(key);
    if (e == entries_by_key.end()) return nullptr;
    for (const auto& rk : e->second) {  // the first ServiceEntry by namespace/name wins
      for (const auto& m : service_entries.at(rk)) {
        if (m.key() == key) return &m;
      }
    }
    return nullptr;
  }

  std::vector<Endpoint> EndpointsOf(const ServiceModel& m) const {
    std::vector<Endpoint> out;
    for (const config::WorkloadEntry* w : WorkloadsMatching(m.ns, m.selector)) {
      out.push_back({&w->ns, &w->labels, &w->ports, w->weight, w->addresses, w->key()});
    }
    for (const config::ServiceEntry::Endpoint& e : m.endpoints) {
      out.push_back({&m.ns, &e.labels, &e.ports, e.weight, {e.address}, ""});
    }
    return out;
  }

  // The DestinationRule/VirtualService for a host: exact hosts first, else
  // the most specific wildcard; among several, PickByNamespace.
  template <typename Model, typename HostsOf>
  const Model* FindByHost(const std::string& host, const std::string& ns,
                          const std::unordered_map<std::string, std::set<ResourceKey>>& exact,
                          const std::set<ResourceKey>& wild, const std::map<ResourceKey, Model>& models,
                          HostsOf hosts_of) const {
    if (auto it = exact.find(host); it != exact.end()) {
      if (const Model* m = PickByNamespace(it->second, models, ns, opts.root_namespace)) return m;
    }
    size_t best = 0;
    std::set<ResourceKey> candidates;
    for (const auto& rk : wild) {
      for (const auto& pattern : hosts_of(models.at(rk))) {
        if (!HostMatches(pattern, host)) continue;
        if (pattern.size() > best) {
          best = pattern.size();
          candidates.clear();
        }
        if (pattern.size() == best) candidates.insert(rk);
      }
    }
    return PickByNamespace(candidates, models, ns, opts.root_namespace);
  }

  // Istio's PeerAuthentication precedence: workload (selector, port level first)
  // > namespace > mesh (root namespace); UNSET inherits; default PERMISSIVE.
  config::MtlsMode EffectiveMtls(const std::string& ns, const Labels* labels, uint32_t port) const {
    auto in_ns = pa_by_ns.find(ns);
    if (in_ns != pa_by_ns.end() && labels) {
      for (const auto& rk : in_ns->second) {
        const auto& pa = pas.at(rk);
        if (!pa.selector || !LabelsMatch(*pa.selector, *labels)) continue;
        if (auto p = pa.port_modes.find(port); p != pa.port_modes.end() && p->second != config::MtlsMode::kUnset) return p->second;
        if (pa.mode != config::MtlsMode::kUnset) return pa.mode;
        break;
      }
    }
    auto level = [&](const std::string& n) -> config::MtlsMode {
      auto it = pa_by_ns.find(n);
      if (it == pa_by_ns.end()) return config::MtlsMode::kUnset;
      for (const auto& rk : it->second) {
        const auto& pa = pas.at(rk);
        if (!pa.selector) return pa.mode;
      }
      return config::MtlsMode::kUnset;
    };
    if (config::MtlsMode m = level(ns); m != config::MtlsMode::kUnset) return m;
    if (ns != opts.root_namespace) {
      if (config::MtlsMode m = level(opts.root_namespace); m != config::MtlsMode::kUnset) return m;
    }
    return config::MtlsMode::kPermissive;
  }

  bool AuthzNeedsL7(const Endpoint& ep) const {
    auto check = [&](const std::string& n, bool any_namespace) {
      auto it = ap_by_ns.find(n);
      if (it == ap_by_ns.end()) return false;
      for (const auto& key : it->second) {
        const authz::Policy* ap = policy->FindPolicy(key);
        if (!ap || !ap->needs_l7) continue;
        if (!any_namespace && n != *ep.ns) continue;
        if (!ap->selector || LabelsMatch(*ap->selector, *ep.labels)) return true;
      }
      return false;
    };
    return check(*ep.ns, false) || (*ep.ns != opts.root_namespace && check(opts.root_namespace, true));
  }

  std::optional<v1::Service> Compile(const std::string& key) const {
    const ServiceModel* m = ModelFor(key);
    if (!m) return std::nullopt;
    v1::Service out;
    out.set_namespace_(m->ns);
    out.set_name(m->name);
    out.set_hostname(m->hostname);
    if (m->vips.empty() || m->ports.empty()) return out;  // headless: a name without VIPs

    std::vector<Endpoint> endpoints = EndpointsOf(*m);
    bool authz_l7 = std::any_of(endpoints.begin(), endpoints.end(), [&](const Endpoint& ep) { return AuthzNeedsL7(ep); });
    const config::DestinationRule* dr = FindByHost(m->hostname, m->ns, dr_by_host, dr_wild, drs,
                                                [](const config::DestinationRule& d) { return std::vector{d.host}; });
    const config::VirtualService* vs = FindByHost(m->hostname, m->ns, vs_by_host, vs_wild, vss,
                                               [](const config::VirtualService& v) { return v.hosts; });
    bool any_pa = pa_by_ns.count(m->ns) || pa_by_ns.count(opts.root_namespace);

    for (const PortModel& port : m->ports) {
      config::TrafficPolicy policy = dr ? dr->For(port.port) : config::TrafficPolicy{};
      RoutePlan plan = PlanRoutes(vs, m->hostname, port);
      bool maglev = m->maglev || policy.consistent_hash.value_or(false);
      bool needs_l7 = authz_l7 || plan.needs_l7 || policy.l7_hash;
      bool needs_mtls = policy.mtls.value_or(false);
      if (!needs_mtls && any_pa) {
        if (endpoints.empty()) {
          needs_mtls = EffectiveMtls(m->ns, nullptr, 0) == config::MtlsMode::kStrict;
        } else {
          for (const Endpoint& ep : endpoints) {
            uint32_t target = TargetPort(*m, port, ep);
            if (target != 0 && EffectiveMtls(*ep.ns, ep.labels, target) == config::MtlsMode::kStrict) {
              needs_mtls = true;
              break;
            }
          }
        }
      }
      for (const IpAddr& vip : m->vips) {
        auto group = [&](const Labels* subset) {
          std::vector<WeightedEndpoint> eps;
          for (const Endpoint& ep : endpoints) {
            if (ep.weight == 0 || (subset && !LabelsMatch(*subset, *ep.labels))) continue;
            uint32_t target = TargetPort(*m, port, ep);
            if (target == 0) continue;
            for (const IpAddr& a : ep.addresses) {
              if (a.is_v4() == vip.is_v4()) eps.push_back({a, target, ep.weight, ep.workload});
            }
          }
          return eps;
        };
        std::vector<std::pair<uint64_t, std::vector<WeightedEndpoint>>> groups;
        if (!needs_l7 && !plan.destinations.empty()) {
          for (const RouteDestination& d : plan.destinations) {
            if (!d.subset) {
              groups.emplace_back(d.weight, group(nullptr));
              continue;
            }
            // A subset the DestinationRule does not define has no endpoints (Istio: no healthy upstream).
            const Labels* labels = nullptr;
            if (dr) {
              if (auto s = dr->subsets.find(*d.subset); s != dr->subsets.end()) labels = &s->second;
            }
            groups.emplace_back(d.weight, labels ? group(labels) : std::vector<WeightedEndpoint>{});
          }
        } else {
          groups.emplace_back(1, group(nullptr));
        }

        v1::ServicePort* sp = out.add_ports();
        sp->set_vip(AddrBytes(vip));
        sp->set_port(port.port);
        sp->set_protocol(port.udp ? v1::UDP : v1::TCP);
        sp->set_name(port.name);
        sp->set_app_protocol(port.app_protocol);
        sp->set_algorithm(maglev ? v1::LB_MAGLEV : v1::LB_RANDOM);
        if (maglev) sp->set_maglev_table_size(m->maglev_table_size);
        sp->set_needs_l7(needs_l7);
        sp->set_needs_mtls(needs_mtls);
        sp->set_steer_to_proxy(m->steer_to_proxy);
        for (const BlendedBackend& b : Blend(groups)) {
          v1::Backend* be = sp->add_backends();
          be->set_address(AddrBytes(b.address));
          be->set_port(b.port);
          be->set_weight(b.weight);
          be->set_workload(b.workload);
        }
      }
    }
    std::sort(out.mutable_ports()->begin(), out.mutable_ports()->end(),
              [](const v1::ServicePort& a, const v1::ServicePort& b) {
                if (a.vip() != b.vip()) return a.vip() < b.vip();
                if (a.port() != b.port()) return a.port() < b.port();
                return a.protocol() < b.protocol();
              });
    return out;
  }

  std::optional<OutWorkload> CompileWorkload(const std::string& key) {
    auto it = workloads.find(key);
    if (it == workloads.end()) return std::nullopt;
    const config::WorkloadEntry& w = it->second;
    OutWorkload out;
    out.node = w.node;
    out.proto.set_namespace_(w.ns);
    out.proto.set_name(w.name);
    for (const IpAddr& a : w.addresses) out.proto.add_addresses(AddrBytes(a));
    std::string sa = w.service_account.empty() ? "default" : w.service_account;
    out.proto.set_service_account(sa);
    out.proto.set_spiffe_id("spiffe://" + opts.trust_domain + "/ns/" + w.ns + "/sa/" + sa);
    for (const auto& [k, v] : w.labels) (*out.proto.mutable_labels())[k] = v;
    policy->Fill(w, &out.proto);
    return out;
  }

  // --- applying pending work ------------------------------------------------------

  ChangeSet Recompile() {
    using google::protobuf::util::MessageDifferencer;
    ChangeSet cs;
    // Mesh-wide identity tables first: workloads' entries name identities and policy ids.
    cs.tables = policy->Commit();
    // Workloads whose own identity moved (policy CIDRs changed), and the
    // members of groups whose entries changed (peers appeared or went).
    dirty_workloads.insert(cs.tables.rekeyed_workloads.begin(), cs.tables.rekeyed_workloads.end());
    std::set<std::string> relowered = policy->TakeRelowered();
    dirty_workloads.insert(relowered.begin(), relowered.end());
    for (const auto& key : dirty_services) {
      std::optional<v1::Service> now = Compile(key);
      auto it = out_services.find(key);
      if (!now) {
        if (it != out_services.end()) {
          out_services.erase(it);
          cs.services.insert(key);
        }
      } else if (it == out_services.end()) {
        out_services.emplace(key, std::move(*now));
        cs.services.insert(key);
      } else if (!MessageDifferencer::Equals(it->second, *now)) {
        it->second = std::move(*now);
        cs.services.insert(key);
      }
    }
    for (const auto& key : dirty_workloads) {
      std::optional<OutWorkload> now = CompileWorkload(key);
      auto it = out_workloads.find(key);
      std::set<std::string> nodes;
      if (it != out_workloads.end()) nodes.insert(it->second.node);
      if (now) nodes.insert(now->node);
      bool changed = false;
      if (it != out_workloads.end() && (!now || now->node != it->second.node)) {
        node_workloads[it->second.node].erase(key);
        changed = true;
      }
      if (!now) {
        if (it != out_workloads.end()) out_workloads.erase(it);
      } else if (it == out_workloads.end()) {
        node_workloads[now->node].insert(key);
        out_workloads.emplace(key, std::move(*now));
        changed = true;
      } else if (changed || !MessageDifferencer::Equals(it->second.proto, now->proto)) {
        node_workloads[now->node].insert(key);
        it->second = std::move(*now);
        changed = true;
      }
      if (changed) {
        cs.workloads.insert(key);
        cs.workload_nodes[key] = std::move(nodes);
      }
    }
    dirty_services.clear();
    dirty_workloads.clear();
    return cs;
  }
};

Compiler::Compiler(CompilerOptions opts) : state_(std::make_shared<State>()) {
  state_->opts = std::move(opts);
  state_->policy = std::make_unique<PolicyCompiler>(state_->opts.trust_domain, state_->opts.root_namespace,
                                                    state_->opts.state);
}

ChangeSet Compiler::Reset(const std::vector<config::Resource>& all) {
  State& s = *state_;
  // Start from empty sources but keep the output: the ChangeSet is what differs from it.
  State fresh;
  fresh.opts = s.opts;
  fresh.out_services = std::move(s.out_services);
  fresh.out_workloads = std::move(s.out_workloads);
  fresh.node_workloads = std::move(s.node_workloads);
  fresh.policy = std::move(s.policy);  // keeps numbers, ids and its last output
  fresh.policy->Clear();
  s = std::move(fresh);
  s.bulk = true;
  for (const auto& [key, svc] : s.out_services) s.dirty_services.insert(key);
  for (const auto& [key, w] : s.out_workloads) s.dirty_workloads.insert(key);
  for (const auto& r : all) s.Add(r);
  s.bulk = false;
  for (const auto& [key, m] : s.services) s.dirty_services.insert(key);
  for (const auto& [key, rks] : s.entries_by_key) s.dirty_services.insert(key);
  for (const auto& [key, w] : s.workloads) s.dirty_workloads.insert(key);
  return s.Recompile();
}

ChangeSet Compiler::Update(const std::vector<config::Resource>& upserted,
                           const std::vector<config::ResourceKey>& deleted) {
  State& s = *state_;
  for (const auto& r : upserted) s.Add(r);
  for (const auto& k : deleted) s.Remove(k);
  return s.Recompile();
}

v1::NodeConfig Compiler::Snapshot(const std::string& node) const {
  const State& s = *state_;
  v1::NodeConfig out;
  for (const auto& [key, svc] : s.out_services) *out.add_services() = svc;
  if (auto it = s.node_workloads.find(node); it != s.node_workloads.end()) {
    for (const auto& key : it->second) *out.add_local_workloads() = s.out_workloads.at(key).proto;
  }
  s.policy->FillTables(&out);
  return out;
}

v1::NodeConfigDelta Compiler::Delta(const std::string& node, const ChangeSet& changes) const {
  const State& s = *state_;
  v1::NodeConfigDelta out;
  for (const auto& key : changes.services) {
    if (auto it = s.out_services.find(key); it != s.out_services.end()) {
      *out.add_upserted_services() = it->second;
    } else {
      out.add_removed_services(key);
    }
  }
  for (const auto& key : changes.workloads) {
    auto it = s.out_workloads.find(key);
    if (it != s.out_workloads.end() && it->second.node == node) {
      *out.add_upserted_workloads() = it->second.proto;
      continue;
    }
    // Not here now: tell the node only if it had it (or if we cannot tell).
    auto nodes = changes.workload_nodes.find(key);
    if (nodes == changes.workload_nodes.end() || nodes->second.count(node)) out.add_removed_workloads(key);
  }
  s.policy->FillDelta(changes.tables, &out);
  return out;
}

Status Compiler::persist_status() const { return state_->policy->persist_status(); }

// [control-plane fan-out] See the header: the per-node part of Snapshot().
v1::NodeConfig Compiler::NodeSnapshot(const std::string& node) const {
  const State& s = *state_;
  v1::NodeConfig out;
  if (auto it = s.node_workloads.find(node); it != s.node_workloads.end()) {
    for (const auto& key : it->second) *out.add_local_workloads() = s.out_workloads.at(key).proto;
  }
  return out;
}

}  // namespace weft::controller
