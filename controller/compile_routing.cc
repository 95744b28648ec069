#include "controller/compile_routing.hpp"

#include <algorithm>
#include <map>
#include <numeric>

namespace weft::controller::compile {
namespace {

using VS = config::VirtualService;

// One rule (http or tcp) -> destinations, or nullopt when it needs L7.
std::optional<std::vector<RouteDestination>> L4Destinations(const VS::Rule& rule, const std::string& hostname,
                                                            const PortModel& port) {
  if (rule.other || !rule.has_route || rule.route.empty()) return std::nullopt;
  std::vector<RouteDestination> out;
  for (const VS::RouteDestination& r : rule.route) {
    if (r.other) return std::nullopt;  // headers: L7
    if (!r.destination || r.destination->other) return std::nullopt;
    if (r.destination->host != hostname) return std::nullopt;
    if (r.destination->port && *r.destination->port != port.port) return std::nullopt;  // re-targets another port
    RouteDestination d;
    d.subset = r.destination->subset;
    // A lone destination takes everything; with several, a missing weight is 0.
    d.weight = rule.route.size() == 1 ? 100 : r.weight.value_or(0);
    if (d.weight > 0) out.push_back(std::move(d));
  }
  if (out.empty()) return std::nullopt;  // all weights 0: let the proxy answer
  return out;
}

uint64_t Gcd(uint64_t a, uint64_t b) { return std::gcd(a, b); }

}  // namespace

RoutePlan PlanRoutes(const config::VirtualService* vs, const std::string& hostname, const PortModel& port) {
  RoutePlan plan;
  if (!vs) return plan;
  ProtocolClass cls = ClassOf(port.app_protocol);
  if (cls == ProtocolClass::kUdp) return plan;  // Istio does not route UDP
  if (vs->delegate) {
    plan.needs_l7 = true;
    return plan;
  }
  std::vector<const VS::Rule*> rules;
  auto add = [&](const std::vector<VS::Rule>& list) {
    for (const VS::Rule& r : list) rules.push_back(&r);
  };
  switch (cls) {
    case ProtocolClass::kHttp:
      add(vs->http);
      break;
    case ProtocolClass::kTls:
      if (!vs->tls.empty()) {  // SNI matching needs the ClientHello
        plan.needs_l7 = true;
        return plan;
      }
      add(vs->tcp);
      break;
    case ProtocolClass::kTcp:
      add(vs->tcp);
      break;
    case ProtocolClass::kUnknown:
      add(vs->http);
      add(vs->tcp);
      break;
    case ProtocolClass::kUdp:
      break;
  }
  if (rules.empty()) return plan;
  if (rules.size() > 1) {
    plan.needs_l7 = true;
    return plan;
  }
  auto dests = L4Destinations(*rules[0], hostname, port);
  if (!dests) {
    plan.needs_l7 = true;
    return plan;
  }
  plan.destinations = std::move(*dests);
  return plan;
}

std::vector<BlendedBackend> Blend(const std::vector<std::pair<uint64_t, std::vector<WeightedEndpoint>>>& groups) {
  // Totals per non-empty group and their lcm (exact scaling) if it stays small.
  using u128 = unsigned __int128;
  constexpr u128 kExactLimit = u128(1) << 62;
  std::vector<uint64_t> totals;
  u128 lcm = 1;
  bool exact = true;
  for (const auto& [share, eps] : groups) {
    if (share > UINT32_MAX) exact = false;  // keeps share * weight * lcm/total in 128 bits
    uint64_t total = 0;
    for (const auto& e : eps) total += e.weight;
    totals.push_back(total);
    if (total == 0 || share == 0) continue;
    if (exact) {
      lcm = lcm / Gcd(static_cast<uint64_t>(lcm), total) * total;
      if (lcm > kExactLimit) exact = false;
    }
  }
  std::map<std::pair<IpAddr, uint32_t>, std::pair<long double, std::string>> approx;
  std::map<std::pair<IpAddr, uint32_t>, u128> precise;
  for (size_t g = 0; g < groups.size(); ++g) {
    const auto& [share, eps] = groups[g];
    if (totals[g] == 0 || share == 0) continue;
    for (const auto& e : eps) {
      auto key = std::make_pair(e.address, e.port);
      auto& slot = approx[key];
      if (slot.second.empty()) slot.second = e.workload;
      slot.first += static_cast<long double>(share) * e.weight / totals[g];
      if (exact) {
        u128 w = u128(share) * e.weight * (lcm / totals[g]);
        if (w > kExactLimit) exact = false;
        precise[key] += w;
      }
    }
  }
  std::vector<BlendedBackend> out;
  if (exact) {
    uint64_t g = 0;
    for (const auto& [key, w] : precise) g = Gcd(g, static_cast<uint64_t>(w));
    bool fits = true;
    for (const auto& [key, w] : precise) fits &= w / g <= UINT32_MAX;
    if (fits) {
      for (const auto& [key, w] : precise) {
        out.push_back({key.first, key.second, static_cast<uint32_t>(w / g), approx[key].second});
      }
      return out;
    }
  }
  // Rounded: the largest backend gets ~2^20 so ratios keep 6 digits.
  long double max = 0;
  for (const auto& [key, v] : approx) max = std::max(max, v.first);
  for (const auto& [key, v] : approx) {
    long double scaled = v.first / max * (1 << 20);
    uint32_t w = static_cast<uint32_t>(std::max<long double>(1, scaled + 0.5L));
    out.push_back({key.first, key.second, w, v.second});
  }
  return out;
}

}  // namespace weft::controller::compile
