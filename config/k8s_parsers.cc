// Kubernetes kinds: v1 Service (service_parser.cc), ServiceAccount, Namespace;
// apps/v1 Deployment. Pod template fields Weft does not model are accepted by
// name; containers accept unknown fields (the rest of the core/v1 Container).
#include "config/names.hpp"
#include "config/resource_parsers.hpp"

namespace weft::config {
namespace {

using namespace schema;  // NOLINT: schema tables read better unqualified

std::string CheckSubdomain(std::string_view s) { return CheckDns1123Subdomain(s); }
std::string CheckLabel(std::string_view s) { return CheckDns1123Label(s); }
std::string CheckPortName(std::string_view s) { return CheckIanaSvcName(s); }

void ParseServiceDoc(FieldReader& r, const YAML::Node& doc, const Metadata& meta, ParsedDocs& out) {
  r.ExpectMap(doc, "", {"apiVersion", "kind", "metadata", "spec"});
  if (auto svc = ParseService(r, doc, meta)) out.services.push_back(std::move(*svc));
}

const Node* Container() {
  static const auto* port = Object({{"containerPort", Int(1, 65535), kRequired},
                                    {"name", String(CheckPortName)},
                                    {"protocol", Enum({"TCP", "UDP", "SCTP"})},
                                    {"hostPort", Int(1, 65535)},
                                    {"hostIP", String(CheckIp)}});
  static const auto* c = Object({{"name", String(CheckLabel), kRequired},
                                 {"image", String()},
                                 {"imagePullPolicy", Enum({"Always", "Never", "IfNotPresent"})},
                                 {"command", List(String())},
                                 {"args", List(String())},
                                 {"workingDir", String()},
                                 {"ports", List(port)}},
                                {.lenient = true});
  return c;
}

// selector.matchLabels must select the template's labels (apps/v1 validation).
void CheckDeploymentSpec(FieldReader& r, const YAML::Node& spec, const std::string& path) {
  auto selector = FieldReader::Find(spec, "selector");
  auto match = selector ? FieldReader::Find(*selector, "matchLabels") : std::nullopt;
  // (No reassignment of YAML::Node: its operator= writes through to the document.)
  auto pod_template = FieldReader::Find(spec, "template");
  auto template_meta = pod_template ? FieldReader::Find(*pod_template, "metadata") : std::nullopt;
  auto labels = template_meta ? FieldReader::Find(*template_meta, "labels") : std::nullopt;
  if (!match || !match->IsMap()) return;
  for (const auto& kv : *match) {
    auto have = labels && labels->IsMap() ? FieldReader::Find(*labels, kv.first.Scalar()) : std::nullopt;
    if (!have || !have->IsScalar() || !kv.second.IsScalar() || have->Scalar() != kv.second.Scalar()) {
      r.Error(kv.first, FieldPath(path + ".selector.matchLabels", kv.first.Scalar()),
              "does not match spec.template.metadata.labels (the selector must select the pod template)");
    }
  }
}

const Node* DeploymentBody() {
  static const auto* requirement = Object({{"key", String(), kRequired},
                                           {"operator", Enum({"In", "NotIn", "Exists", "DoesNotExist"}), kRequired},
                                           {"values", List(String())}});
  static const auto* selector =
      Object({{"matchLabels", LabelMap()}, {"matchExpressions", List(requirement)}});
  static const auto* pod_spec = Object(Concat(
      {{"containers", List(Container(), 1), kRequired},
       {"initContainers", List(Container())},
       {"serviceAccountName", String(CheckSubdomain)},
       {"serviceAccount", String(CheckSubdomain)},
       {"nodeName", String(CheckSubdomain)},
       {"nodeSelector", Map(String())},
       {"restartPolicy", Enum({"Always", "OnFailure", "Never"})},
       {"hostNetwork", Bool()},
       {"terminationGracePeriodSeconds", Int(0, INT64_MAX)}},
      AnyFields({"activeDeadlineSeconds", "affinity", "automountServiceAccountToken", "dnsConfig", "dnsPolicy",
                 "enableServiceLinks", "ephemeralContainers", "hostAliases", "hostIPC", "hostPID", "hostUsers",
                 "hostname", "imagePullSecrets", "os", "overhead", "preemptionPolicy", "priority",
                 "priorityClassName", "readinessGates", "resourceClaims", "runtimeClassName", "schedulerName",
                 "schedulingGates", "securityContext", "setHostnameAsFQDN", "shareProcessNamespace", "subdomain",
                 "tolerations", "topologySpreadConstraints", "volumes"})));
  static const auto* template_meta = Object(
      Concat({{"labels", LabelMap()}, {"annotations", Map(String())}}, AnyFields({"name", "namespace"})),
      {.check = [](FieldReader& r, const YAML::Node& meta, const std::string& path) {
        if (auto a = FieldReader::Find(meta, "annotations")) CheckAnnotationSize(r, *a, path + ".annotations");
      }});
  static const auto* pod_template =
      Object({{"metadata", template_meta}, {"spec", pod_spec, kRequired}});
  static const auto* spec = Object(
      Concat({{"replicas", Int(0, INT32_MAX)},
              {"selector", selector, kRequired},
              {"template", pod_template, kRequired},
              {"minReadySeconds", Int(0, INT32_MAX)},
              {"revisionHistoryLimit", Int(0, INT32_MAX)},
              {"progressDeadlineSeconds", Int(1, INT32_MAX)},
              {"paused", Bool()}},
             AnyFields({"strategy"})),
      {.check = CheckDeploymentSpec});
  static const auto* body = Object({{"spec", spec, kRequired}});
  return body;
}

}  // namespace

std::vector<KindSpec> KubernetesKinds() {
  static const auto* sa = Object(Concat({{"automountServiceAccountToken", Bool()},
                                         {"imagePullSecrets", List(Object({{"name", String()}}))}},
                                        AnyFields({"secrets"})));
  static const auto* ns = Object({{"spec", Object({{"finalizers", List(String())}})}});
  return {
      {.kind = "Service", .api_versions = {"v1"}, .label_name = true, .parse = ParseServiceDoc},
      {.kind = "ServiceAccount", .api_versions = {"v1"}, .body = sa},
      {.kind = "Namespace", .api_versions = {"v1"}, .namespaced = false, .label_name = true, .body = ns},
      {.kind = "Deployment", .api_versions = {"apps/v1"}, .body = DeploymentBody()},
  };
}

}  // namespace weft::config
