// Analyze: istioctl-analyze-style warnings for VirtualService references that
// do not resolve (destination hosts, subsets, gateways). Works on canonical JSON
// (it names fields by their index); host names resolve and match as in the
// typed model (model.hpp).
#include <map>
#include <set>

#include "config/model.hpp"
#include "config/resources.hpp"

namespace weft::config {
namespace {

using json = nlohmann::json;

constexpr std::string_view kNotFound = "ReferencedResourceNotFound";

std::string Str(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

const json& Items(const json& obj, const char* key) {
  static const json kEmpty = json::array();
  auto it = obj.find(key);
  return it != obj.end() && it->is_array() ? *it : kEmpty;
}

struct Registry {
  std::set<std::string> service_hosts;                     // Services' FQDNs
  std::vector<std::string> entry_hosts;                    // ServiceEntry hosts (may be wildcards)
  std::map<std::string, std::set<std::string>> subsets;    // DestinationRule host FQDN -> subsets
  std::set<std::pair<std::string, std::string>> gateways;  // (ns, name)

  // Reads Services, ServiceEntries, DestinationRules and Gateways (and
  // Analyze the VirtualServices): the Admin service copies only these kinds
  // out of the store (controller/admin_service.cc kAnalyzedKinds).
  explicit Registry(const std::vector<Resource>& all) {
    static const json kNoSpec = json::object();
    for (const auto& r : all) {
      const std::string& kind = r.key.kind;
      if (kind != "Service" && kind != "ServiceEntry" && kind != "DestinationRule" && kind != "Gateway") continue;
      auto it = r.object.find("spec");
      const json& spec = it != r.object.end() && it->is_object() ? *it : kNoSpec;  // no copy
      if (kind == "Service") {
        service_hosts.insert(r.key.name + "." + r.key.ns + "." + std::string(kServiceDomain));
      } else if (kind == "ServiceEntry") {
        for (const auto& h : Items(spec, "hosts")) entry_hosts.push_back(ResolveHost(h.get<std::string>(), r.key.ns));
      } else if (kind == "DestinationRule") {
        auto& names = subsets[ResolveHost(Str(spec, "host"), r.key.ns)];
        for (const auto& s : Items(spec, "subsets")) names.insert(Str(s, "name"));
      } else if (kind == "Gateway") {
        gateways.insert({r.key.ns, r.key.name});
      }
    }
  }

  bool HostExists(const std::string& fqdn) const {
    if (service_hosts.contains(fqdn)) return true;
    for (const auto& h : entry_hosts) {
      if (HostMatches(h, fqdn)) return true;
    }
    return false;
  }

  bool SubsetExists(const std::string& fqdn, const std::string& subset) const {
    for (const auto& [host, names] : subsets) {
      if (HostMatches(host, fqdn) && names.contains(subset)) return true;
    }
    return false;
  }
};

class VirtualServiceAnalyzer {
 public:
  VirtualServiceAnalyzer(const Registry& reg, const Resource& vs, std::vector<Diagnostic>& out)
      : reg_(reg), vs_(vs), out_(out) {}

  void Run() {
    const json spec = vs_.object.value("spec", json::object());
    Gateways(spec, "spec");
    for (const char* section : {"http", "tcp", "tls"}) {
      const json& rules = Items(spec, section);
      for (size_t i = 0; i < rules.size(); ++i) {
        std::string path = "spec." + std::string(section) + "[" + std::to_string(i) + "]";
        const json& matches = Items(rules[i], "match");
        for (size_t m = 0; m < matches.size(); ++m) Gateways(matches[m], path + ".match[" + std::to_string(m) + "]");
        const json& routes = Items(rules[i], "route");
        for (size_t d = 0; d < routes.size(); ++d) {
          if (routes[d].contains("destination")) {
            Destination(routes[d]["destination"], path + ".route[" + std::to_string(d) + "].destination");
          }
        }
        if (rules[i].contains("mirror")) Destination(rules[i]["mirror"], path + ".mirror");
        const json& mirrors = Items(rules[i], "mirrors");
        for (size_t d = 0; d < mirrors.size(); ++d) {
          if (mirrors[d].contains("destination")) {
            Destination(mirrors[d]["destination"], path + ".mirrors[" + std::to_string(d) + "].destination");
          }
        }
      }
    }
  }

 private:
  void Warn(std::string field, std::string message) {
    Diagnostic d;
    d.severity = Severity::kWarning;
    d.pos = vs_.pos;
    d.resource = vs_.key.ToString();
    d.field = std::move(field);
    d.message = std::move(message);
    d.code = std::string(kNotFound);
    out_.push_back(std::move(d));
  }

  void Destination(const json& dest, const std::string& path) {
    std::string host = Str(dest, "host");
    if (host.empty()) return;
    std::string fqdn = ResolveHost(host, vs_.key.ns);
    if (!reg_.HostExists(fqdn)) {
      Warn(path + ".host", "referenced host not found: \"" + host + "\" is neither a Service nor a ServiceEntry host");
    }
    std::string subset = Str(dest, "subset");
    if (!subset.empty() && !reg_.SubsetExists(fqdn, subset)) {
      Warn(path + ".subset", "referenced host+subset in DestinationRule not found: \"" + host + "+" + subset + "\"");
    }
  }

  void Gateways(const json& obj, const std::string& path) {
    const json& refs = Items(obj, "gateways");
    for (size_t i = 0; i < refs.size(); ++i) {
      std::string ref = refs[i].get<std::string>();
      if (ref == "mesh") continue;
      std::string ns = vs_.key.ns, name = ref;
      if (size_t slash = ref.find('/'); slash != std::string::npos) {
        ns = ref.substr(0, slash);
        name = ref.substr(slash + 1);
      } else if (size_t dot = ref.find('.'); dot != std::string::npos) {  // legacy "name.namespace[.svc...]"
        name = ref.substr(0, dot);
        ns = ref.substr(dot + 1, ref.find('.', dot + 1) - dot - 1);
      }
      if (!reg_.gateways.contains({ns, name})) {
        Warn(path + ".gateways[" + std::to_string(i) + "]", "referenced gateway not found: \"" + ref + "\"");
      }
    }
  }

  const Registry& reg_;
  const Resource& vs_;
  std::vector<Diagnostic>& out_;
};

}  // namespace

std::vector<Diagnostic> Analyze(const std::vector<Resource>& all) {
  std::vector<Diagnostic> out;
  try {
    Registry reg(all);
    for (const auto& r : all) {
      if (r.key.kind == "VirtualService") VirtualServiceAnalyzer(reg, r, out).Run();
    }
  } catch (const std::exception& e) {  // only on objects that did not come from ParseResources
    Diagnostic d;
    d.message = std::string("analyze: ") + e.what();
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace weft::config
