// kind: Service (v1), the subset Weft models: VIPs, ports, selector, affinity.
// Validation only (positions and messages); the typed Service is built from
// the stored object by config::TypedView (typed.cc).
#include <charconv>
#include <map>

#include "config/limits.hpp"
#include "config/names.hpp"
#include "config/resource_parsers.hpp"
#include "weft/bpf_abi.h"

namespace weft::config {
namespace {

constexpr std::string_view kAnnotationPrefix = "weft.io/";

// Maglev table sizes must be prime (agent/lb/maglev.cc builds the table).
bool IsPrime(uint32_t n) {
  if (n < 2) return false;
  for (uint64_t d = 2; d * d <= n; ++d) {
    if (n % d == 0) return false;
  }
  return true;
}

std::string AnnotationPath(std::string_view key) { return FieldPath("metadata.annotations", key); }

std::string FamilyName(const IpAddr& ip) { return ip.is_v4() ? "IPv4" : "IPv6"; }

struct ClusterIp {
  std::string text;
  Location at;
};

// spec.clusterIP / spec.clusterIPs -> VIPs. "None" (headless) and "" give none.
// Returns whether the Service is headless.
bool ParseVips(FieldReader& r, const YAML::Node& spec, ParsedService& out) {
  std::vector<ClusterIp> ips;
  std::optional<std::string> single;
  if (auto node = FieldReader::Find(spec, "clusterIP")) {
    if ((single = r.String(*node, "spec.clusterIP"))) ips.push_back({*single, LocationOf(*node)});
  }
  if (auto list = FieldReader::Find(spec, "clusterIPs"); list && r.ExpectSequence(*list, "spec.clusterIPs")) {
    ips.clear();
    for (size_t i = 0; i < list->size(); ++i) {
      auto text = r.String((*list)[i], IndexPath("spec.clusterIPs", i));
      if (text) ips.push_back({*text, LocationOf((*list)[i])});
    }
    if (list->size() > 2) r.Error(*list, "spec.clusterIPs", "at most 2 entries (one per IP family)");
    if (single && !single->empty() && !ips.empty() && ips[0].text != *single) {
      r.Error(ips[0].at, "spec.clusterIPs[0]", "\"" + ips[0].text + "\" must match spec.clusterIP \"" + *single + "\"");
    }
  }
  bool headless = false;
  for (size_t i = 0; i < ips.size(); ++i) {
    std::string path = ips.size() > 1 || !single ? IndexPath("spec.clusterIPs", i) : "spec.clusterIP";
    if (ips[i].text.empty()) continue;
    if (ips[i].text == "None") {
      headless = true;
      if (ips.size() > 1) r.Error(ips[i].at, path, "\"None\" must be the only cluster IP");
      continue;
    }
    auto ip = IpAddr::Parse(ips[i].text);
    if (!ip) {
      r.Error(ips[i].at, path, "invalid IP address \"" + ips[i].text + "\"");
      continue;
    }
    for (const auto& seen : out.vips) {
      if (seen.is_v4() == ip->is_v4()) r.Error(ips[i].at, path, "two " + FamilyName(*ip) + " cluster IPs");
    }
    out.vips.push_back(*ip);
    out.vip_sources.push_back({ips[i].at, path});
  }
  return headless;
}

// What the checks across ports need of one port.
struct PortSeen {
  std::string name;
  uint16_t port = 0;
  Protocol protocol = Protocol::kTcp;
};

std::optional<PortSeen> ParsePort(FieldReader& r, const YAML::Node& node, const std::string& path) {
  if (!r.ExpectMap(node, path, {"name", "port", "targetPort", "protocol", "appProtocol"})) return std::nullopt;
  PortSeen port;
  if (auto n = FieldReader::Find(node, "name"); n) {
    if (auto name = r.String(*n, path + ".name")) {
      if (std::string why = CheckDns1123Label(*name); !why.empty()) {
        r.Error(*n, path + ".name", "\"" + *name + "\" " + why);
      }
      port.name = *name;
    }
  }
  if (auto n = FieldReader::Find(node, "port")) {
    if (auto v = r.Int(*n, path + ".port", 1, 65535)) port.port = static_cast<uint16_t>(*v);
  } else {
    r.Error(node, path + ".port", "required field is missing");
  }
  if (auto n = FieldReader::Find(node, "targetPort")) {
    if (FieldReader::IsInteger(*n)) {
      r.Int(*n, path + ".targetPort", 1, 65535);
    } else if (auto name = r.String(*n, path + ".targetPort")) {
      if (std::string why = CheckIanaSvcName(*name); !why.empty()) {
        r.Error(*n, path + ".targetPort", "invalid port name \"" + *name + "\": " + why);
      }
    }
  }
  if (auto n = FieldReader::Find(node, "protocol")) {
    if (auto proto = r.String(*n, path + ".protocol")) {
      if (*proto == "UDP") {
        port.protocol = Protocol::kUdp;
      } else if (*proto == "SCTP") {
        r.Error(*n, path + ".protocol", "SCTP is unsupported (supported: TCP, UDP)");
      } else if (*proto != "TCP") {
        r.Error(*n, path + ".protocol", "unsupported value \"" + *proto + "\" (supported: TCP, UDP)");
      }
    }
  }
  if (auto n = FieldReader::Find(node, "appProtocol")) r.String(*n, path + ".appProtocol");
  return port;
}

// A headless Service may have no ports; any other needs at least one.
void ParsePorts(FieldReader& r, const YAML::Node& spec, bool headless) {
  auto list = FieldReader::Find(spec, "ports");
  if (!list) {
    if (!headless) r.Error(spec, "spec.ports", "required field is missing");
    return;
  }
  if (!r.ExpectSequence(*list, "spec.ports")) return;
  if (list->size() > kMaxServicePorts) {
    r.Error(*list, "spec.ports",
            std::to_string(list->size()) + " ports, more than " + std::to_string(kMaxServicePorts) +
                " (the limit: each port of each cluster IP takes one of the agent's " +
                std::to_string(WEFT_DEFAULT_MAX_SERVICES - 1) + " service ids)");
    return;
  }
  std::map<std::string, size_t> names;
  std::map<std::pair<uint16_t, Protocol>, size_t> numbers;
  for (size_t i = 0; i < list->size(); ++i) {
    const YAML::Node& node = (*list)[i];
    std::string path = IndexPath("spec.ports", i);
    auto port = ParsePort(r, node, path);
    if (!port) continue;
    if (port->name.empty() && list->size() > 1) {
      r.Error(node, path + ".name", "required when the Service has more than one port");
    }
    if (!port->name.empty() && !names.emplace(port->name, i).second) {
      r.Error(*FieldReader::Find(node, "name"), path + ".name",
              "duplicate port name \"" + port->name + "\" (also " + IndexPath("spec.ports", names[port->name]) + ")");
    }
    auto key = std::make_pair(port->port, port->protocol);
    if (port->port != 0 && !numbers.emplace(key, i).second) {
      std::string proto = port->protocol == Protocol::kTcp ? "TCP" : "UDP";
      r.Error(*FieldReader::Find(node, "port"), path + ".port",
              "duplicate port " + std::to_string(port->port) + "/" + proto + " (also " +
                  IndexPath("spec.ports", numbers[key]) + ")");
    }
  }
  if (list->size() == 0 && !headless) r.Error(*list, "spec.ports", "at least one port is required");
}

// sessionAffinity and the weft.io/ annotations choose the LB algorithm.
void ParseLoadBalancing(FieldReader& r, const YAML::Node& spec, const Metadata& meta) {
  bool client_ip = false;
  if (auto n = FieldReader::Find(spec, "sessionAffinity")) {
    if (auto v = r.String(*n, "spec.sessionAffinity")) {
      client_ip = *v == "ClientIP";
      if (!client_ip && *v != "None") {
        r.Error(*n, "spec.sessionAffinity", "unsupported value \"" + *v + "\" (supported: None, ClientIP)");
      }
    }
  }
  bool maglev = client_ip;
  if (!meta.annotations_node) return;
  auto at = [&](std::string_view key) -> YAML::Node {
    for (const auto& kv : *meta.annotations_node) {
      if (kv.first.Scalar() == key) return kv.second;
    }
    return *meta.annotations_node;
  };
  for (const auto& [key, value] : meta.annotations) {
    if (key.rfind(kAnnotationPrefix, 0) != 0) continue;
    std::string path = AnnotationPath(key);
    if (key == kAlgorithmAnnotation) {
      if (value == "maglev") {
        maglev = true;
      } else if (value == "random") {
        if (client_ip) r.Error(at(key), path, "\"random\" conflicts with spec.sessionAffinity: ClientIP");
      } else {
        r.Error(at(key), path, "unsupported value \"" + value + "\" (supported: maglev, random)");
      }
    } else if (key == kSteerAnnotation) {
      if (value != "true" && value != "false") {
        r.Error(at(key), path, "expected \"true\" or \"false\", got \"" + value + "\"");
      }
    } else if (key != kMaglevSizeAnnotation) {
      r.Error(at(key), path, "unknown Weft annotation");
    }
  }
  auto size = meta.annotations.find(std::string(kMaglevSizeAnnotation));
  if (size == meta.annotations.end()) return;
  std::string path = AnnotationPath(kMaglevSizeAnnotation);
  uint32_t v = 0;
  auto [end, ec] = std::from_chars(size->second.data(), size->second.data() + size->second.size(), v);
  if (ec != std::errc() || end != size->second.data() + size->second.size() || !IsPrime(v) ||
      v > WEFT_MAGLEV_MAX_SIZE) {
    r.Error(at(size->first), path,
            "\"" + size->second + "\" must be a prime <= " + std::to_string(WEFT_MAGLEV_MAX_SIZE));
  } else if (!maglev) {
    r.Error(at(size->first), path, "only valid with Maglev (weft.io/lb-algorithm: maglev or sessionAffinity: ClientIP)");
  }
}

}  // namespace

std::optional<YAML::Node> RequiredSpec(FieldReader& r, const YAML::Node& doc,
                                       std::initializer_list<std::string_view> known) {
  auto spec = FieldReader::Find(doc, "spec");
  if (!spec) {
    r.Error(doc, "spec", "required field is missing");
    return std::nullopt;
  }
  if (!r.ExpectMap(*spec, "spec", known)) return std::nullopt;
  return spec;
}

std::optional<ParsedService> ParseService(FieldReader& r, const YAML::Node& doc, const Metadata& meta) {
  size_t errors = r.errors();
  auto spec = RequiredSpec(r, doc,
                           {"clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy", "ports", "selector",
                            "sessionAffinity", "type"});
  if (!spec) return std::nullopt;
  ParsedService out{meta.ns, meta.name, {}, {}};
  // Kubernetes' dual-stack fields: validated; the VIPs themselves come from clusterIP(s).
  if (auto pol = FieldReader::Find(*spec, "ipFamilyPolicy")) {
    auto v = r.String(*pol, "spec.ipFamilyPolicy");
    if (v && *v != "SingleStack" && *v != "PreferDualStack" && *v != "RequireDualStack")
      r.Error(*pol, "spec.ipFamilyPolicy",
              "unsupported value \"" + *v + "\" (supported: SingleStack, PreferDualStack, RequireDualStack)");
  }
  if (auto fams = FieldReader::Find(*spec, "ipFamilies")) {
    if (!fams->IsSequence() || fams->size() == 0 || fams->size() > 2) {
      r.Error(*fams, "spec.ipFamilies", "must be a list of one or two of IPv4, IPv6");
    } else {
      for (size_t i = 0; i < fams->size(); ++i) {
        std::string path = "spec.ipFamilies[" + std::to_string(i) + "]";
        auto v = r.String((*fams)[i], path);
        if (v && *v != "IPv4" && *v != "IPv6")
          r.Error((*fams)[i], path, "unsupported value \"" + *v + "\" (supported: IPv4, IPv6)");
      }
    }
  }
  if (auto type = FieldReader::Find(*spec, "type")) {
    auto v = r.String(*type, "spec.type");
    if (v && *v != "ClusterIP") r.Error(*type, "spec.type", "unsupported value \"" + *v + "\" (supported: ClusterIP)");
  }
  bool headless = ParseVips(r, *spec, out);
  ParsePorts(r, *spec, headless);
  if (auto sel = FieldReader::Find(*spec, "selector")) r.LabelMap(*sel, "spec.selector");
  ParseLoadBalancing(r, *spec, meta);
  if (r.errors() != errors) return std::nullopt;
  return out;
}

}  // namespace weft::config
