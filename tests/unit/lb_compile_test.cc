// Config -> DesiredState: selection, targetPort resolution, families, weights.
#include <gtest/gtest.h>
#include <netinet/in.h>

#include "config/loader.hpp"
#include "agent/lb/compile.hpp"

namespace weft::lb {
namespace {

IpAddr Ip(const char* text) { return *IpAddr::Parse(text); }

const ServiceEntry& At(const DesiredState& s, const char* vip, uint16_t port, uint8_t proto = IPPROTO_TCP) {
  auto it = s.services.find(MakeServiceKey(Ip(vip), port, proto));
  if (it == s.services.end()) throw std::runtime_error(std::string("no service ") + vip);
  return it->second;
}

class CompileShop : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c = config::LoadConfigFile(WEFT_TESTDATA_DIR "/good-config/shop.yaml");
    ASSERT_TRUE(c.ok()) << c.status().message();
    config_ = std::move(*c);
  }
  config::Config config_;
};

TEST_F(CompileShop, ServiceKeys) {
  DesiredState s = Compile(config_, {});
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
  DesiredState s = Compile(config_, {});
  // cart-noport lacks http-alt, cart-drained has weight 0, cart-other-ns is in another namespace.
  EXPECT_EQ(At(s, "10.96.0.10", 80).backends,
            (std::vector<Backend>{{Ip("10.0.0.1"), 8080, 1}, {Ip("10.0.0.2"), 8081, 3}}));
  EXPECT_EQ(At(s, "fd00:10:96::10", 80).backends, (std::vector<Backend>{{Ip("fd00::1"), 8080, 1}}));
  // A numeric targetPort applies to every selected workload, named ports or not.
  EXPECT_EQ(At(s, "10.96.0.10", 9090).backends,
            (std::vector<Backend>{{Ip("10.0.0.1"), 9090, 1}, {Ip("10.0.0.2"), 9090, 3}, {Ip("10.0.0.3"), 9090, 1}}));
}

TEST_F(CompileShop, AlgorithmAndFlags) {
  DesiredState s = Compile(config_, {});
  const ServiceEntry& checkout = At(s, "10.96.0.11", 443);
  EXPECT_EQ(checkout.algo, WEFT_LB_MAGLEV);
  EXPECT_EQ(checkout.maglev_table_size, 251);
  EXPECT_EQ(checkout.flags, WEFT_SVC_F_STEER_PROXY);
  EXPECT_TRUE(checkout.backends.empty());
  const ServiceEntry& cart = At(s, "10.96.0.10", 80);
  EXPECT_EQ(cart.algo, WEFT_LB_RANDOM);
  EXPECT_EQ(cart.flags, 0);
}

TEST_F(CompileShop, ExtraWorkloadsJoinByFamily) {
  config::Workload pod;
  pod.name = "checkout-pod";
  pod.ns = "shop";
  pod.addresses = {Ip("10.0.1.7"), Ip("fd00::7")};
  pod.labels = {{"app", "cart"}, {"pod-template-hash", "abc"}};
  pod.ports = {{"http-alt", 9000}};
  pod.weight = 2;
  DesiredState s = Compile(config_, {pod});
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
  config::Config c;
  config::Service svc;
  svc.name = "manual";
  svc.ns = "default";
  svc.vips = {Ip("10.96.0.1")};
  svc.ports = {{"", 80, {80, ""}, config::Protocol::kTcp, ""}};
  c.services.push_back(svc);
  config::Workload w;
  w.ns = "default";
  w.addresses = {Ip("10.0.0.1")};
  c.workloads.push_back(w);
  DesiredState s = Compile(c, {});
  EXPECT_TRUE(At(s, "10.96.0.1", 80).backends.empty());
}

TEST(Compile, SameEndpointTwiceAddsWeights) {
  config::Config c;
  config::Service svc;
  svc.name = "s";
  svc.ns = "default";
  svc.vips = {Ip("10.96.0.1")};
  svc.ports = {{"", 80, {80, ""}, config::Protocol::kTcp, ""}};
  svc.selector = {{"app", "s"}};
  c.services.push_back(svc);
  config::Workload w;
  w.ns = "default";
  w.addresses = {Ip("10.0.0.1")};
  w.labels = {{"app", "s"}};
  w.weight = 2;
  c.workloads = {w, w};
  DesiredState s = Compile(c, {});
  EXPECT_EQ(At(s, "10.96.0.1", 80).backends, (std::vector<Backend>{{Ip("10.0.0.1"), 80, 4}}));
}

TEST(Backend, StableName) {
  EXPECT_EQ((Backend{Ip("10.0.0.1"), 8080, 1}.StableName()), "10.0.0.1:8080");
  EXPECT_EQ((Backend{Ip("fd00::1"), 80, 1}.StableName()), "[fd00::1]:80");
}

}  // namespace
}  // namespace weft::lb
