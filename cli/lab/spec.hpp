// The lab's input: a multi-document Kubernetes/Istio YAML file. Deployments
// become pods; Services and WorkloadEntries are passed to the agents; other
// kinds are ignored. Also renders the per-node agent config and pod hosts files.
#pragma once

#include <yaml-cpp/yaml.h>

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

// A pod as the agents and the hosts files see it.
struct PodView {
  std::string name;
  std::string ns;
  std::string ip;
  std::string ip6;  // "" when the lab is not dual-stack
  Labels labels;
  std::string service_account;
  std::vector<ContainerPort> ports;
};

// A service's virtual IPs, keyed "ns/name".
struct ServiceVips {
  std::string name;
  std::string ns;
  std::vector<std::string> vips;  // v4 first, then v6 if dual-stack; empty: headless
};

// Gives every non-headless service a VIP: kept from `previous` (same ns/name)
// when still valid, else the file's clusterIP, else the next free address of
// 10.96.0.0/16 (and fd00:96::/112 for dual-stack services).
Result<std::vector<ServiceVips>> AllocateVips(const LabSpec& spec, const std::vector<ServiceVips>& previous);

// The agent's config: the Services (clusterIP(s) filled in) + the user's
// WorkloadEntries + one WorkloadEntry per pod (and per pod IPv6 address).
std::string RenderAgentConfig(const LabSpec& spec, const std::vector<ServiceVips>& vips,
                              const std::vector<PodView>& pods);

// /etc/hosts for a pod: localhost, the pod itself, every service VIP under
// name.ns, name.ns.svc, name.ns.svc.cluster.local (and `name` in the pod's ns).
std::string RenderHosts(const PodView& pod, const std::vector<ServiceVips>& vips);

}  // namespace weft::cli::lab
