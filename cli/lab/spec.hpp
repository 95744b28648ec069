// The lab's input: a multi-document Kubernetes/Istio YAML file. Deployments
// become pods (the lab builds them); the whole file goes to the controller;
// kinds are ignored by the lab (the controller validates and stores them all).
// Also renders the pods' WorkloadEntries and hosts files.
#pragma once

#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "weft/status.hpp"

namespace weft::cli::lab {

using Labels = std::map<std::string, std::string>;

struct ContainerPort {
  std::string name;  // may be empty
  uint16_t port = 0;
};

struct DeploymentSpec {
  std::string name;
  std::string ns;
  int replicas = 1;
  Labels labels;  // spec.template.metadata.labels
  std::string service_account;
  std::vector<ContainerPort> ports;
};

struct ServiceSpec {
  std::string name;
  std::string ns;
  YAML::Node doc;            // the user's document, passed through
  bool dual_stack = false;   // spec.ipFamilyPolicy PreferDualStack/RequireDualStack
  bool headless = false;     // clusterIP: None, or type ExternalName
  std::vector<std::string> fixed_ips;  // clusterIP(s) given in the file
};

struct LabSpec {
  std::string path;
  std::vector<ServiceSpec> services;
  std::vector<YAML::Node> workload_entries;  // the user's own, passed through
  std::vector<DeploymentSpec> deployments;
  std::map<std::string, int> ignored_kinds;  // kind -> count (ServiceAccount is not counted)
  bool dual_stack() const;
};

// Parses and validates FILE. Errors name the file, the document and the field.
Result<LabSpec> LoadSpec(const std::string& path);

// A pod as the controller and the hosts files see it.
struct PodView {
  std::string name;
  std::string ns;
  std::string ip;
  std::string ip6;  // "" when the lab is not dual-stack
  Labels labels;
  std::string service_account;
  std::vector<ContainerPort> ports;
  std::string node;  // annotation weft.io/node: the controller sends the entry to that node's agent
};

// A service's virtual IPs, keyed "ns/name".
struct ServiceVips {
  std::string name;
  std::string ns;
  std::vector<std::string> vips;  // v4 first, then v6 if dual-stack; empty: headless
};

// One networking.istio.io/v1 WorkloadEntry per pod (name = pod, address = pod
// IP, labels, serviceAccount, ports = named containerPorts, annotation
// weft.io/node), plus `<pod>-v6` with the IPv6 address when there is one.
std::string RenderPodWorkloads(const std::vector<PodView>& pods);
// The WorkloadEntry names RenderPodWorkloads gives a pod.
std::vector<std::string> WorkloadNames(const PodView& pod);

// The VIPs the controller allocated, from a stored Service object
// (spec.clusterIPs, else spec.clusterIP; "None" is headless).
ServiceVips VipsOfService(const std::string& name, const std::string& ns, const nlohmann::json& object);

// /etc/hosts for a pod: localhost, the pod itself, every service VIP under
// name.ns, name.ns.svc, name.ns.svc.cluster.local (and `name` in the pod's ns).
std::string RenderHosts(const PodView& pod, const std::vector<ServiceVips>& vips);

}  // namespace weft::cli::lab
