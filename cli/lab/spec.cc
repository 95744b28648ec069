#include "cli/lab/spec.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <regex>
#include <set>
#include <sstream>

#include "weft/ip.hpp"

#include <nlohmann/json.hpp>

namespace weft::cli::lab {

namespace {

// Lower-case DNS label: pod names become netns and cgroup names.
bool ValidName(const std::string& s, size_t max) {
  static const std::regex re("[a-z0-9]([-a-z0-9]*[a-z0-9])?");
  return !s.empty() && s.size() <= max && std::regex_match(s, re);
}

std::string Where(const std::string& path, size_t doc, const YAML::Node& n) {
  std::string w = path + ": document " + std::to_string(doc + 1);
  if (n && n.Mark().line >= 0) w += " (line " + std::to_string(n.Mark().line + 1) + ")";
  return w;
}

std::string Str(const YAML::Node& n, const std::string& def = "") {
  if (!n || !n.IsScalar()) return def;
  return n.as<std::string>();
}

Result<Labels> ReadLabels(const YAML::Node& n, const std::string& where) {
  Labels out;
  if (!n || n.IsNull()) return out;
  if (!n.IsMap()) return Status::Error(where + ": labels must be a map");
  for (const auto& kv : n) {
    if (!kv.second.IsScalar()) return Status::Error(where + ": label " + kv.first.as<std::string>() + " must be a string");
    out[kv.first.as<std::string>()] = kv.second.as<std::string>();
  }
  return out;
}

Result<DeploymentSpec> ParseDeployment(const YAML::Node& doc, const std::string& where) {
  DeploymentSpec d;
  d.name = Str(doc["metadata"]["name"]);
  if (!ValidName(d.name, 40))
    return Status::Error(where + ": Deployment metadata.name '" + d.name +
                         "' must be a lower-case DNS label of at most 40 characters");
  std::string w = where + ": Deployment " + d.name;
  d.ns = Str(doc["metadata"]["namespace"], "default");
  if (!ValidName(d.ns, 63)) return Status::Error(w + ": bad metadata.namespace '" + d.ns + "'");
  const YAML::Node spec = doc["spec"];
  if (!spec || !spec.IsMap()) return Status::Error(w + ": spec missing");
  if (spec["replicas"]) {
    try {
      d.replicas = spec["replicas"].as<int>();
    } catch (const YAML::Exception&) {
      return Status::Error(w + ": spec.replicas must be an integer");
    }
    if (d.replicas < 0 || d.replicas > 100) return Status::Error(w + ": spec.replicas must be in 0..100");
  }
  const YAML::Node tmpl = spec["template"];
  auto labels = ReadLabels(tmpl["metadata"]["labels"], w + ": spec.template.metadata.labels");
  if (!labels.ok()) return labels.status();
  d.labels = *labels;
  d.service_account = Str(tmpl["spec"]["serviceAccountName"], Str(tmpl["spec"]["serviceAccount"], "default"));
  const YAML::Node containers = tmpl["spec"]["containers"];
  if (containers && !containers.IsSequence()) return Status::Error(w + ": spec.template.spec.containers must be a list");
  std::set<uint16_t> seen;
  for (const auto& c : containers) {
    const YAML::Node ports = c["ports"];
    if (!ports) continue;
    if (!ports.IsSequence()) return Status::Error(w + ": containers[].ports must be a list");
    for (const auto& p : ports) {
      ContainerPort cp;
      cp.name = Str(p["name"]);
      int port = 0;
      try {
        port = p["containerPort"].as<int>();
      } catch (const YAML::Exception&) {
        return Status::Error(w + ": containerPort missing or not a number");
      }
      if (port < 1 || port > 65535) return Status::Error(w + ": containerPort " + std::to_string(port) + " out of range");
      cp.port = static_cast<uint16_t>(port);
      if (seen.insert(cp.port).second || !cp.name.empty()) d.ports.push_back(cp);
    }
  }
  return d;
}

Result<ServiceSpec> ParseService(const YAML::Node& doc, const std::string& where) {
  ServiceSpec s;
  s.name = Str(doc["metadata"]["name"]);
  if (!ValidName(s.name, 63)) return Status::Error(where + ": Service metadata.name '" + s.name + "' is not a DNS label");
  s.ns = Str(doc["metadata"]["namespace"], "default");
  if (!ValidName(s.ns, 63)) return Status::Error(where + ": Service " + s.name + ": bad metadata.namespace '" + s.ns + "'");
  s.doc = YAML::Clone(doc);
  const YAML::Node spec = doc["spec"];
  std::string policy = Str(spec["ipFamilyPolicy"]);
  s.dual_stack = policy == "PreferDualStack" || policy == "RequireDualStack";
  std::string cip = Str(spec["clusterIP"]);
  s.headless = cip == "None" || Str(spec["type"]) == "ExternalName";
  if (!s.headless) {
    std::vector<std::string> ips;
    if (!cip.empty()) ips.push_back(cip);
    if (spec["clusterIPs"] && spec["clusterIPs"].IsSequence())
      for (const auto& ip : spec["clusterIPs"])
        if (std::find(ips.begin(), ips.end(), Str(ip)) == ips.end()) ips.push_back(Str(ip));
    for (const auto& ip : ips)
      if (!IpAddr::Parse(ip))
        return Status::Error(where + ": Service " + s.name + ": clusterIP '" + ip + "' is not an IP address");
    s.fixed_ips = ips;
  }
  return s;
}

}  // namespace

bool LabSpec::dual_stack() const {
  return std::any_of(services.begin(), services.end(), [](const ServiceSpec& s) { return s.dual_stack; });
}

Result<LabSpec> LoadSpec(const std::string& path) {
  LabSpec spec;
  spec.path = path;
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAllFromFile(path);
  } catch (const YAML::BadFile&) {
    return Status::Error(path + ": cannot read file");
  } catch (const YAML::Exception& e) {
    return Status::Error(path + ": invalid YAML: " + e.what());
  }
  std::set<std::string> deployments, services, pods;
  try {
    for (size_t i = 0; i < docs.size(); ++i) {
      const YAML::Node& doc = docs[i];
      if (!doc || doc.IsNull()) continue;
      std::string where = Where(path, i, doc);
      if (!doc.IsMap()) return Status::Error(where + ": expected a Kubernetes object (a map)");
      std::string kind = Str(doc["kind"]);
      if (kind == "Deployment") {
        auto d = ParseDeployment(doc, where);
        if (!d.ok()) return d.status();
        if (!deployments.insert(d->ns + "/" + d->name).second)
          return Status::Error(where + ": Deployment " + d->name + " defined twice");
        for (int r = 0; r < d->replicas; ++r)
          if (!pods.insert(d->name + "-" + std::to_string(r)).second)
            return Status::Error(where + ": pod name " + d->name + "-" + std::to_string(r) +
                                 " clashes (pod names are <deployment>-<index> across namespaces)");
        spec.deployments.push_back(std::move(*d));
      } else if (kind == "Service") {
        auto s = ParseService(doc, where);
        if (!s.ok()) return s.status();
        if (!services.insert(s->ns + "/" + s->name).second)
          return Status::Error(where + ": Service " + s->ns + "/" + s->name + " defined twice");
        spec.services.push_back(std::move(*s));
      } else if (kind == "WorkloadEntry") {
        spec.workload_entries.push_back(YAML::Clone(doc));
      } else if (kind != "ServiceAccount") {
        spec.ignored_kinds[kind.empty() ? "(no kind)" : kind]++;
      }
    }
  } catch (const YAML::Exception& e) {
    return Status::Error(path + ": unexpected structure: " + e.what());
  }
  return spec;
}

std::string RenderPodWorkloads(const std::vector<PodView>& pods) {
  std::ostringstream out;
  out << "# Generated by weftctl lab: one WorkloadEntry per pod (and per pod IPv6 address).\n";
  for (const auto& p : pods) {
    auto entry = [&](const std::string& name, const std::string& addr) {
      YAML::Node doc;
      doc["apiVersion"] = "networking.istio.io/v1";
      doc["kind"] = "WorkloadEntry";
      doc["metadata"]["name"] = name;
      doc["metadata"]["namespace"] = p.ns;
      doc["metadata"]["annotations"]["weft.io/node"] = p.node;
      doc["spec"]["address"] = addr;
      for (const auto& [k, v] : p.labels) doc["spec"]["labels"][k] = v;
      doc["spec"]["serviceAccount"] = p.service_account;
      for (const auto& cp : p.ports)
        if (!cp.name.empty()) doc["spec"]["ports"][cp.name] = static_cast<int>(cp.port);
      YAML::Emitter e;
      e << doc;
      out << "---\n" << e.c_str() << "\n";
    };
    entry(p.name, p.ip);
    if (!p.ip6.empty()) entry(p.name + "-v6", p.ip6);
  }
  return out.str();
}

std::vector<std::string> WorkloadNames(const PodView& pod) {
  std::vector<std::string> out = {pod.name};
  if (!pod.ip6.empty()) out.push_back(pod.name + "-v6");
  return out;
}

ServiceVips VipsOfService(const std::string& name, const std::string& ns, const nlohmann::json& object) {
  ServiceVips v{name, ns, {}};
  const auto spec = object.value("spec", nlohmann::json::object());
  std::vector<std::string> ips;
  if (spec.contains("clusterIPs") && spec["clusterIPs"].is_array())
    for (const auto& ip : spec["clusterIPs"])
      if (ip.is_string()) ips.push_back(ip.get<std::string>());
  if (ips.empty() && spec.contains("clusterIP") && spec["clusterIP"].is_string())
    ips.push_back(spec["clusterIP"].get<std::string>());
  for (const auto& ip : ips) {
    auto a = IpAddr::Parse(ip);
    if (a) v.vips.push_back(a->ToString());  // "None" (headless) is no address
  }
  std::stable_sort(v.vips.begin(), v.vips.end(), [](const std::string& x, const std::string& y) {
    return IpAddr::Parse(x)->is_v4() && !IpAddr::Parse(y)->is_v4();
  });
  return v;
}

std::string RenderHosts(const PodView& pod, const std::vector<ServiceVips>& vips) {
  std::ostringstream out;
  out << "# Generated by weftctl lab for pod " << pod.name << "\n";
  out << "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";
  out << pod.ip << "\t" << pod.name << "\n";
  if (!pod.ip6.empty()) out << pod.ip6 << "\t" << pod.name << "\n";
  for (const auto& v : vips) {
    for (const auto& ip : v.vips) {
      out << ip << "\t";
      if (v.ns == pod.ns) out << v.name << " ";
      out << v.name << "." << v.ns << " " << v.name << "." << v.ns << ".svc " << v.name << "." << v.ns
          << ".svc.cluster.local\n";
    }
  }
  return out.str();
}

}  // namespace weft::cli::lab
