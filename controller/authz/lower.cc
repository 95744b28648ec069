#include "controller/authz/lower.hpp"

#include <algorithm>
#include <set>

namespace weft::controller::authz {
namespace {

std::set<uint16_t> MentionedPorts(const std::vector<const Policy*>& applicable) {
  std::set<uint16_t> out;
  for (const Policy* p : applicable) {
    for (const auto& r : p->rules) {
      for (const auto& o : r.to) {
        out.insert(o.ports.begin(), o.ports.end());
        out.insert(o.not_ports.begin(), o.not_ports.end());
      }
      for (const auto& c : r.when) {
        if (c.key != Condition::Key::kDestinationPort) continue;
        out.insert(c.port_values.begin(), c.port_values.end());
        out.insert(c.port_not_values.begin(), c.port_not_values.end());
      }
    }
  }
  return out;
}

}  // namespace

LoweredPolicy Lower(const std::vector<Policy>& policies, const Workload& workload, const IdentityTable& identities,
                    const EvalOptions& opts) {
  LoweredPolicy out;
  auto applicable = ApplicablePolicies(policies, workload, opts);
  for (const Policy* p : applicable) out.policies.push_back(p->key());
  if (applicable.empty()) return out;
  out.enforce_ingress = true;

  const std::set<uint16_t> ports = MentionedPorts(applicable);
  // One port no policy mentions stands for every such port (the ANY port class).
  // Ports 1..65535 cannot all be mentioned by lists of ports, but be safe.
  uint16_t rep_port = 0;
  for (uint32_t p = 1; p <= 65535; ++p) {
    if (!ports.contains(static_cast<uint16_t>(p))) {
      rep_port = static_cast<uint16_t>(p);
      break;
    }
  }
  auto decide = [&](const Peer& peer, uint16_t port) {
    return Evaluate(policies, workload, peer, port, kProtoTcp, opts);
  };
  auto emit = [&](uint32_t peer, uint16_t port, const Decision& d) {
    out.entries.push_back(PolicyEntry{peer, port, kProtoTcp, WEFT_DIR_INGRESS, d});
  };

  // The ANY peer class: no identity, in no policy CIDR.
  Peer any_peer = Peer::Unknown();
  any_peer.cidrs = std::set<std::string>{};
  const Decision any_any = rep_port ? decide(any_peer, rep_port) : decide(any_peer, *ports.begin());
  std::map<uint16_t, Decision> any_row;
  emit(kAnyPeer, kAnyPort, any_any);
  for (uint16_t q : ports) {
    any_row[q] = decide(any_peer, q);
    if (any_row[q] != any_any) emit(kAnyPeer, q, any_row[q]);
  }

  for (const auto& [id, info] : identities.by_id) {
    Peer peer = info.AsPeer();
    Decision d_any = rep_port ? decide(peer, rep_port) : any_any;
    std::map<uint16_t, Decision> row;
    for (uint16_t q : ports) row[q] = decide(peer, q);
    // A: no (peer, ANY) entry: only valid when unmentioned ports fall through to (ANY, ANY) correctly.
    size_t cost_a = SIZE_MAX;
    if (d_any == any_any) {
      cost_a = 0;
      for (uint16_t q : ports) cost_a += row[q] != any_row[q];
    }
    // B: a (peer, ANY) entry and the ports that differ from it.
    size_t cost_b = 1;
    for (uint16_t q : ports) cost_b += row[q] != d_any;
    if (cost_a <= cost_b) {
      for (uint16_t q : ports) {
        if (row[q] != any_row[q]) emit(id, q, row[q]);
      }
    } else {
      emit(id, kAnyPort, d_any);
      for (uint16_t q : ports) {
        if (row[q] != d_any) emit(id, q, row[q]);
      }
    }
  }

  // UDP is not subject to AuthorizationPolicy: say so explicitly.
  out.entries.push_back(PolicyEntry{kAnyPeer, kAnyPort, kProtoUdp, WEFT_DIR_INGRESS,
                                    Decision{Verdict::kAllow, Reason::kNotEnforced, ""}});
  return out;
}

uint32_t DropReasonOf(const Decision& d) {
  if (d.verdict == Verdict::kAllow) return WEFT_DROP_NONE;
  return d.reason == Reason::kDefaultDeny ? WEFT_DROP_POLICY_DEFAULT : WEFT_DROP_POLICY_DENIED;
}

Decision Lookup(const LoweredPolicy& lowered, uint32_t peer_identity, uint16_t port, uint8_t proto) {
  const Decision not_enforced{Verdict::kAllow, proto == kProtoTcp ? Reason::kNoPolicy : Reason::kNotEnforced, ""};
  if (!lowered.enforce_ingress) return not_enforced;
  auto find = [&](uint32_t peer, uint16_t p) -> const PolicyEntry* {
    for (const auto& e : lowered.entries) {
      if (e.peer_identity == peer && e.port == p && e.proto == proto && e.direction == WEFT_DIR_INGRESS) return &e;
    }
    return nullptr;
  };
  // The kernel never looks up the wildcard values as a packet's own.
  const std::pair<uint32_t, uint16_t> order[] = {
      {peer_identity, port}, {peer_identity, kAnyPort}, {kAnyPeer, port}, {kAnyPeer, kAnyPort}};
  for (const auto& [peer, p] : order) {
    if (const PolicyEntry* e = find(peer, p)) return e->decision;
  }
  return not_enforced;
}

}  // namespace weft::controller::authz
