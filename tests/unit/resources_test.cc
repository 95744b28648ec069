// The resource layer's API: canonical JSON, keys, YAML output, the typed view,
// diagnostics and robustness against hostile input.
#include <gtest/gtest.h>

#include "config/loader.hpp"
#include "config/resources.hpp"
#include "config/typed.hpp"

namespace weft::config {
namespace {

using json = nlohmann::json;

Resource ParseOne(const std::string& text) {
  auto r = ParseResources(text, "t.yaml");
  EXPECT_TRUE(r.ok()) << r.status().message();
  if (!r.ok() || r->size() != 1) return {};
  return r->front();
}

TEST(ParseResources, CanonicalObjectAndKey) {
  Resource r = ParseOne(R"(
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: reviews
spec:
  http:
  - route:
    - destination: {host: reviews, port: {number: 9080}}
      weight: 100
  hosts: ["reviews"]
)");
  EXPECT_EQ(r.api_version, "networking.istio.io/v1alpha3");
  EXPECT_EQ(r.key, (ResourceKey{"VirtualService", "default", "reviews"}));
  EXPECT_EQ(r.pos.file, "t.yaml");
  EXPECT_EQ(r.pos.line, 2);
  EXPECT_EQ(r.object["metadata"]["namespace"], "default");
  const json& dest = r.object["spec"]["http"][0]["route"][0];
  EXPECT_TRUE(dest["weight"].is_number_integer());
  EXPECT_EQ(dest["destination"]["port"]["number"], 9080);
  // Deterministic key order: the dump does not depend on the order in the file.
  EXPECT_EQ(r.object.dump().find("\"apiVersion\""), 1u);
  EXPECT_LT(r.object["spec"].dump().find("\"hosts\""), r.object["spec"].dump().find("\"http\""));
}

TEST(ParseResources, ClusterScopedKindsHaveNoNamespace) {
  Resource r = ParseOne("apiVersion: v1\nkind: Namespace\nmetadata: {name: foo}\n");
  EXPECT_EQ(r.key, (ResourceKey{"Namespace", "", "foo"}));
  EXPECT_FALSE(r.object["metadata"].contains("namespace"));
  EXPECT_EQ(r.key.ToString(), "Namespace foo");
}

TEST(ParseResources, QuotedNumbersStayStrings) {
  Resource r = ParseOne(R"(
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: p, namespace: foo}
spec:
  rules:
  - to:
    - operation: {ports: ["8080"]}
)");
  EXPECT_EQ(r.object["spec"]["rules"][0]["to"][0]["operation"]["ports"][0], "8080");
}

TEST(ParseResources, EmptyDocumentsAreSkipped) {
  auto r = ParseResources("---\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n", "t.yaml");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->size(), 1u);
}

TEST(ParseResources, HostileInputIsAnErrorNotACrash) {
  for (const char* text : {"\x01\x02\xff", "[1, 2", "a: &x [*x]", "? [a]\n: b\n", "- 1\n- 2\n", "apiVersion: [v1]\nkind: {}\n",
                           "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 80}], selector: [x]}\n",
                           "apiVersion: v1\nkind: Service\nmetadata: [1]\n",
                           "apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: {}, annotations: {x: \"\xff\xfe\"}}\n"}) {
    auto r = ParseResources(text, "t.yaml");
    EXPECT_FALSE(r.ok()) << text;
  }
}

TEST(ToYaml, RoundTripsThroughParseResources) {
  Resource r = ParseOne(R"(
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, labels: {version: "1.0"}}
spec:
  host: reviews
  trafficPolicy: {connectionPool: {tcp: {maxConnections: 10}}}
  subsets:
  - name: v1
    labels: {version: "true"}
  exportTo: []
)");
  std::string yaml = ToYaml(r.object);
  EXPECT_NE(yaml.find("maxConnections: 10"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("version: \"1.0\""), std::string::npos) << yaml;
  auto again = ParseResources(yaml, "again.yaml");
  ASSERT_TRUE(again.ok()) << again.status().message() << "\n" << yaml;
  EXPECT_EQ(again->front().object, r.object);
}

TEST(Diagnostic, ToStringHasTheErrorFormat) {
  Diagnostic d{Severity::kWarning, {"vs.yaml", 3, 1}, "VirtualService default/reviews",
               "spec.http[0].route[0].destination.subset", "referenced subset not found", "ReferencedResourceNotFound"};
  EXPECT_EQ(d.ToString(),
            "vs.yaml:3:1: VirtualService default/reviews: spec.http[0].route[0].destination.subset: referenced subset not found");
  EXPECT_EQ(Diagnostic{.message = "m"}.ToString(), "m");
}

TEST(TypedView, ServicesAndWorkloadEntries) {
  auto r = ParseResources(R"(
apiVersion: v1
kind: Service
metadata:
  name: cart
  annotations: {weft.io/lb-algorithm: maglev}
spec:
  clusterIP: 10.96.0.10
  selector: {app: cart}
  ports: [{name: http, port: 80, targetPort: "http-alt"}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: cart-1, annotations: {weft.io/node: node-1}}
spec: {address: 10.0.0.1, labels: {app: cart}, ports: {http-alt: 8080}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: cart}
spec: {host: cart}
)",
                          "t.yaml");
  ASSERT_TRUE(r.ok()) << r.status().message();
  auto services = TypedAll<Service>(*r);
  ASSERT_EQ(services.size(), 1u);
  EXPECT_EQ(services[0].algorithm, LbAlgorithm::kMaglev);
  EXPECT_EQ(services[0].ports[0].target.name, "http-alt");
  auto workloads = TypedAll<WorkloadEntry>(*r);
  ASSERT_EQ(workloads.size(), 1u);
  EXPECT_EQ(workloads[0].ports.at("http-alt"), 8080);
}

TEST(Analyze, MirrorAndServiceEntryHosts) {
  auto r = ParseResources(R"(
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext}
spec:
  hosts: ["*.example.com"]
  ports: [{number: 443, name: https, protocol: HTTPS}]
  resolution: NONE
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs, namespace: web}
spec:
  hosts: [api.example.com]
  gateways: [istio-system/ingress, mesh]
  http:
  - route:
    - destination: {host: api.example.com}
    mirror: {host: shadow.other.org, subset: canary}
)",
                          "t.yaml");
  ASSERT_TRUE(r.ok()) << r.status().message();
  auto diags = Analyze(*r);
  std::vector<std::string> fields;
  for (const auto& d : diags) fields.push_back(d.field);
  EXPECT_EQ(fields, (std::vector<std::string>{"spec.gateways[0]", "spec.http[0].mirror.host", "spec.http[0].mirror.subset"}));
}

}  // namespace
}  // namespace weft::config
