// Compiler semantics, one concern per test: protocol selection, endpoint
// selection, algorithms, PeerAuthentication, ServiceEntry, deletion, deltas.
#include <gtest/gtest.h>

#include "controller/compile_model.hpp"
#include "controller/compile_routing.hpp"
#include "controller/compiler.hpp"
#include "tests/compiler/compiler_test_util.hpp"
#include "tests/compiler/test_resources.hpp"

namespace weft::controller::testing {
namespace {

using nlohmann::json;

config::Resource Svc(const std::string& name, json spec, json annotations = json::object(),
                     const std::string& ns = "shop") {
  return FromJson({{"apiVersion", "v1"},
                   {"kind", "Service"},
                   {"metadata", {{"name", name}, {"annotations", annotations}}},
                   {"spec", spec}},
                  ns);
}

config::Resource We(const std::string& name, json spec, const std::string& node = "n1", const std::string& ns = "shop") {
  return FromJson({{"apiVersion", "networking.istio.io/v1"},
                   {"kind", "WorkloadEntry"},
                   {"metadata", {{"name", name}, {"annotations", {{"weft.io/node", node}}}}},
                   {"spec", spec}},
                  ns);
}

config::Resource Istio(const std::string& kind, const std::string& name, json spec, const std::string& ns = "shop") {
  std::string group = kind == "PeerAuthentication" || kind == "AuthorizationPolicy" ? "security.istio.io/v1"
                                                                                    : "networking.istio.io/v1";
  return FromJson({{"apiVersion", group}, {"kind", kind}, {"metadata", {{"name", name}}}, {"spec", spec}}, ns);
}

// --- protocol selection ---------------------------------------------------------

struct ProtocolCase {
  const char* app_protocol;
  const char* port_name;
  bool udp;
  const char* want;
};

TEST(ProtocolSelection, IstioTable) {
  const ProtocolCase cases[] = {
      {"", "http", false, "http"},          {"", "http-web", false, "http"},
      {"", "HTTP2", false, "http2"},        {"", "grpc", false, "grpc"},
      {"", "grpc-web", false, "grpc-web"},  {"", "grpc-web-x", false, "grpc-web"},
      {"", "grpc-x", false, "grpc"},        {"", "tcp-db", false, "tcp"},
      {"", "tls", false, "tls"},            {"", "https-admin", false, "https"},
      {"", "mongo", false, "mongo"},        {"", "redis-cache", false, "redis"},
      {"", "mysql", false, "mysql"},        {"", "web", false, ""},
      {"", "", false, ""},                  {"", "httpx", false, ""},
      {"http2", "tcp", false, "http2"},     {"grpc", "", false, "grpc"},
      {"kubernetes.io/h2c", "", false, "http2"}, {"kubernetes.io/ws", "", false, "http"},
      {"", "dns", true, "udp"},             {"HTTP", "x", false, "http"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(compile::SelectAppProtocol(c.app_protocol, c.port_name, c.udp), c.want)
        << "appProtocol=" << c.app_protocol << " name=" << c.port_name;
  }
}

TEST(HostResolution, ShortNamesAndWildcards) {
  EXPECT_EQ(compile::ResolveHost("reviews", "default"), "reviews.default.svc.cluster.local");
  EXPECT_EQ(compile::ResolveHost("reviews.default.svc.cluster.local", "x"), "reviews.default.svc.cluster.local");
  EXPECT_EQ(compile::ResolveHost("*", "x"), "*");
  EXPECT_TRUE(compile::HostMatches("*.example.com", "a.example.com"));
  EXPECT_FALSE(compile::HostMatches("*.example.com", "example.com"));
  EXPECT_TRUE(compile::HostMatches("*", "a.b"));
}

// --- services and endpoints -------------------------------------------------------

class Shop : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = {
        Svc("cart",
            {{"clusterIPs", {"10.96.0.10", "fd00::10"}},
             {"selector", {{"app", "cart"}}},
             {"ports",
              {{{"name", "http"}, {"port", 80}, {"targetPort", "http-alt"}},
               {{"name", "metrics"}, {"port", 9090}},
               {{"name", "dns"}, {"port", 53}, {"protocol", "UDP"}}}}}),
        Svc("headless", {{"clusterIP", "None"}, {"selector", {{"app", "cart"}}}, {"ports", {{{"port", 80}}}}}),
        Svc("noselector", {{"clusterIP", "10.96.0.12"}, {"ports", {{{"port", 80}}}}}),
        Svc("sticky",
            {{"clusterIP", "10.96.0.13"}, {"selector", {{"app", "cart"}}}, {"sessionAffinity", "ClientIP"},
             {"ports", {{{"port", 443}}}}},
            {{"weft.io/maglev-table-size", "251"}}),
        We("cart-1", {{"address", "10.0.0.1"}, {"labels", {{"app", "cart"}}}, {"ports", {{"http-alt", 8080}}}}),
        We("cart-2", {{"address", "10.0.0.2"}, {"labels", {{"app", "cart"}, {"v", "2"}}},
                      {"ports", {{"http-alt", 8081}}}, {"weight", 3}}, "n2"),
        We("cart-noport", {{"address", "10.0.0.3"}, {"labels", {{"app", "cart"}}}}),
        We("cart-drained", {{"address", "10.0.0.4"}, {"labels", {{"app", "cart"}}}, {"weight", 0}}),
        We("cart-v6", {{"address", "fd00::1"}, {"labels", {{"app", "cart"}}}, {"ports", {{"http-alt", 8080}}}}),
        We("cart-other-ns", {{"address", "10.0.0.9"}, {"labels", {{"app", "cart"}}}}, "n1", "elsewhere"),
    };
  }
  v1::NodeConfig Run(std::vector<config::Resource> extra = {}, const std::string& node = "n1") {
    std::vector<config::Resource> all = base_;
    for (auto& r : extra) all.push_back(std::move(r));
    c_.Reset(all);
    return c_.Snapshot(node);
  }
  std::vector<config::Resource> base_;
  Compiler c_;
};

TEST_F(Shop, NamedTargetPortsWeightsAndFamilies) {
  v1::NodeConfig cfg = Run();
  const v1::Service& cart = FindService(cfg, "shop/cart");
  EXPECT_EQ(cart.hostname(), "cart.shop.svc.cluster.local");
  EXPECT_EQ(cart.ports_size(), 6);  // 2 VIPs x 3 ports
  const v1::ServicePort& http = FindPort(cart, 80);
  EXPECT_EQ(Weights(http), (std::map<std::string, uint32_t>{{"shop/cart-1", 1}, {"shop/cart-2", 3}}));
  EXPECT_EQ(http.backends(0).port(), 8080u);
  EXPECT_EQ(http.backends(1).port(), 8081u);
  EXPECT_EQ(AddrText(http.backends(0).address()), "10.0.0.1");
  EXPECT_EQ(http.backends(0).address().size(), 4u);
  EXPECT_EQ(Weights(FindPort(cart, 80, false)), (std::map<std::string, uint32_t>{{"shop/cart-v6", 1}}));
  // A numeric targetPort (defaulting to the port) reaches every selected workload.
  EXPECT_EQ(Weights(FindPort(cart, 9090)),
            (std::map<std::string, uint32_t>{{"shop/cart-1", 1}, {"shop/cart-2", 3}, {"shop/cart-noport", 1}}));
  const v1::ServicePort& dns = FindPort(cart, 53, true, v1::UDP);
  EXPECT_EQ(dns.app_protocol(), "udp");
  EXPECT_EQ(dns.backends_size(), 3);
}

TEST_F(Shop, HeadlessAndSelectorless) {
  v1::NodeConfig cfg = Run();
  EXPECT_EQ(FindService(cfg, "shop/headless").ports_size(), 0);
  const v1::Service& none = FindService(cfg, "shop/noselector");
  ASSERT_EQ(none.ports_size(), 1);
  EXPECT_EQ(none.ports(0).backends_size(), 0);
}

TEST_F(Shop, Algorithms) {
  v1::NodeConfig cfg = Run({Svc("annotated", {{"clusterIP", "10.96.0.14"}, {"ports", {{{"port", 80}}}}},
                                {{"weft.io/lb-algorithm", "maglev"}}),
                            Svc("hashed", {{"clusterIP", "10.96.0.15"}, {"ports", {{{"port", 80}}}}}),
                            Istio("DestinationRule", "hashed",
                                  {{"host", "hashed"},
                                   {"trafficPolicy", {{"loadBalancer", {{"consistentHash", {{"useSourceIp", true}}}}}}}}),
                            Svc("by-header", {{"clusterIP", "10.96.0.16"}, {"ports", {{{"port", 80}}}}}),
                            Istio("DestinationRule", "by-header",
                                  {{"host", "by-header.shop.svc.cluster.local"},
                                   {"trafficPolicy",
                                    {{"loadBalancer", {{"consistentHash", {{"httpHeaderName", "x-user"}}}}}}}})});
  const v1::ServicePort& sticky = FindService(cfg, "shop/sticky").ports(0);
  EXPECT_EQ(sticky.algorithm(), v1::LB_MAGLEV);
  EXPECT_EQ(sticky.maglev_table_size(), 251u);
  EXPECT_EQ(FindService(cfg, "shop/cart").ports(0).algorithm(), v1::LB_RANDOM);
  EXPECT_EQ(FindService(cfg, "shop/annotated").ports(0).algorithm(), v1::LB_MAGLEV);
  EXPECT_EQ(FindService(cfg, "shop/hashed").ports(0).algorithm(), v1::LB_MAGLEV);
  EXPECT_FALSE(FindService(cfg, "shop/hashed").ports(0).needs_l7());
  // Hashing on a header approximates to Maglev on the client, and asks for the proxy.
  EXPECT_EQ(FindService(cfg, "shop/by-header").ports(0).algorithm(), v1::LB_MAGLEV);
  EXPECT_TRUE(FindService(cfg, "shop/by-header").ports(0).needs_l7());
}

TEST_F(Shop, RoutingDetails) {
  json dr = {{"host", "cart"}, {"subsets", {{{"name", "v2"}, {"labels", {{"v", "2"}}}}}}};
  struct Case {
    const char* name;
    json vs;
    bool needs_l7;
    std::map<std::string, uint32_t> http;
  };
  const std::map<std::string, uint32_t> all = {{"shop/cart-1", 1}, {"shop/cart-2", 3}};
  auto route = [](json dest, json extra = json::object()) {
    json rule = {{"route", {{{"destination", dest}}}}};
    rule.update(extra);
    return rule;
  };
  const Case cases[] = {
      {"subset", {{"hosts", {"cart"}}, {"http", {route({{"host", "cart"}, {"subset", "v2"}})}}}, false,
       {{"shop/cart-2", 1}}},  // weights are ratios: reduced by their gcd
      {"same port", {{"hosts", {"cart"}}, {"http", {route({{"host", "cart"}, {"port", {{"number", 80}}}})}}}, false, all},
      {"other port", {{"hosts", {"cart"}}, {"http", {route({{"host", "cart"}, {"port", {{"number", 9090}}}})}}}, true, all},
      {"other host", {{"hosts", {"cart"}}, {"http", {route({{"host", "checkout"}})}}}, true, all},
      {"timeout", {{"hosts", {"cart"}}, {"http", {route({{"host", "cart"}}, {{"timeout", "1s"}})}}}, true, all},
      {"retries", {{"hosts", {"cart"}}, {"http", {route({{"host", "cart"}}, {{"retries", {{"attempts", 3}}}})}}}, true, all},
      {"two rules", {{"hosts", {"cart"}}, {"http", {route({{"host", "cart"}}), route({{"host", "cart"}})}}}, true, all},
      {"tcp rules ignored on an http port", {{"hosts", {"cart"}}, {"tcp", {{{"match", {{{"port", 80}}}}}}}}, false, all},
      {"fqdn host", {{"hosts", {"cart.shop.svc.cluster.local"}}, {"http", {route({{"host", "cart"}, {"subset", "v2"}})}}},
       false, {{"shop/cart-2", 1}}},
      {"gateway only", {{"hosts", {"cart"}}, {"gateways", {"gw"}}, {"http", {route({{"host", "x"}})}}}, false, all},
  };
  for (const Case& c : cases) {
    v1::NodeConfig cfg = Run({Istio("DestinationRule", "cart", dr), Istio("VirtualService", "cart", c.vs)});
    const v1::ServicePort& http = FindPort(FindService(cfg, "shop/cart"), 80);
    EXPECT_EQ(http.needs_l7(), c.needs_l7) << c.name;
    EXPECT_EQ(Weights(http), c.http) << c.name;
    // UDP is never routed by a VirtualService.
    EXPECT_FALSE(FindPort(FindService(cfg, "shop/cart"), 53, true, v1::UDP).needs_l7()) << c.name;
  }
}

// --- PeerAuthentication -------------------------------------------------------------

TEST_F(Shop, PeerAuthenticationStrict) {
  auto pa = [](const std::string& name, const std::string& ns, json spec) {
    return Istio("PeerAuthentication", name, spec, ns);
  };
  json strict = {{"mtls", {{"mode", "STRICT"}}}};
  json permissive = {{"mtls", {{"mode", "PERMISSIVE"}}}};
  struct Case {
    const char* name;
    std::vector<config::Resource> policies;
    bool http;     // cart:80 (targets 8080/8081)
    bool metrics;  // cart:9090
  };
  const Case cases[] = {
      {"none", {}, false, false},
      {"mesh-wide", {pa("default", "istio-system", strict)}, true, true},
      {"namespace-wide", {pa("default", "shop", strict)}, true, true},
      {"other namespace", {pa("default", "elsewhere", strict)}, false, false},
      {"namespace permissive over mesh strict",
       {pa("default", "istio-system", strict), pa("default", "shop", permissive)}, false, false},
      {"selector on cart-2", {pa("cart2", "shop", {{"selector", {{"matchLabels", {{"v", "2"}}}}}, {"mtls", {{"mode", "STRICT"}}}})},
       true, true},
      {"port level: 9090 disabled",
       {pa("cart", "shop",
           {{"selector", {{"matchLabels", {{"app", "cart"}}}}},
            {"mtls", {{"mode", "STRICT"}}},
            {"portLevelMtls", {{"9090", {{"mode", "DISABLE"}}}}}})},
       true, false},
      {"selector UNSET inherits namespace strict",
       {pa("default", "shop", strict), pa("cart", "shop", {{"selector", {{"matchLabels", {{"app", "cart"}}}}}})}, true, true},
  };
  for (const Case& c : cases) {
    v1::NodeConfig cfg = Run(c.policies);
    const v1::Service& cart = FindService(cfg, "shop/cart");
    EXPECT_EQ(FindPort(cart, 80).needs_mtls(), c.http) << c.name;
    EXPECT_EQ(FindPort(cart, 9090).needs_mtls(), c.metrics) << c.name;
  }
}

// --- ServiceEntry -------------------------------------------------------------------

TEST_F(Shop, StaticServiceEntry) {
  v1::NodeConfig cfg = Run({
      Istio("ServiceEntry", "db",
            {{"hosts", {"db.internal"}},
             {"addresses", {"10.200.0.1"}},
             {"resolution", "STATIC"},
             {"location", "MESH_INTERNAL"},
             {"ports", {{{"number", 5432}, {"name", "tcp-pg"}, {"protocol", "TCP"}}}},
             {"endpoints",
              {{{"address", "10.5.0.1"}}, {{"address", "10.5.0.2"}, {"ports", {{"tcp-pg", 6432}}}, {"weight", 2}}}}}),
      Istio("ServiceEntry", "vm",
            {{"hosts", {"vm.internal"}},
             {"addresses", {"10.200.0.2"}},
             {"resolution", "STATIC"},
             {"ports", {{{"number", 80}, {"name", "http"}, {"protocol", "HTTP"}, {"targetPort", 8000}}}},
             {"workloadSelector", {{"labels", {{"app", "cart"}, {"v", "2"}}}}}}),
      Istio("ServiceEntry", "dns", {{"hosts", {"dns.example"}}, {"resolution", "DNS"}, {"ports", {{{"number", 80}}}}}),
  });
  const v1::Service& db = FindService(cfg, "shop/db");
  EXPECT_EQ(db.hostname(), "db.internal");
  const v1::ServicePort& pg = FindPort(db, 5432);
  EXPECT_EQ(pg.app_protocol(), "tcp");
  EXPECT_EQ(Weights(pg), (std::map<std::string, uint32_t>{{"10.5.0.1:5432", 1}, {"10.5.0.2:6432", 2}}));
  const v1::ServicePort& vm = FindPort(FindService(cfg, "shop/vm"), 80);
  EXPECT_EQ(vm.app_protocol(), "http");
  EXPECT_EQ(Weights(vm), (std::map<std::string, uint32_t>{{"shop/cart-2", 1}}));
  EXPECT_EQ(vm.backends(0).port(), 8000u);
  EXPECT_FALSE(HasService(cfg, "shop/dns"));
}

// --- identities, nodes, deletion, deltas -----------------------------------------------

TEST(Workloads, IdentityAndTrustDomain) {
  Compiler c(CompilerOptions{.trust_domain = "example.org"});
  c.Reset({We("w", {{"address", "10.0.0.1"}, {"labels", {{"a", "b"}}}}, "n1", "ns1"),
           We("x", {{"address", "10.0.0.2"}, {"serviceAccount", "sa-x"}}, "n2", "ns1")});
  v1::NodeConfig n1 = c.Snapshot("n1");
  ASSERT_EQ(n1.local_workloads_size(), 1);
  EXPECT_EQ(n1.local_workloads(0).service_account(), "default");
  EXPECT_EQ(n1.local_workloads(0).spiffe_id(), "spiffe://example.org/ns/ns1/sa/default");
  EXPECT_EQ(c.Snapshot("n2").local_workloads(0).spiffe_id(), "spiffe://example.org/ns/ns1/sa/sa-x");
}

TEST_F(Shop, DeletionAndDeltas) {
  Run();
  // Moving cart-1 from n1 to n2: n1 removes it, n2 upserts it; cart's backends do not change.
  ChangeSet moved = c_.Update(
      {We("cart-1", {{"address", "10.0.0.1"}, {"labels", {{"app", "cart"}}}, {"ports", {{"http-alt", 8080}}}}, "n2")}, {});
  EXPECT_TRUE(moved.services.empty());
  EXPECT_EQ(moved.workloads, (std::set<std::string>{"shop/cart-1"}));
  v1::NodeConfigDelta d1 = c_.Delta("n1", moved);
  EXPECT_EQ(d1.removed_workloads_size(), 1);
  EXPECT_EQ(d1.upserted_workloads_size(), 0);
  v1::NodeConfigDelta d2 = c_.Delta("n2", moved);
  EXPECT_EQ(d2.upserted_workloads_size(), 1);
  EXPECT_EQ(c_.Delta("n3", moved).removed_workloads_size(), 0);

  // Deleting a workload changes the services selecting it and the workload.
  ChangeSet gone = c_.Update({}, {{"WorkloadEntry", "shop", "cart-2"}});
  EXPECT_EQ(gone.services, (std::set<std::string>{"shop/cart", "shop/sticky"}));
  EXPECT_EQ(gone.workloads, (std::set<std::string>{"shop/cart-2"}));
  v1::NodeConfigDelta d = c_.Delta("n2", gone);
  EXPECT_EQ(d.upserted_services_size(), 2);
  EXPECT_EQ(d.removed_workloads_size(), 1);
  EXPECT_EQ(c_.Delta("n1", gone).removed_workloads_size(), 0);

  // Deleting a service.
  ChangeSet svc = c_.Update({}, {{"Service", "shop", "cart"}});
  EXPECT_EQ(svc.services, (std::set<std::string>{"shop/cart"}));
  v1::NodeConfigDelta ds = c_.Delta("n1", svc);
  ASSERT_EQ(ds.removed_services_size(), 1);
  EXPECT_EQ(ds.removed_services(0), "shop/cart");
  EXPECT_FALSE(HasService(c_.Snapshot("n1"), "shop/cart"));
  // Deleting what does not exist changes nothing.
  EXPECT_TRUE(c_.Update({}, {{"Service", "shop", "nope"}, {"VirtualService", "x", "y"}}).empty());
}

TEST_F(Shop, UnchangedRecompileIsNotAChange) {
  Run();
  // Same object again; a label that no selector reads; a DestinationRule without effect.
  EXPECT_TRUE(c_.Update({base_[0]}, {}).empty());
  EXPECT_TRUE(c_.Update({Istio("DestinationRule", "cart", {{"host", "cart"}})}, {}).empty());
  ChangeSet relabel = c_.Update(
      {We("cart-noport", {{"address", "10.0.0.3"}, {"labels", {{"app", "cart"}, {"team", "x"}}}})}, {});
  EXPECT_TRUE(relabel.services.empty());
  EXPECT_EQ(relabel.workloads, (std::set<std::string>{"shop/cart-noport"}));
}

TEST(Blend, ExactSharesAndRounding) {
  using compile::Blend;
  using compile::WeightedEndpoint;
  IpAddr a = *IpAddr::Parse("10.0.0.1"), b = *IpAddr::Parse("10.0.0.2"), c = *IpAddr::Parse("10.0.0.3");
  // 50/50 between a group of two (weights 1, 2) and a group of one: a=1/6, b=2/6, c=3/6.
  auto out = Blend({{50, {{a, 80, 1, "a"}, {b, 80, 2, "b"}}}, {50, {{c, 80, 1, "c"}}}});
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].weight, 1u);
  EXPECT_EQ(out[1].weight, 2u);
  EXPECT_EQ(out[2].weight, 3u);
  // An endpoint in two groups gets both shares; an empty group drops out.
  out = Blend({{30, {{a, 80, 1, "a"}}}, {70, {{a, 80, 1, "a"}, {b, 80, 1, "b"}}}, {10, {}}});
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].weight, 13u);  // 30 + 35 = 65 : 35
  EXPECT_EQ(out[1].weight, 7u);
  // Huge weights are rounded, keeping the ratio, never 0.
  out = Blend({{1, {{a, 80, 4000000000u, "a"}, {b, 80, 1, "b"}}}, {1, {{c, 80, 3999999999u, "c"}}}});
  ASSERT_EQ(out.size(), 3u);
  EXPECT_GE(out[1].weight, 1u);
  EXPECT_NEAR(double(out[0].weight) / out[2].weight, 1.0, 1e-5);
}

}  // namespace
}  // namespace weft::controller::testing
