#include "controller/compile_routing.hpp"

#include <algorithm>
#include <map>
#include <numeric>

namespace weft::controller::compile {
namespace {

using nlohmann::json;

const json& Rules(const json& spec, std::string_view key) {
  static const json kEmpty = json::array();
  const json* f = Field(spec, key);
  return f && f->is_array() ? *f : kEmpty;
}

bool OnlyKeys(const json& j, std::initializer_list<std::string_view> allowed) {
  if (!j.is_object()) return false;
  for (const auto& [k, v] : j.items()) {
    if (v.is_null()) continue;
    if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) return false;
  }
  return true;
}

// One rule (http or tcp) -> destinations, or nullopt when it needs L7.
std::optional<std::vector<RouteDestination>> L4Destinations(const json& rule, std::string_view vs_ns,
                                                            const std::string& hostname, const PortModel& port) {
  // "name" labels the rule for humans; everything else but "route" changes behaviour.
  if (!OnlyKeys(rule, {"name", "route"})) return std::nullopt;
  const json* route = Field(rule, "route");
  if (!route || !route->is_array() || route->empty()) return std::nullopt;
  std::vector<RouteDestination> out;
  for (const json& r : *route) {
    if (!OnlyKeys(r, {"destination", "weight"})) return std::nullopt;  // headers: L7
    const json* dest = Field(r, "destination");
    if (!dest || !OnlyKeys(*dest, {"host", "subset", "port"})) return std::nullopt;
    if (ResolveHost(StringField(*dest, "host"), vs_ns) != hostname) return std::nullopt;
    if (const json* p = Field(*dest, "port")) {
      auto number = UintField(*p, "number");
      if (number && *number != port.port) return std::nullopt;  // re-targets another port
    }
    RouteDestination d;
    if (const json* s = Field(*dest, "subset"); s && s->is_string()) d.subset = s->get<std::string>();
    // A lone destination takes everything; with several, a missing weight is 0.
    auto w = UintField(r, "weight");
    d.weight = route->size() == 1 ? 100 : w.value_or(0);
    if (d.weight > 0) out.push_back(std::move(d));
  }
  if (out.empty()) return std::nullopt;  // all weights 0: let the proxy answer
  return out;
}

uint64_t Gcd(uint64_t a, uint64_t b) { return std::gcd(a, b); }

}  // namespace

RoutePlan PlanRoutes(const VirtualServiceModel* vs, const std::string& hostname, const PortModel& port) {
  RoutePlan plan;
  if (!vs) return plan;
  ProtocolClass cls = ClassOf(port.app_protocol);
  if (cls == ProtocolClass::kUdp) return plan;  // Istio does not route UDP
  const json& http = Rules(vs->spec, "http");
  const json& tcp = Rules(vs->spec, "tcp");
  const json& tls = Rules(vs->spec, "tls");
  if (Field(vs->spec, "delegate")) {
    plan.needs_l7 = true;
    return plan;
  }
  std::vector<const json*> rules;
  auto add = [&](const json& list) {
    for (const json& r : list) rules.push_back(&r);
  };
  switch (cls) {
    case ProtocolClass::kHttp:
      add(http);
      break;
    case ProtocolClass::kTls:
      if (!tls.empty()) {  // SNI matching needs the ClientHello
        plan.needs_l7 = true;
        return plan;
      }
      add(tcp);
      break;
    case ProtocolClass::kTcp:
      add(tcp);
      break;
    case ProtocolClass::kUnknown:
      add(http);
      add(tcp);
      break;
    case ProtocolClass::kUdp:
      break;
  }
  if (rules.empty()) return plan;
  if (rules.size() > 1) {
    plan.needs_l7 = true;
    return plan;
  }
  auto dests = L4Destinations(*rules[0], vs->ns, hostname, port);
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
