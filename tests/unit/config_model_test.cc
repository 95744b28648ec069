// The typed model (config/model.hpp) as config::TypedView builds it from
// validated resources: defaults and every field, one table per kind.
#include <gtest/gtest.h>

#include "config/loader.hpp"
#include "config/resources.hpp"
#include "config/typed.hpp"

namespace weft::config {
namespace {

template <typename T>
std::vector<T> Load(const std::string& path) {
  auto r = LoadConfigFile(path);
  if (!r.ok()) throw std::runtime_error(r.status().message());
  return TypedAll<T>(*r);
}

template <typename T>
std::vector<T> Parse(const std::string& yaml) {
  auto r = ParseResources(yaml, "inline.yaml");
  if (!r.ok()) throw std::runtime_error(r.status().message());
  return TypedAll<T>(*r);
}

template <typename T>
T One(const std::string& yaml) {
  auto all = Parse<T>(yaml);
  if (all.size() != 1) throw std::runtime_error("expected one, got " + std::to_string(all.size()));
  return all.front();
}

template <typename T>
const T* Find(const std::vector<T>& all, const std::string& name) {
  for (const auto& x : all) {
    if (x.name == name) return &x;
  }
  return nullptr;
}

IpAddr Ip(const char* text) { return *IpAddr::Parse(text); }
IpPrefix Prefix(const char* text) { return *ParseIpOrCidr(text); }

TEST(ConfigModel, Defaults) {
  auto services = Load<Service>(WEFT_TESTDATA_DIR "/good-config/minimal.yaml");
  const Service* echo = Find(services, "echo");
  ASSERT_NE(echo, nullptr);
  EXPECT_EQ(echo->ns, "default");
  EXPECT_EQ(echo->vips, std::vector<IpAddr>{Ip("10.96.1.1")});
  ASSERT_EQ(echo->ports.size(), 1u);
  EXPECT_EQ(echo->ports[0].target.number, 7) << "targetPort defaults to port";
  EXPECT_EQ(echo->ports[0].protocol, Protocol::kTcp);
  EXPECT_EQ(echo->algorithm, LbAlgorithm::kRandom);
  EXPECT_EQ(echo->maglev_table_size, 0u);
  EXPECT_FALSE(echo->steer_to_proxy);
  EXPECT_EQ(echo->hostname(), "echo.default.svc.cluster.local");
  auto workloads = Load<WorkloadEntry>(WEFT_TESTDATA_DIR "/good-config/minimal.yaml");
  const WorkloadEntry* w = Find(workloads, "echo-1");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->ns, "default");
  EXPECT_EQ(w->weight, 1u);
  EXPECT_EQ(w->addresses, std::vector<IpAddr>{Ip("10.1.0.1")});
  EXPECT_EQ(w->node, "");
}

TEST(ConfigModel, AllFields) {
  auto services = Load<Service>(WEFT_TESTDATA_DIR "/good-config/shop.yaml");
  auto workloads = Load<WorkloadEntry>(WEFT_TESTDATA_DIR "/good-config/shop.yaml");
  EXPECT_EQ(services.size(), 4u);
  EXPECT_EQ(workloads.size(), 6u);

  const Service* cart = Find(services, "cart");
  ASSERT_NE(cart, nullptr);
  EXPECT_EQ(cart->ns, "shop");
  EXPECT_EQ(cart->vips, (std::vector<IpAddr>{Ip("10.96.0.10"), Ip("fd00:10:96::10")}));
  EXPECT_EQ(cart->selector, (Labels{{"app", "cart"}}));
  ASSERT_EQ(cart->ports.size(), 2u);
  EXPECT_EQ(cart->ports[0].name, "http");
  EXPECT_EQ(cart->ports[0].target.name, "http-alt");
  EXPECT_EQ(cart->ports[0].app_protocol, "http");
  EXPECT_EQ(cart->ports[1].target.number, 9090);

  const Service* checkout = Find(services, "checkout");
  ASSERT_NE(checkout, nullptr);
  EXPECT_EQ(checkout->algorithm, LbAlgorithm::kMaglev) << "sessionAffinity: ClientIP";
  EXPECT_EQ(checkout->maglev_table_size, 251u);
  EXPECT_TRUE(checkout->steer_to_proxy);
  EXPECT_EQ(checkout->ports[0].target.number, 8443);

  const Service* dns = Find(services, "dns");
  ASSERT_NE(dns, nullptr);
  EXPECT_EQ(dns->ports[0].protocol, Protocol::kUdp);
  EXPECT_EQ(dns->ports[1].protocol, Protocol::kTcp);

  const Service* headless = Find(services, "headless");
  ASSERT_NE(headless, nullptr);
  EXPECT_TRUE(headless->vips.empty());

  const WorkloadEntry* cart1 = Find(workloads, "cart-1");
  ASSERT_NE(cart1, nullptr);
  EXPECT_EQ(cart1->labels, (Labels{{"app", "cart"}, {"version", "v1"}}));
  EXPECT_EQ(cart1->ports, (NamedPorts{{"http-alt", 8080}}));
  EXPECT_EQ(cart1->service_account, "cart");
  EXPECT_EQ(cart1->network, "net1");
  EXPECT_EQ(cart1->locality, "eu/west/a");
  EXPECT_EQ(Find(workloads, "cart-2")->weight, 3u);
  EXPECT_EQ(Find(workloads, "cart-drained")->weight, 0u);
  EXPECT_EQ(Find(workloads, "cart-v6")->addresses, std::vector<IpAddr>{Ip("fd00::1")});
}

TEST(ConfigModel, AnnotationSelectsAlgorithm) {
  struct Row {
    const char* annotations;
    LbAlgorithm want;
  };
  const Row rows[] = {
      {"{}", LbAlgorithm::kRandom},
      {"{weft.io/lb-algorithm: maglev}", LbAlgorithm::kMaglev},
      {"{weft.io/lb-algorithm: random}", LbAlgorithm::kRandom},
      {"{other.io/anything: x}", LbAlgorithm::kRandom},
  };
  for (const auto& row : rows) {
    std::string text = std::string("apiVersion: v1\nkind: Service\nmetadata: {name: s, annotations: ") +
                       row.annotations + "}\nspec: {ports: [{port: 1}]}\n";
    EXPECT_EQ(One<Service>(text).algorithm, row.want) << row.annotations;
  }
}

TEST(ConfigModel, EmptyDocumentsAreSkipped) {
  auto r = ParseResources("---\n---\n# only a comment\n", "empty.yaml");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->empty());
}

// Kinds Weft does not act on, and a "Service" of another API group, have no typed view.
TEST(ConfigModel, NoViewForOtherKinds) {
  const auto object = nlohmann::json::parse(R"({"metadata": {"name": "s"}, "spec": {}})");
  Resource ns{"v1", {"Namespace", "", "shop"}, object};
  EXPECT_TRUE(std::holds_alternative<std::monostate>(TypedView(ns)));
  Resource other{"serving.knative.dev/v1", {"Service", "default", "s"}, object};
  EXPECT_TRUE(std::holds_alternative<std::monostate>(TypedView(other)));
  Resource v1{"v1", {"Service", "default", "s"}, object};
  EXPECT_TRUE(std::holds_alternative<Service>(TypedView(v1)));
}

// The names are the Resource's key (the store's key is authoritative), and a
// VIP written into the stored object (the controller's allocation) is read.
TEST(ConfigModel, NamesFromTheKeyVipsFromTheObject) {
  Resource r{"v1", {"Service", "shop", "cart"}, nlohmann::json::parse(R"({
    "metadata": {"name": "other"},
    "spec": {"clusterIP": "10.96.0.9", "ports": [{"port": 80, "targetPort": 8080}]}})")};
  auto svc = std::get<Service>(TypedView(r));
  EXPECT_EQ(svc.key(), "shop/cart");
  EXPECT_EQ(svc.vips, std::vector<IpAddr>{Ip("10.96.0.9")});
  EXPECT_EQ(svc.ports.at(0).target.number, 8080);
}

TEST(ConfigModel, WorkloadEntryNode) {
  auto w = One<WorkloadEntry>(R"(apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: w, namespace: web, annotations: {weft.io/node: node-1}}
spec: {address: 10.1.0.5, serviceAccount: web, weight: 7, ports: {http: 8080}}
)");
  EXPECT_EQ(w.key(), "web/w");
  EXPECT_EQ(w.node, "node-1");
  EXPECT_EQ(w.service_account, "web");
  EXPECT_EQ(w.weight, 7u);
  EXPECT_EQ(w.ports, (NamedPorts{{"http", 8080}}));
}

TEST(ConfigModel, ServiceEntry) {
  auto all = Parse<ServiceEntry>(R"(apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: web}
spec:
  hosts: [b.example.com, a.example.com, b.example.com]
  addresses: [240.240.0.1, 240.240.1.0/24]
  ports:
  - {number: 443, name: https, protocol: HTTPS}
  - {number: 8443, name: tls, protocol: TLS, targetPort: 9443}
  resolution: STATIC
  endpoints:
  - {address: 10.2.0.1, labels: {zone: a}, ports: {https: 8443}, weight: 3, serviceAccount: ext}
  - {address: "unix:///var/run/ext.sock"}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: vms, namespace: web}
spec:
  hosts: [vms.example.com]
  ports: [{number: 80, name: tcp, protocol: TCP}]
  resolution: DNS
  workloadSelector: {labels: {app: vm}}
)");
  ASSERT_EQ(all.size(), 2u);
  const ServiceEntry& se = all[0];
  EXPECT_EQ(se.hosts, (std::vector<std::string>{"a.example.com", "b.example.com"})) << "sorted, unique";
  EXPECT_EQ(se.addresses, std::vector<IpAddr>{Ip("240.240.0.1")}) << "a CIDR gives no VIP";
  ASSERT_EQ(se.ports.size(), 2u);
  EXPECT_EQ(se.ports[0].number, 443);
  EXPECT_EQ(se.ports[0].target_port, 0) << "unset: the port's number";
  EXPECT_EQ(se.ports[0].protocol, "HTTPS");
  EXPECT_EQ(se.ports[1].target_port, 9443);
  EXPECT_EQ(se.resolution, ServiceEntry::Resolution::kStatic);
  EXPECT_TRUE(se.workload_selector.empty());
  ASSERT_EQ(se.endpoints.size(), 1u) << "a unix socket is no L4 backend";
  EXPECT_EQ(se.endpoints[0].address, Ip("10.2.0.1"));
  EXPECT_EQ(se.endpoints[0].labels, (Labels{{"zone", "a"}}));
  EXPECT_EQ(se.endpoints[0].ports, (NamedPorts{{"https", 8443}}));
  EXPECT_EQ(se.endpoints[0].weight, 3u);
  EXPECT_EQ(se.endpoints[0].service_account, "ext");
  EXPECT_EQ(all[1].resolution, ServiceEntry::Resolution::kDns);
  EXPECT_EQ(all[1].workload_selector, (Labels{{"app", "vm"}}));
}

TEST(ConfigModel, DestinationRulePortLevelOverTopLevel) {
  auto dr = One<DestinationRule>(R"(apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: web}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}]
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    tls: {mode: ISTIO_MUTUAL}
    portLevelSettings:
    - port: {number: 9080}
      loadBalancer: {consistentHash: {httpHeaderName: x-user}}
)");
  EXPECT_EQ(dr.host, "reviews.web.svc.cluster.local") << "a short name is the rule's namespace";
  EXPECT_EQ(dr.subsets.at("v1"), (Labels{{"version", "v1"}}));
  TrafficPolicy top = dr.For(80);
  EXPECT_EQ(top.consistent_hash, false);
  EXPECT_EQ(top.mtls, true);
  TrafficPolicy port = dr.For(9080);
  EXPECT_EQ(port.consistent_hash, true);
  EXPECT_TRUE(port.l7_hash);
  EXPECT_EQ(port.mtls, true) << "inherited from the top level";
}

TEST(ConfigModel, VirtualServiceRoutes) {
  auto vs = One<VirtualService>(R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: web}
spec:
  hosts: [reviews]
  http:
  - name: split
    route:
    - {destination: {host: reviews, subset: v1, port: {number: 9080}}, weight: 90}
    - destination: {host: reviews.other.svc.cluster.local}
      weight: 10
      headers: {request: {set: {x: y}}}
  - match: [{uri: {prefix: /a}}]
    route: [{destination: {host: reviews}}]
  tcp:
  - route: [{destination: {host: db}}]
)");
  EXPECT_EQ(vs.hosts, std::vector<std::string>{"reviews.web.svc.cluster.local"});
  EXPECT_FALSE(vs.delegate);
  ASSERT_EQ(vs.http.size(), 2u);
  const auto& split = vs.http[0];
  EXPECT_FALSE(split.other) << "name is only a label";
  ASSERT_TRUE(split.has_route);
  ASSERT_EQ(split.route.size(), 2u);
  EXPECT_EQ(split.route[0].destination->host, "reviews.web.svc.cluster.local");
  EXPECT_EQ(split.route[0].destination->subset, "v1");
  EXPECT_EQ(split.route[0].destination->port, 9080u);
  EXPECT_EQ(split.route[0].weight, 90u);
  EXPECT_FALSE(split.route[0].other);
  EXPECT_EQ(split.route[1].destination->host, "reviews.other.svc.cluster.local");
  EXPECT_TRUE(split.route[1].other) << "headers";
  EXPECT_TRUE(vs.http[1].other) << "match";
  ASSERT_EQ(vs.tcp.size(), 1u);
  EXPECT_EQ(vs.tcp[0].route[0].destination->host, "db.web.svc.cluster.local");
  EXPECT_EQ(vs.tcp[0].route[0].weight, std::nullopt);

  auto gateway_only = One<VirtualService>(R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ingress}
spec:
  hosts: [reviews]
  gateways: [istio-system/ingress]
  http: [{route: [{destination: {host: reviews}}]}]
)");
  EXPECT_TRUE(gateway_only.hosts.empty()) << "bound to a gateway only: not the mesh's";
}

TEST(ConfigModel, PeerAuthentication) {
  auto all = Parse<PeerAuthentication>(R"(apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ns-wide, namespace: web}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: db, namespace: web}
spec:
  selector: {matchLabels: {app: db}}
  mtls: {mode: PERMISSIVE}
  portLevelMtls: {"5432": {mode: DISABLE}}
)");
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].selector, std::nullopt);
  EXPECT_EQ(all[0].mode, MtlsMode::kStrict);
  EXPECT_EQ(all[1].selector, (Labels{{"app", "db"}}));
  EXPECT_EQ(all[1].mode, MtlsMode::kPermissive);
  EXPECT_EQ(all[1].port_modes, (std::map<uint32_t, MtlsMode>{{5432, MtlsMode::kDisable}}));
}

TEST(ConfigModel, AuthorizationPolicy) {
  auto p = One<AuthorizationPolicy>(R"(apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: db, namespace: web}
spec:
  selector: {matchLabels: {app: db}}
  action: DENY
  rules:
  - from:
    - source: {serviceAccounts: [api, other/batch], ipBlocks: [10.1.2.3/8]}
    to:
    - operation: {ports: ["5432", "6432"], notPorts: ["7000"]}
    when:
    - {key: source.serviceAccount, values: [admin]}
    - {key: destination.port, values: ["5432"]}
    - {key: "request.headers[x-token]", values: [t]}
)");
  EXPECT_EQ(p.key(), "web/db");
  EXPECT_EQ(p.selector, (Labels{{"app", "db"}}));
  EXPECT_EQ(p.action, AuthorizationPolicy::Action::kDeny);
  EXPECT_FALSE(p.targeted);
  ASSERT_EQ(p.rules.size(), 1u);
  const auto& rule = p.rules[0];
  EXPECT_EQ(rule.from.at(0).service_accounts, (std::vector<std::string>{"web/api", "other/batch"}))
      << "a bare name is the policy's namespace";
  EXPECT_EQ(rule.from.at(0).ip_blocks.at(0).ToString(), Prefix("10.0.0.0/8").ToString()) << "canonical";
  EXPECT_EQ(rule.to.at(0).ports, (std::vector<uint16_t>{5432, 6432}));
  EXPECT_EQ(rule.to.at(0).not_ports, (std::vector<uint16_t>{7000}));
  ASSERT_EQ(rule.when.size(), 3u);
  EXPECT_EQ(rule.when[0].key, AuthorizationPolicy::Condition::Key::kSourceServiceAccount);
  EXPECT_EQ(rule.when[0].values, std::vector<std::string>{"web/admin"});
  EXPECT_EQ(rule.when[1].port_values, std::vector<uint16_t>{5432});
  EXPECT_EQ(rule.when[2].key, AuthorizationPolicy::Condition::Key::kL7);
  EXPECT_TRUE(rule.HasL7());
  EXPECT_TRUE(p.needs_l7);
}

// needs_l7 (what makes the compiler mark a workload's services needs_l7) as
// the compiler has always decided it, next to the evaluator's Rule::HasL7.
TEST(ConfigModel, AuthorizationPolicyNeedsL7) {
  struct Row {
    const char* name;
    const char* spec;
    bool needs_l7;
    bool has_l7;  // the first rule's HasL7()
  };
  const Row rows[] = {
      {"ports only", "{rules: [{to: [{operation: {ports: [\"80\"]}}]}]}", false, false},
      {"methods", "{rules: [{to: [{operation: {methods: [GET]}}]}]}", true, true},
      {"an empty methods list", "{rules: [{to: [{operation: {methods: [], ports: [\"80\"]}}]}]}", true, false},
      {"requestPrincipals", "{rules: [{from: [{source: {requestPrincipals: [\"*\"]}}]}]}", true, true},
      {"when header", "{rules: [{when: [{key: \"request.headers[x]\", values: [a]}]}]}", true, true},
      {"when connection.sni", "{rules: [{when: [{key: connection.sni, values: [a]}]}]}", false, true},
      {"when source.ip", "{rules: [{when: [{key: source.ip, values: [10.0.0.1]}]}]}", false, false},
      {"audit", "{action: AUDIT, rules: [{to: [{operation: {methods: [GET]}}]}]}", false, true},
      {"custom", "{action: CUSTOM, provider: {name: ext}, rules: [{to: [{operation: {ports: [\"80\"]}}]}]}", true,
       false},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    auto p = One<AuthorizationPolicy>(
        std::string("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p}\nspec: ") +
        row.spec + "\n");
    EXPECT_EQ(p.needs_l7, row.needs_l7);
    ASSERT_FALSE(p.rules.empty());
    EXPECT_EQ(p.rules[0].HasL7(), row.has_l7);
  }
}

TEST(ConfigModel, HostsAndLabels) {
  EXPECT_EQ(ResolveHost("reviews", "default"), "reviews.default.svc.cluster.local");
  EXPECT_EQ(ResolveHost("reviews.default.svc.cluster.local", "x"), "reviews.default.svc.cluster.local");
  EXPECT_EQ(ResolveHost("*", "x"), "*");
  EXPECT_TRUE(HostMatches("*.example.com", "a.example.com"));
  EXPECT_FALSE(HostMatches("*.example.com", "example.com"));
  EXPECT_TRUE(LabelsMatch({{"app", "a"}}, {{"app", "a"}, {"v", "1"}}));
  EXPECT_FALSE(LabelsMatch({{"app", "a"}, {"v", "2"}}, {{"app", "a"}, {"v", "1"}}));
  EXPECT_TRUE(LabelsMatch({}, {{"app", "a"}}));
  EXPECT_EQ(Prefix("10.1.2.3").ToString(), "10.1.2.3/32");
  EXPECT_EQ(Prefix("fd00::1/64").ToString(), "fd00::/64");
  EXPECT_FALSE(ParseIpOrCidr("10.1.2.3/33"));
}

}  // namespace
}  // namespace weft::config
