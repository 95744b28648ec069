#include "authz/lower.hpp"

#include <algorithm>
#include <set>

namespace weft::authz {
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

PeerLowering::PeerLowering(const std::vector<Policy>& policies, const Workload& workload, const EvalOptions& opts)
    : policies_(policies), workload_(workload), opts_(opts) {
  applicable_ = ApplicablePolicies(policies, workload, opts);
  for (const Policy* p : applicable_) names_.push_back(p->key());
  if (applicable_.empty()) return;
  const std::set<uint16_t> ports = MentionedPorts(applicable_);
  ports_.assign(ports.begin(), ports.end());
  // One port no policy mentions stands for every such port (the ANY port class).
  // Ports 1..65535 cannot all be mentioned by lists of ports, but be safe.
  for (uint32_t p = 1; p <= 65535; ++p) {
    if (!ports.contains(static_cast<uint16_t>(p))) {
      rep_port_ = static_cast<uint16_t>(p);
      break;
    }
  }
  // The ANY peer class: no identity, in no policy CIDR.
  Peer any_peer = Peer::Unknown();
  any_peer.cidrs = std::set<std::string>{};
  any_any_ = rep_port_ ? Decide(any_peer, rep_port_) : Decide(any_peer, ports_.front());
  for (uint16_t q : ports_) any_row_.push_back(Decide(any_peer, q));
}

Decision PeerLowering::Decide(const Peer& peer, uint16_t port) const {
  return Evaluate(policies_, workload_, peer, port, kProtoTcp, opts_);
}

std::vector<PolicyEntry> PeerLowering::AnyEntries() const {
  std::vector<PolicyEntry> out;
  if (!enforced()) return out;
  out.push_back(PolicyEntry{kAnyPeer, kAnyPort, kProtoTcp, WEFT_DIR_INGRESS, any_any_});
  for (size_t i = 0; i < ports_.size(); ++i) {
    if (any_row_[i] != any_any_) out.push_back(PolicyEntry{kAnyPeer, ports_[i], kProtoTcp, WEFT_DIR_INGRESS, any_row_[i]});
  }
  return out;
}

std::vector<PolicyEntry> PeerLowering::PeerEntries(uint32_t id, const IdentityInfo& info) const {
  std::vector<PolicyEntry> out;
  if (!enforced()) return out;
  auto emit = [&](uint16_t port, const Decision& d) {
    out.push_back(PolicyEntry{id, port, kProtoTcp, WEFT_DIR_INGRESS, d});
  };
  Peer peer = info.AsPeer();
  Decision d_any = rep_port_ ? Decide(peer, rep_port_) : any_any_;
  std::vector<Decision> row;
  row.reserve(ports_.size());
  for (uint16_t q : ports_) row.push_back(Decide(peer, q));
  // A: no (peer, ANY) entry: only valid when unmentioned ports fall through to (ANY, ANY) correctly.
  size_t cost_a = SIZE_MAX;
  if (d_any == any_any_) {
    cost_a = 0;
    for (size_t i = 0; i < ports_.size(); ++i) cost_a += row[i] != any_row_[i];
  }
  // B: a (peer, ANY) entry and the ports that differ from it.
  size_t cost_b = 1;
  for (size_t i = 0; i < ports_.size(); ++i) cost_b += row[i] != d_any;
  if (cost_a <= cost_b) {
    for (size_t i = 0; i < ports_.size(); ++i) {
      if (row[i] != any_row_[i]) emit(ports_[i], row[i]);
    }
  } else {
    emit(kAnyPort, d_any);
    for (size_t i = 0; i < ports_.size(); ++i) {
      if (row[i] != d_any) emit(ports_[i], row[i]);
    }
  }
  return out;
}

PolicyEntry PeerLowering::UdpEntry() {
  // UDP is not subject to AuthorizationPolicy: say so explicitly.
  return PolicyEntry{kAnyPeer, kAnyPort, kProtoUdp, WEFT_DIR_INGRESS, Decision{Verdict::kAllow, Reason::kNotEnforced, ""}};
}

LoweredPolicy Lower(const std::vector<Policy>& policies, const Workload& workload, const IdentityTable& identities,
                    const EvalOptions& opts) {
  LoweredPolicy out;
  PeerLowering pl(policies, workload, opts);
  out.policies = pl.policies();
  if (!pl.enforced()) return out;
  out.enforce_ingress = true;
  out.entries = pl.AnyEntries();
  for (const auto& [id, info] : identities.by_id) {
    auto peer = pl.PeerEntries(id, info);
    out.entries.insert(out.entries.end(), peer.begin(), peer.end());
  }
  out.entries.push_back(PeerLowering::UdpEntry());
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

}  // namespace weft::authz
