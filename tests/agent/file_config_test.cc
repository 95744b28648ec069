// File mode: a config file -> the controller's compiler (in process) ->
// DesiredState: selection, targetPort resolution, families, weights, flags.
// (Before issue 10 the agent had its own compiler for this, agent/lb/compile.cc;
// these are its tests, now through the one compiler.)
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <fstream>
#include <sstream>

#include "agent/file_config.hpp"
#include "config/loader.hpp"
#include "config/resources.hpp"

namespace weft::lb {
namespace {

using agent::CompileFileConfig;

IpAddr Ip(const char* text) { return *IpAddr::Parse(text); }

const ServiceEntry& At(const DesiredState& s, const char* vip, uint16_t port, uint8_t proto = IPPROTO_TCP) {
  auto it = s.services.find(MakeServiceKey(Ip(vip), port, proto));
  if (it == s.services.end()) throw std::runtime_error(std::string("no service ") + vip);
  return it->second;
}

DesiredState Compile(const std::string& yaml) {
  auto r = config::ParseResources(yaml, "inline.yaml");
  if (!r.ok()) throw std::runtime_error(r.status().message());
  auto d = CompileFileConfig(*r);
  if (!d.ok()) throw std::runtime_error(d.status().message());
  return std::move(*d);
}

std::string ReadShop() {
  std::ifstream in(WEFT_TESTDATA_DIR "/good-config/shop.yaml");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class CompileShop : public ::testing::Test {
 protected:
  void SetUp() override {
    auto r = config::LoadConfigFile(WEFT_TESTDATA_DIR "/good-config/shop.yaml");
    ASSERT_TRUE(r.ok()) << r.status().message();
    auto d = CompileFileConfig(*r);
    ASSERT_TRUE(d.ok()) << d.status().message();
    state_ = std::move(*d);
  }
  DesiredState state_;
};

TEST_F(CompileShop, ServiceKeys) {
  const DesiredState& s = state_;
  // cart: 2 VIPs x 2 ports; checkout: 1; dns: UDP + TCP; headless: none.
  EXPECT_EQ(s.services.size(), 7u);
  weft_svc_key key = MakeServiceKey(Ip("10.96.0.53"), 53, IPPROTO_UDP);
  EXPECT_EQ(key.port, htons(53));
  EXPECT_EQ(key.proto, IPPROTO_UDP);
  EXPECT_TRUE(IpAddr::FromBytes(key.addr).is_v4());
  EXPECT_EQ(At(s, "10.96.0.53", 53, IPPROTO_UDP).name, "shop/dns:dns");
  EXPECT_EQ(At(s, "10.96.0.53", 53, IPPROTO_TCP).name, "shop/dns:dns-tcp");
  EXPECT_EQ(At(s, "10.96.0.11", 443).name, "shop/checkout:443");
}

TEST_F(CompileShop, NamedTargetPortWeightsAndFamilies) {
  const DesiredState& s = state_;
  // cart-noport lacks http-alt, cart-drained has weight 0, cart-other-ns is in another namespace.
  EXPECT_EQ(At(s, "10.96.0.10", 80).backends,
            (std::vector<Backend>{{Ip("10.0.0.1"), 8080, 1}, {Ip("10.0.0.2"), 8081, 3}}));
  EXPECT_EQ(At(s, "fd00:10:96::10", 80).backends, (std::vector<Backend>{{Ip("fd00::1"), 8080, 1}}));
  // A numeric targetPort applies to every selected workload, named ports or not.
  EXPECT_EQ(At(s, "10.96.0.10", 9090).backends,
            (std::vector<Backend>{{Ip("10.0.0.1"), 9090, 1}, {Ip("10.0.0.2"), 9090, 3}, {Ip("10.0.0.3"), 9090, 1}}));
}

TEST_F(CompileShop, AlgorithmAndFlags) {
  const DesiredState& s = state_;
  const ServiceEntry& checkout = At(s, "10.96.0.11", 443);
  EXPECT_EQ(checkout.algo, WEFT_LB_MAGLEV);
  EXPECT_EQ(checkout.maglev_table_size, 251);
  EXPECT_EQ(checkout.flags, WEFT_SVC_F_STEER_PROXY);
  EXPECT_TRUE(checkout.backends.empty());
  const ServiceEntry& cart = At(s, "10.96.0.10", 80);
  EXPECT_EQ(cart.algo, WEFT_LB_RANDOM);
  EXPECT_EQ(cart.flags, 0);
}

// A pod registered next to the file's WorkloadEntries (the lab registers a
// dual-stack pod as one WorkloadEntry per address) joins by family.
TEST(Compile, MoreWorkloadsJoinByFamily) {
  std::string pods;
  for (auto [name, ip] : {std::pair{"checkout-pod-v4", "10.0.1.7"}, std::pair{"checkout-pod-v6", "fd00::7"}}) {
    pods += std::string("---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: ") + name +
            ", namespace: shop}\nspec: {address: \"" + ip +
            "\", labels: {app: cart, pod-template-hash: abc}, ports: {http-alt: 9000}, weight: 2}\n";
  }
  DesiredState s = Compile(ReadShop() + pods);
  EXPECT_EQ(At(s, "10.96.0.10", 80).backends,
            (std::vector<Backend>{{Ip("10.0.0.1"), 8080, 1}, {Ip("10.0.0.2"), 8081, 3}, {Ip("10.0.1.7"), 9000, 2}}));
  EXPECT_EQ(At(s, "fd00:10:96::10", 80).backends,
            (std::vector<Backend>{{Ip("fd00::1"), 8080, 1}, {Ip("fd00::7"), 9000, 2}}));
}

// Backends the node cannot serve are left out by address, any port; a
// service left without backends keeps its entry (connects refused).
TEST(Compile, WithoutBackendsRemovesByAddress) {
  DesiredState d;
  ServiceEntry web{"ns/web:http", WEFT_LB_RANDOM, 0, WEFT_MAGLEV_DEFAULT_SIZE,
                   {{Ip("10.1.0.1"), 80, 1}, {Ip("10.1.0.2"), 80, 1}, {Ip("10.1.0.2"), 81, 1}}};
  ServiceEntry db{"ns/db:sql", WEFT_LB_RANDOM, 0, WEFT_MAGLEV_DEFAULT_SIZE, {{Ip("10.1.0.2"), 5432, 1}}};
  d.services[MakeServiceKey(Ip("10.96.0.1"), 80, IPPROTO_TCP)] = web;
  d.services[MakeServiceKey(Ip("10.96.0.2"), 5432, IPPROTO_TCP)] = db;
  size_t removed = 0;
  DesiredState out = WithoutBackends(d, {Ip("10.1.0.2")}, &removed);
  EXPECT_EQ(removed, 3u);
  EXPECT_EQ(At(out, "10.96.0.1", 80).backends, (std::vector<Backend>{{Ip("10.1.0.1"), 80, 1}}));
  EXPECT_TRUE(At(out, "10.96.0.2", 5432).backends.empty());
  EXPECT_EQ(At(d, "10.96.0.1", 80).backends.size(), 3u) << "the input is left as it was";
}

TEST(Compile, EmptySelectorSelectsNothing) {
  DesiredState s = Compile(R"(apiVersion: v1
kind: Service
metadata: {name: manual}
spec: {clusterIP: 10.96.0.1, ports: [{port: 80}]}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: w}
spec: {address: 10.0.0.1}
)");
  EXPECT_TRUE(At(s, "10.96.0.1", 80).backends.empty());
}

// One address, one WorkloadEntry: the same endpoint twice comes from a
// ServiceEntry's inline endpoints, and gets both weights.
TEST(Compile, SameEndpointTwiceAddsWeights) {
  DesiredState s = Compile(R"(apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: s}
spec:
  hosts: [s.example.com]
  addresses: [240.240.0.1]
  ports: [{number: 80, name: tcp, protocol: TCP}]
  resolution: STATIC
  endpoints:
  - {address: 10.0.0.1, weight: 2}
  - {address: 10.0.0.1, weight: 2}
  - {address: 10.0.0.2, weight: 1}
)");
  EXPECT_EQ(At(s, "240.240.0.1", 80).backends,
            (std::vector<Backend>{{Ip("10.0.0.1"), 80, 4}, {Ip("10.0.0.2"), 80, 1}}));
}

// File mode compiles every kind the controller does: a VirtualService that
// splits by subsets is done in the kernel here too (before issue 10 file mode
// read Services and WorkloadEntries only).
TEST(Compile, VirtualServiceSubsetsAsTheControllerDoes) {
  DesiredState s = Compile(R"(apiVersion: v1
kind: Service
metadata: {name: reviews}
spec: {clusterIP: 10.96.0.20, selector: {app: reviews}, ports: [{name: http, port: 9080}]}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1}
spec: {address: 10.0.0.1, labels: {app: reviews, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v2}
spec: {address: 10.0.0.2, labels: {app: reviews, version: v2}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 75}
    - {destination: {host: reviews, subset: v2}, weight: 25}
)");
  EXPECT_EQ(At(s, "10.96.0.20", 9080).backends,
            (std::vector<Backend>{{Ip("10.0.0.1"), 9080, 3}, {Ip("10.0.0.2"), 9080, 1}}));
}

TEST(Backend, StableName) {
  EXPECT_EQ((Backend{Ip("10.0.0.1"), 8080, 1}.StableName()), "10.0.0.1:8080");
  EXPECT_EQ((Backend{Ip("fd00::1"), 80, 1}.StableName()), "[fd00::1]:80");
}

}  // namespace
}  // namespace weft::lb
